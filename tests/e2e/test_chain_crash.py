"""The crash test on the local Solana cluster: SIGKILL mid-flight, restart, checked on chain.

The cluster (and the emulator) outlive the killed runtime, as a real cluster and AWS
would. After the restart every order is terminal, each has one transaction at most,
and the wallet's balances moved by exactly the confirmed orders: none landed twice.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from solders.pubkey import Pubkey

from chalicelib.rpc import RpcCluster
from localnet import rpc_call
from tests.e2e.test_crash import _assert_one_swap_each, _shorten_visibility, _wait_all_terminal
from tests.emulators import PINS_MOTO
from tests.support import Runtime, cluster_env, http, local_cluster, moto_server, solana_programs_available, submit_many

pytestmark = [pytest.mark.e2e, pytest.mark.slow, PINS_MOTO]

ATA_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
WSOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("chain-crash-moto")) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Any]:
    if not solana_programs_available():
        pytest.skip("no program binaries (SOLANA_PROGRAMS_DIR or ../shared/solana/programs)")
    # Transactions land 4-8 slots after they are sent: the kill finds some in flight.
    with local_cluster(tmp_path_factory.mktemp("chain-crash-localnet"), land_delay_slots="4-8") as c:
        yield c


def _balance(cluster: Any, owner: str, mint: str) -> int:
    seeds = [bytes(Pubkey.from_string(owner)), bytes(TOKEN_PROGRAM), bytes(Pubkey.from_string(mint))]
    ata = str(Pubkey.find_program_address(seeds, ATA_PROGRAM)[0])
    answer = rpc_call(cluster.rpc_url, "getTokenAccountBalance", [ata, {"commitment": "confirmed"}])
    return int(answer["result"]["value"]["amount"])


def test_killed_mid_flight_then_restarted_lands_each_order_once_on_chain(emulator, cluster, tmp_path):
    # A lease longer than a confirmation (~1-3 s here): a redelivery never races a live attempt
    # (moto's conditional writes are not atomic across its threads; DynamoDB's are).
    env = {**cluster_env(cluster), "ATTEMPT_LEASE_S": "8", "RETRY_DELAYS_S": "1,1,1"}
    first = Runtime(emulator, tmp_path / "first.log", env).start()
    _shorten_visibility(emulator, 4)
    time.sleep(2.5)  # let the pollers' current long polls run out (see test_crash.py)
    _, health = http("GET", f"{first.rest}/health")
    wallet = health["wallet"]
    sol_before, usdc_before = _balance(cluster, wallet, WSOL), _balance(cluster, wallet, USDC)
    ids = submit_many(first.rest, {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.3", "slippage": 0.05}, 20)
    # GIVEN orders still pending and others whose transactions are on their way to the cluster
    deadline = time.monotonic() + 30
    seen: Counter[str] = Counter()
    while time.monotonic() < deadline:
        _, listed = http("GET", f"{first.rest}/orders?limit=100")
        seen = Counter(o["status"] for o in listed["items"] if o["orderId"] in ids)
        if seen["submitted"] >= 2 and (seen["pending"] or seen["routing"] or seen["building"]):
            break
        time.sleep(0.02)
    # WHEN the runtime is killed outright, and started again on the same emulator and cluster
    first.stop(signal.SIGKILL)
    assert seen["submitted"], f"no transaction in flight at the kill: {seen}"
    second = Runtime(emulator, tmp_path / "second.log", env).start()
    try:
        orders = _wait_all_terminal(second, ids, timeout=120)
    finally:
        second.stop()
    # THEN every order confirmed, with one transaction each
    stuck = [(o["orderId"], o["status"]) for o in orders if o["status"] != "confirmed"]
    assert not stuck, stuck
    _assert_one_swap_each(orders)
    # AND on chain: each transaction executed, and the wallet paid exactly 20 x 0.3 SOL for
    # exactly the USDC the orders say - no order's swap landed twice
    chain = RpcCluster(cluster.rpc_url)
    changes = []
    for order in orders:
        details = chain.transaction(order["txHash"])
        assert details is not None and details.err is None, order["orderId"]
        changes.append((details.token_change(wallet, WSOL), details.slot, order["txHash"][:8]))
    sol_spent = sol_before - _balance(cluster, wallet, WSOL)
    usdc_got = _balance(cluster, wallet, USDC) - usdc_before
    assert sol_spent == 20 * 3 * 10**8, (changes, sol_before)
    assert usdc_got == sum(int(Decimal(o["history"][-1]["amountOut"]).scaleb(6)) for o in orders)
