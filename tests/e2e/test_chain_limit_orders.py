"""Limit and sniper orders on the local Solana cluster (issue 17), through the local runtime.

The watcher runs as the scheduled function it is on AWS, every ~1.2 s here
(OFFLINE_SCHEDULE_SCALE) and one tick per run (WATCH_WINDOW_S=0). Prices come from the
pools on chain; the market orders that move them are real swaps on the real programs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.market import PoolNotOpen, Token
from chalicelib.market.chainpools import CpmmState, load_registry
from chalicelib.market.onchain import OnChainMarket
from chalicelib.rpc import RpcCluster
from tests.emulators import PINS_MOTO
from tests.support import (
    TERMINAL_STATUSES,
    Runtime,
    chain_runtime,
    follow,
    get_order,
    http,
    localnet_faults,
    module_cluster,
    post_order,
    wait_order,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, PINS_MOTO]

TERMINAL = TERMINAL_STATUSES
SOL = Token("SOL", "So11111111111111111111111111111111111111112", 9)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Any]:
    with module_cluster(tmp_path_factory) as c:
        yield c


WATCHER_ENV = {
    "OFFLINE_SCHEDULE_SCALE": "0.02",  # the once-a-minute watcher every 1.2 s
    "WATCH_WINDOW_S": "0",
    "ENABLE_TEST_ENDPOINTS": "true",
}


@pytest.fixture(scope="module")
def runtime(cluster, tmp_path_factory) -> Iterator[Runtime]:
    with chain_runtime(cluster, tmp_path_factory.mktemp("limit-runtime"), **WATCHER_ENV) as rt:
        yield rt


@pytest.fixture(scope="module")
def rpc(cluster) -> RpcCluster:
    return RpcCluster(cluster.rpc_url)


def _market(cluster, rpc) -> OnChainMarket:
    return OnChainMarket(rpc, load_registry(cluster.registry_path))


@pytest.fixture(scope="module")
def runtime_from_chain(cluster, tmp_path_factory) -> Iterator[Runtime]:
    """The same engine with no registry file: it lists pools from chain (getProgramAccounts)."""
    work = tmp_path_factory.mktemp("discovery-runtime")
    with chain_runtime(cluster, work, SOLANA_POOLS_FILE="", **WATCHER_ENV) as rt:
        # a market order first: the engine trades with no registry file at all
        order = post_order(rt, {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.1", "slippage": "0.05"})
        done = wait_order(rt, order["orderId"], TERMINAL_STATUSES, timeout=180)
        assert done["status"] == "confirmed", done["history"]
        yield rt


def _price(market: OnChainMarket, amount: str, out: str = "RAY") -> Decimal:
    """`out` per SOL for selling `amount` SOL now, after fees, on the best single venue."""
    tokens = market.registry.tokens
    sol, token = tokens.resolve("SOL"), tokens.resolve(out)
    assert sol is not None and token is not None
    base = int(Decimal(amount).scaleb(sol.decimals))
    best = max(s.swap(sol.mint, base).amount_out for s in market.snapshot(sol, token).values())
    return Decimal(best).scaleb(-token.decimals) / Decimal(amount)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_limit_above_the_market_waits_until_market_orders_move_the_pool_then_confirms_at_its_limit(
    runtime, cluster, rpc
):
    market = _market(cluster, rpc)
    limit = (_price(market, "1") * Decimal("1.01")).quantize(Decimal("0.0001"))
    body = {"type": "limit", "tokenIn": "SOL", "tokenOut": "RAY", "amount": "1", "slippage": "0.01"}
    order = post_order(runtime, {**body, "limitPrice": str(limit), "expiresInS": 300})
    assert order["status"] == "pending" and order["limitPrice"] == str(limit)
    # GIVEN it waits: the price is below its limit
    waiting = wait_order(runtime, order["orderId"], ("waiting",), timeout=20)
    time.sleep(3)  # two watcher ticks at least
    assert get_order(runtime, order["orderId"])["status"] == "waiting"
    status, listed = http("GET", f"{runtime.rest}/orders?status=waiting")
    assert status == 200 and order["orderId"] in [o["orderId"] for o in listed["items"]], listed
    assert waiting["history"][1]["trigger"] == {"limitPrice": str(limit)}
    # WHEN market orders buy SOL with RAY (the other direction) until the price reaches it
    for _ in range(12):
        pushed = post_order(runtime, {"tokenIn": "RAY", "tokenOut": "SOL", "amount": "3000", "slippage": "0.2"})
        assert wait_order(runtime, pushed["orderId"], TERMINAL)["status"] == "confirmed"
        if get_order(runtime, order["orderId"])["status"] != "waiting" or _price(market, "1") >= limit:
            break
    else:
        raise AssertionError(f"the price never reached {limit}: {_price(market, '1')}")
    # THEN it confirms, at or above its limit
    done = wait_order(runtime, order["orderId"], TERMINAL, timeout=30)
    assert done["status"] == "confirmed", done["history"]
    assert Decimal(done["executedPrice"]) >= limit, (done["executedPrice"], limit)
    statuses = [e["status"] for e in done["history"]]
    assert statuses == ["pending", "waiting", "routing", "building", "submitted", "confirmed"], statuses
    # AND the floor the program was given keeps the fill at the limit
    assert Decimal(done["minAmountOut"]) >= limit


def test_a_limit_that_never_triggers_expires(runtime):
    body = {"type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1", "slippage": "0.01"}
    order = post_order(runtime, {**body, "limitPrice": "1000000", "expiresInS": 3})
    done = wait_order(runtime, order["orderId"], TERMINAL, timeout=20)
    assert done["status"] == "expired", done["history"]
    assert [e["status"] for e in done["history"]] == ["pending", "waiting", "expired"]
    assert _epoch(done["history"][-1]["timestamp"]) - _epoch(done["createdAt"]) >= 3


def test_a_limit_cancelled_while_waiting_ends_cancelled_and_never_executes(runtime, cluster, rpc):
    market = _market(cluster, rpc)
    body = {"type": "limit", "tokenIn": "SOL", "tokenOut": "RAY", "amount": "1", "slippage": "0.01"}
    order = post_order(runtime, {**body, "limitPrice": str(_price(market, "1") * 2), "expiresInS": 300})
    wait_order(runtime, order["orderId"], ("waiting",), timeout=20)
    frames: list[dict[str, Any]] = []
    follower = threading.Thread(target=lambda: frames.extend(follow(runtime.ws, order["orderId"], timeout=30)))
    follower.start()
    time.sleep(1.0)  # the replay delivered: the connection is live
    status, cancelled = http("DELETE", f"{runtime.rest}/order/{order['orderId']}")
    assert status == 200 and cancelled["status"] == "cancelled", cancelled
    follower.join(timeout=35)
    # the client following it gets `cancelled` pushed like any status, then the server closes
    assert [f["status"] for f in frames if f.get("type") == "status"] == ["pending", "waiting", "cancelled"]
    assert not follower.is_alive()
    status, again = http("DELETE", f"{runtime.rest}/order/{order['orderId']}")
    assert status == 409 and again["error"] == "not_cancellable", again
    time.sleep(3)
    final = get_order(runtime, order["orderId"])
    assert [e["status"] for e in final["history"]] == ["pending", "waiting", "cancelled"]
    assert "txHash" not in final
    status, missing = http("DELETE", f"{runtime.rest}/order/no-such-order")
    assert status == 404, missing


@pytest.mark.parametrize("pools", ["registry", "chain"])
@pytest.mark.parametrize("dex", ["meteora", "raydium"])
def test_a_sniper_waits_for_its_pool_then_confirms_and_the_time_from_pool_to_submitted_is_reported(
    request, rpc, dex, pools
):
    # GIVEN an engine that learns of pools from the registry file, or from chain alone
    runtime = request.getfixturevalue("runtime" if pools == "registry" else "runtime_from_chain")
    # AND a new mint whose pool against SOL appears 8 s from now
    symbol = f"SN{dex[:2].upper()}{int(time.time()) % 10000}"
    status, launch = http(
        "POST", f"{runtime.rest}/test/launch", {"symbol": symbol, "decimals": 6, "afterMs": 8000, "dex": dex}
    )
    assert status == 201 and set(launch) >= {"mint", "pool", "dex"}, launch
    assert rpc.accounts([launch["pool"]])[0] is None
    body = {"type": "sniper", "tokenIn": "SOL", "tokenOut": launch["mint"], "amount": "0.5", "slippage": "0.05"}
    order = post_order(runtime, {**body, "maxPrice": "0.0002", "expiresInS": 120})  # launched at 0.0001 SOL
    wait_order(runtime, order["orderId"], ("waiting",), timeout=30)
    assert rpc.accounts([launch["pool"]])[0] is None, "the pool came before the order waited (a loaded machine)"
    # WHEN the pool appears on chain
    deadline = time.monotonic() + 20
    while rpc.accounts([launch["pool"]])[0] is None:
        assert time.monotonic() < deadline, "the pool never appeared"
        assert get_order(runtime, order["orderId"])["status"] == "waiting"
        time.sleep(0.05)
    pool_seen = time.time()
    # THEN the order executes at once and confirms within its price, on its first attempt
    # (a CP-Swap pool opens a second after its creation: the trigger waits for it, no attempt fails)
    done = wait_order(runtime, order["orderId"], TERMINAL, timeout=60)
    assert done["status"] == "confirmed", [(e["status"], e.get("error")) for e in done["history"]]
    assert Decimal(1) / Decimal(done["executedPrice"]) <= Decimal("0.0002")
    assert done["attempts"] == 1 and not [e for e in done["history"] if e.get("error")], done["history"]
    submitted = next(e for e in done["history"] if e["status"] == "submitted")
    latency = _epoch(submitted["timestamp"]) - pool_seen
    print(f"\nsniper[{dex}, {pools}]: pool on chain -> submitted {latency:.2f} s (attempts {done['attempts']})")
    assert latency < 10, latency


def test_a_sniper_on_a_pool_that_opens_later_fires_when_it_opens_not_before(runtime_from_chain, rpc, cluster):
    runtime = runtime_from_chain
    # GIVEN a CP-Swap pool created now that takes swaps only 6 s later (its open_time)
    launch_body = {"symbol": f"SNO{int(time.time()) % 10000}", "afterMs": 0, "dex": "raydium", "openInS": 6}
    status, launch = http("POST", f"{runtime.rest}/test/launch", launch_body)
    assert status == 201, launch
    deadline = time.monotonic() + 10
    while rpc.accounts([launch["pool"]])[0] is None:
        assert time.monotonic() < deadline, "the pool never appeared"
        time.sleep(0.05)
    state = CpmmState.decode(rpc.accounts([launch["pool"]])[0].data)
    assert state.open_time > time.time() + 3, state.open_time
    # AND the engine's market says so for it
    with pytest.raises(PoolNotOpen) as refused:
        _market(cluster, rpc).route(SOL, Token(launch["mint"], launch["mint"], 6), 10**8)
    assert refused.value.opens_at_s == state.open_time and "open_time" in str(refused.value)
    # WHEN a sniper for it is placed
    body = {"type": "sniper", "tokenIn": "SOL", "tokenOut": launch["mint"], "amount": "0.5", "slippage": "0.05"}
    order = post_order(runtime, {**body, "maxPrice": "0.0002", "expiresInS": 120})
    # THEN it waits until the pool opens, then confirms on its first attempt
    done = wait_order(runtime, order["orderId"], TERMINAL, timeout=60)
    assert done["status"] == "confirmed", [(e["status"], e.get("error")) for e in done["history"]]
    assert done["attempts"] == 1 and not [e for e in done["history"] if e.get("error")], done["history"]
    routing = next(e for e in done["history"] if e["status"] == "routing")
    landed = rpc.transaction(done["txHash"])
    assert landed is not None and landed.err is None
    assert _epoch(routing["timestamp"]) >= state.open_time - 1  # routed at the open (chain clock in whole seconds)
    submitted = next(e for e in done["history"] if e["status"] == "submitted")
    after_open = _epoch(submitted["timestamp"]) - state.open_time
    print(f"\nsniper[raydium, opens later]: open_time -> submitted {after_open:.2f} s")
    assert after_open < 5


def test_a_triggered_limit_whose_fill_the_program_refuses_waits_again_then_confirms_once(runtime, cluster, rpc):
    market = _market(cluster, rpc)
    limit = (_price(market, "1", "JUP") * Decimal("0.998")).quantize(Decimal("0.0001"))  # reached now
    body = {"type": "limit", "tokenIn": "SOL", "tokenOut": "JUP", "amount": "1", "slippage": "0.01"}
    # GIVEN a limit at the market whose transaction lands late (50 slots, 20 s: time for
    # another order to go first even on a loaded machine)
    localnet_faults(cluster, {"landDelaySlots": [50, 50]})
    try:
        order = post_order(runtime, {**body, "limitPrice": str(limit), "expiresInS": 300})
        wait_order(runtime, order["orderId"], ("submitted", *TERMINAL), timeout=30)
        time.sleep(0.5)  # its first send is out
        # WHEN a market order sent after it lands first and moves the price below the limit
        localnet_faults(cluster, {"landDelaySlots": [1, 1]})
        pushed = post_order(runtime, {"tokenIn": "SOL", "tokenOut": "JUP", "amount": "600", "slippage": "0.5"})
        assert wait_order(runtime, pushed["orderId"], TERMINAL)["status"] == "confirmed"
    finally:
        localnet_faults(cluster)
    assert _price(market, "1", "JUP") < limit
    # THEN the program refuses the limit's floor, and the order waits again, saying why
    deadline = time.monotonic() + 30
    while [e["status"] for e in get_order(runtime, order["orderId"])["history"]].count("waiting") < 2:
        assert time.monotonic() < deadline, get_order(runtime, order["orderId"])["history"]
        time.sleep(0.1)
    again = get_order(runtime, order["orderId"])
    statuses = [e["status"] for e in again["history"]]
    assert statuses[:6] == ["pending", "waiting", "routing", "building", "submitted", "waiting"], statuses
    back = again["history"][5]
    assert back["reason"] == "slippage_exceeded" and back["trigger"] == {"limitPrice": str(limit)}, back
    refused_tx = again["history"][4]["txHash"]
    [landed] = rpc.signature_statuses([refused_tx], search_history=True)
    assert landed is not None and landed.err is not None  # it landed, refused by the program
    # WHEN market orders the other way bring the price back
    for _ in range(12):
        pushed = post_order(runtime, {"tokenIn": "JUP", "tokenOut": "SOL", "amount": "60000", "slippage": "0.2"})
        assert wait_order(runtime, pushed["orderId"], TERMINAL)["status"] == "confirmed"
        if get_order(runtime, order["orderId"])["status"] != "waiting" or _price(market, "1", "JUP") >= limit:
            break
    # THEN it confirms once, at or above its limit, its stream in seq order
    done = wait_order(runtime, order["orderId"], TERMINAL, timeout=30)
    assert done["status"] == "confirmed", done["history"]
    assert Decimal(done["executedPrice"]) >= limit
    assert [e["status"] for e in done["history"]].count("confirmed") == 1
    assert [e["seq"] for e in done["history"]] == list(range(1, len(done["history"]) + 1))
    [final] = rpc.signature_statuses([done["txHash"]], search_history=True)
    assert final is not None and final.err is None and done["txHash"] != refused_tx


def test_a_sniper_with_a_price_above_its_max_keeps_waiting(runtime, rpc):
    symbol = f"SNX{int(time.time()) % 10000}"
    status, launch = http(
        "POST", f"{runtime.rest}/test/launch", {"symbol": symbol, "decimals": 6, "afterMs": 0, "dex": "meteora"}
    )
    assert status == 201, launch
    body = {"type": "sniper", "tokenIn": "SOL", "tokenOut": launch["mint"], "amount": "0.5", "slippage": "0.05"}
    order = post_order(runtime, {**body, "maxPrice": "0.00001", "expiresInS": 6})  # a tenth of the launch price
    done = wait_order(runtime, order["orderId"], TERMINAL, timeout=30)
    assert done["status"] == "expired", done["history"]
