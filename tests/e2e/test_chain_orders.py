"""Orders on the local Solana cluster: the real Raydium CP-Swap and Meteora DLMM programs.

The local runtime and its emulator, plus a local cluster of this module's own
(localnet, short blockhash life so expiry takes seconds); the engine reaches it over
JSON-RPC only. What the engine says (`confirmed`) is checked against the chain.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from solders.pubkey import Pubkey

from chalicelib.market.chainpools import load_registry
from chalicelib.market.onchain import OnChainMarket
from chalicelib.rpc import RpcCluster
from tests.emulators import PINS_MOTO
from tests.support import (
    Runtime,
    chain_runtime,
    get_order,
    http,
    localnet_faults,
    module_cluster,
    post_order,
    wait_order,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, PINS_MOTO]

VALID_SLOTS = 60  # ~24 s of 400 ms slots: an expired blockhash within a test's patience, and room for a late landing
ATA_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Any]:
    with module_cluster(tmp_path_factory, blockhash_valid_slots=VALID_SLOTS) as c:
        yield c


@pytest.fixture(scope="module")
def runtime(cluster, tmp_path_factory) -> Iterator[Runtime]:
    with chain_runtime(cluster, tmp_path_factory.mktemp("chain-runtime")) as rt:
        yield rt


@pytest.fixture(scope="module")
def rpc(cluster) -> RpcCluster:
    return RpcCluster(cluster.rpc_url)


@pytest.fixture(scope="module")
def market(cluster, rpc) -> OnChainMarket:
    return OnChainMarket(rpc, load_registry(cluster.registry_path))


def _submit(rt: Runtime, token_in: str, token_out: str, amount: str, slippage: float = 0.01) -> str:
    body = {"tokenIn": token_in, "tokenOut": token_out, "amount": amount, "slippage": slippage}
    return str(post_order(rt, body)["orderId"])


def _terminal(rt: Runtime, order_id: str, timeout: float = 60.0) -> dict[str, Any]:
    return wait_order(rt, order_id, ("confirmed", "failed"), timeout)


def _wallet(rt: Runtime) -> str:
    status, health = http("GET", f"{rt.rest}/health")
    assert status == 200 and health["wallet"], health
    return str(health["wallet"])


def _find_route(market: OnChainMarket, dex: str) -> tuple[str, str, str]:
    """A (tokenIn, tokenOut, amount) the chain's pools route to `dex` right now."""
    tokens = market.registry.tokens
    for token_in, token_out in market.pairs():
        for whole in ("0.5", "2", "20", "200", "2000", "20000"):
            base = int(Decimal(whole).scaleb(token_in.decimals))
            try:
                plan = market.route(token_in, token_out, base)
            except Exception:  # noqa: BLE001 - a pair the cluster cannot fill at this size
                continue
            if plan.dex == dex and plan.price_impact < Decimal("0.05"):
                assert tokens.resolve(token_in.symbol) == token_in
                return token_in.symbol, token_out.symbol, whole
    raise AssertionError(f"no pair routes to {dex} on this cluster")


@pytest.mark.parametrize("dex", ["raydium", "meteora", "split"])
def test_an_order_confirms_on_the_chain_with_the_balances_the_event_says(runtime, rpc, market, dex):
    token_in, token_out, amount = _find_route(market, dex)
    tokens = market.registry.tokens
    t_in, t_out = tokens.resolve(token_in), tokens.resolve(token_out)
    assert t_in is not None and t_out is not None
    order = _terminal(runtime, _submit(runtime, token_in, token_out, amount))
    assert order["status"] == "confirmed", order["history"]
    confirmed = order["history"][-1]
    assert confirmed["dex"] == dex
    # THEN the chain has that transaction, executed, on the venue programs
    details = rpc.transaction(confirmed["txHash"])
    assert details is not None and details.err is None
    programs = {market.program_of(d) for d in (("raydium", "meteora") if dex == "split" else (dex,))}
    invoked = {line.split()[1] for line in details.logs if line.endswith(" invoke [1]")}
    assert programs <= invoked, details.logs
    # AND the wallet's balances moved by exactly the order's amount and the event's amountOut
    wallet = _wallet(runtime)
    assert details.token_change(wallet, t_in.mint) == -int(Decimal(amount).scaleb(t_in.decimals))
    assert details.token_change(wallet, t_out.mint) == int(Decimal(confirmed["amountOut"]).scaleb(t_out.decimals))
    # AND the event carries where it landed and what it cost
    assert confirmed["slot"] == details.slot and confirmed["fee"] == details.fee > 0
    assert confirmed["computeUnits"] == details.compute_units > 0


def test_a_large_order_moves_the_price_the_next_order_is_quoted(runtime, market):
    tokens = market.registry.tokens
    sol, ray = tokens.resolve("SOL"), tokens.resolve("RAY")
    assert sol is not None and ray is not None
    before = {q.dex: q.amount_out for q in market.route(sol, ray, 10**9).quotes if q.ok}
    # WHEN 200 SOL is sold into the SOL/RAY pools (a few % of their depth)
    order = _terminal(runtime, _submit(runtime, "SOL", "RAY", "200", slippage=0.2))
    assert order["status"] == "confirmed", order["history"]
    traded = {leg["dex"] for leg in order["history"][-1].get("route", [])} or {
        leg["dex"] for e in order["history"] if e["status"] == "routing" for leg in e["route"]
    }
    # THEN each pool it traded on quotes the next SOL lower, and the best quote by more than
    # a DLMM bin step (the router splits so that both venues end near the same price)
    after = {q.dex: q.amount_out for q in market.route(sol, ray, 10**9).quotes if q.ok}
    for dex in traded:
        assert after[dex] < before[dex], (dex, before, after)
    assert max(after.values()) < max(before.values()) * Decimal("0.997"), (before, after)
    # AND the next order through the engine is quoted at the moved prices
    second = _terminal(runtime, _submit(runtime, "SOL", "RAY", "1"))
    routing = next(e for e in second["history"] if e["status"] == "routing")
    quoted = {q["dex"]: Decimal(q["amountOut"]).scaleb(ray.decimals) for q in routing["quotes"] if "amountOut" in q}
    for dex in traded:
        assert quoted[dex] < before[dex], (dex, before, quoted)


def test_a_dropped_send_is_rebroadcast(runtime, cluster, rpc):
    localnet_faults(cluster, {"dropNextSends": 2})
    try:
        order = _terminal(runtime, _submit(runtime, "SOL", "USDC", "0.5"))
    finally:
        localnet_faults(cluster)
    assert order["status"] == "confirmed", order["history"]
    assert [e["attempt"] for e in order["history"] if e["status"] == "routing"] == [1], "no second attempt"
    [status] = rpc.signature_statuses([order["txHash"]], search_history=True)
    assert status is not None and status.err is None


def test_an_expired_blockhash_leads_to_one_new_transaction_and_exactly_one_lands(runtime, cluster, rpc):
    # GIVEN a cluster that loses every send for now
    localnet_faults(cluster, {"dropPpm": 1_000_000})
    order_id = _submit(runtime, "SOL", "USDC", "0.25")
    try:
        # WHEN the first transaction's blockhash expires and the engine tries again
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            routings = [e for e in get_order(runtime, order_id)["history"] if e["status"] == "routing"]
            if len(routings) >= 2:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no second attempt: {get_order(runtime, order_id)['history']}")
        assert "expired" in (routings[1].get("error") or ""), routings[1]
    finally:
        localnet_faults(cluster)
    order = _terminal(runtime, order_id)
    assert order["status"] == "confirmed", order["history"]
    hashes = list(dict.fromkeys(e["txHash"] for e in order["history"] if e["status"] == "submitted"))
    assert len(hashes) == 2, hashes
    # THEN the chain knows the new one only: exactly one landed
    old, new = rpc.signature_statuses(hashes, search_history=True)
    assert old is None and new is not None and new.err is None
    assert rpc.transaction(hashes[0]) is None


def test_a_floor_the_program_refuses_fails_the_attempt_with_its_error_and_retries_with_a_fresh_quote(
    runtime, cluster, rpc, market
):
    # GIVEN an order with almost no slippage room whose transaction lands late (40 slots,
    # 16 s: time for the other order to go first even on a loaded machine)
    localnet_faults(cluster, {"landDelaySlots": [40, 40]})
    try:
        victim = _submit(runtime, "SOL", "USDT", "20", slippage=0.0001)
        deadline = time.monotonic() + 20
        while get_order(runtime, victim)["status"] not in ("submitted", "confirmed", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # WHEN another order on the same pools is sent after it but lands first
        localnet_faults(cluster, {"landDelaySlots": [1, 1]})
        # (big enough to take both venues and cross DLMM bins: it moves whichever pool the first trades on)
        other = _terminal(runtime, _submit(runtime, "SOL", "USDT", "1000", slippage=0.5))
    finally:
        localnet_faults(cluster)
    order = _terminal(runtime, victim, timeout=90)
    routings = [e for e in order["history"] if e["status"] == "routing"]
    errors = [r.get("error") or "" for r in routings[1:]]
    # THEN an attempt failed with the program's own slippage error, and a later one quoted again
    assert other["status"] == "confirmed" and order["status"] == "confirmed"
    assert other["history"][-1]["slot"] < order["history"][-1]["slot"]
    assert any("ExceededSlippage (6005)" in e or "(6003)" in e for e in errors), order["history"]
    assert len({r["route"][0]["amountOut"] for r in routings}) >= 2
