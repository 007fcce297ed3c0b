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

from chalicelib.market.chainpools import load_registry
from chalicelib.market.onchain import OnChainMarket
from chalicelib.rpc import RpcCluster
from tests.emulators import PINS_MOTO
from tests.support import Runtime, cluster_env, follow, http, local_cluster, moto_server, solana_programs_available

pytestmark = [pytest.mark.e2e, pytest.mark.slow, PINS_MOTO]

TERMINAL = ("confirmed", "failed", "cancelled", "expired")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Any]:
    if not solana_programs_available():
        pytest.skip("no program binaries (SOLANA_PROGRAMS_DIR or ../shared/solana/programs)")
    with local_cluster(tmp_path_factory.mktemp("localnet")) as c:
        yield c


@pytest.fixture(scope="module")
def runtime(cluster, tmp_path_factory) -> Iterator[Runtime]:
    work = tmp_path_factory.mktemp("limit-runtime")
    with moto_server(work) as endpoint:
        env = {
            **cluster_env(cluster),
            "RETRY_DELAYS_S": "1,1,1",
            "OFFLINE_SCHEDULE_SCALE": "0.02",  # the once-a-minute watcher every 1.2 s
            "WATCH_WINDOW_S": "0",
            "ENABLE_TEST_ENDPOINTS": "true",
        }
        rt = Runtime(endpoint, work / "runtime.log", env).start()
        try:
            yield rt
        finally:
            rt.stop()


@pytest.fixture(scope="module")
def rpc(cluster) -> RpcCluster:
    return RpcCluster(cluster.rpc_url)


def _market(cluster, rpc) -> OnChainMarket:
    return OnChainMarket(rpc, load_registry(cluster.registry_path))


def _post(rt: Runtime, body: dict[str, Any]) -> dict[str, Any]:
    status, order = http("POST", f"{rt.rest}/order", body)
    assert status == 201, order
    return order


def _order(rt: Runtime, order_id: str) -> dict[str, Any]:
    status, order = http("GET", f"{rt.rest}/order/{order_id}")
    assert status == 200, order
    return order


def _until(rt: Runtime, order_id: str, statuses: tuple[str, ...], timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = _order(rt, order_id)
        if order["status"] in statuses:
            return order
        time.sleep(0.1)
    raise AssertionError(f"order {order_id} not {statuses} after {timeout}s: {_order(rt, order_id)['history']}")


def _price(market: OnChainMarket, amount: str) -> Decimal:
    """RAY per SOL for selling `amount` SOL now, after fees, on the best single venue."""
    tokens = market.registry.tokens
    sol, ray = tokens.resolve("SOL"), tokens.resolve("RAY")
    assert sol is not None and ray is not None
    base = int(Decimal(amount).scaleb(sol.decimals))
    best = max(s.swap(sol.mint, base).amount_out for s in market.snapshot(sol, ray).values())
    return Decimal(best).scaleb(-ray.decimals) / Decimal(amount)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_limit_above_the_market_waits_until_market_orders_move_the_pool_then_confirms_at_its_limit(
    runtime, cluster, rpc
):
    market = _market(cluster, rpc)
    limit = (_price(market, "1") * Decimal("1.01")).quantize(Decimal("0.0001"))
    body = {"type": "limit", "tokenIn": "SOL", "tokenOut": "RAY", "amount": "1", "slippage": "0.01"}
    order = _post(runtime, {**body, "limitPrice": str(limit), "expiresInS": 300})
    assert order["status"] == "pending" and order["limitPrice"] == str(limit)
    # GIVEN it waits: the price is below its limit
    waiting = _until(runtime, order["orderId"], ("waiting",), timeout=20)
    time.sleep(3)  # two watcher ticks at least
    assert _order(runtime, order["orderId"])["status"] == "waiting"
    status, listed = http("GET", f"{runtime.rest}/orders?status=waiting")
    assert status == 200 and order["orderId"] in [o["orderId"] for o in listed["items"]], listed
    assert waiting["history"][1]["trigger"] == {"limitPrice": str(limit)}
    # WHEN market orders buy SOL with RAY (the other direction) until the price reaches it
    for _ in range(12):
        pushed = _post(runtime, {"tokenIn": "RAY", "tokenOut": "SOL", "amount": "3000", "slippage": "0.2"})
        assert _until(runtime, pushed["orderId"], TERMINAL)["status"] == "confirmed"
        if _order(runtime, order["orderId"])["status"] != "waiting" or _price(market, "1") >= limit:
            break
    else:
        raise AssertionError(f"the price never reached {limit}: {_price(market, '1')}")
    # THEN it confirms, at or above its limit
    done = _until(runtime, order["orderId"], TERMINAL, timeout=30)
    assert done["status"] == "confirmed", done["history"]
    assert Decimal(done["executedPrice"]) >= limit, (done["executedPrice"], limit)
    statuses = [e["status"] for e in done["history"]]
    assert statuses == ["pending", "waiting", "routing", "building", "submitted", "confirmed"], statuses
    # AND the floor the program was given keeps the fill at the limit
    assert Decimal(done["minAmountOut"]) >= limit


def test_a_limit_that_never_triggers_expires(runtime):
    body = {"type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1", "slippage": "0.01"}
    order = _post(runtime, {**body, "limitPrice": "1000000", "expiresInS": 3})
    done = _until(runtime, order["orderId"], TERMINAL, timeout=20)
    assert done["status"] == "expired", done["history"]
    assert [e["status"] for e in done["history"]] == ["pending", "waiting", "expired"]
    assert _epoch(done["history"][-1]["timestamp"]) - _epoch(done["createdAt"]) >= 3


def test_a_limit_cancelled_while_waiting_ends_cancelled_and_never_executes(runtime, cluster, rpc):
    market = _market(cluster, rpc)
    body = {"type": "limit", "tokenIn": "SOL", "tokenOut": "RAY", "amount": "1", "slippage": "0.01"}
    order = _post(runtime, {**body, "limitPrice": str(_price(market, "1") * 2), "expiresInS": 300})
    _until(runtime, order["orderId"], ("waiting",), timeout=20)
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
    final = _order(runtime, order["orderId"])
    assert [e["status"] for e in final["history"]] == ["pending", "waiting", "cancelled"]
    assert "txHash" not in final
    status, missing = http("DELETE", f"{runtime.rest}/order/no-such-order")
    assert status == 404, missing


@pytest.mark.parametrize("dex", ["meteora", "raydium"])
def test_a_sniper_waits_for_its_pool_then_confirms_and_the_time_from_pool_to_submitted_is_reported(runtime, rpc, dex):
    # GIVEN a new mint whose pool against SOL appears 4 s from now
    symbol = f"SN{dex[:2].upper()}{int(time.time()) % 10000}"
    status, launch = http(
        "POST", f"{runtime.rest}/test/launch", {"symbol": symbol, "decimals": 6, "afterMs": 4000, "dex": dex}
    )
    assert status == 201 and set(launch) >= {"mint", "pool", "dex"}, launch
    assert rpc.accounts([launch["pool"]])[0] is None
    body = {"type": "sniper", "tokenIn": "SOL", "tokenOut": launch["mint"], "amount": "0.5", "slippage": "0.05"}
    order = _post(runtime, {**body, "maxPrice": "0.0002", "expiresInS": 120})  # launched at 0.0001 SOL
    _until(runtime, order["orderId"], ("waiting",), timeout=10)
    # WHEN the pool appears on chain
    deadline = time.monotonic() + 20
    while rpc.accounts([launch["pool"]])[0] is None:
        assert time.monotonic() < deadline, "the pool never appeared"
        assert _order(runtime, order["orderId"])["status"] == "waiting"
        time.sleep(0.05)
    pool_seen = time.time()
    # THEN the order executes at once and confirms within its price
    done = _until(runtime, order["orderId"], TERMINAL, timeout=60)
    assert done["status"] == "confirmed", [(e["status"], e.get("error")) for e in done["history"]]
    assert Decimal(1) / Decimal(done["executedPrice"]) <= Decimal("0.0002")
    submitted = next(e for e in done["history"] if e["status"] == "submitted")
    latency = _epoch(submitted["timestamp"]) - pool_seen
    print(f"\nsniper[{dex}]: pool on chain -> submitted {latency:.2f} s (attempts {done['attempts']})")
    assert latency < 10, latency


def test_a_sniper_with_a_price_above_its_max_keeps_waiting(runtime, rpc):
    symbol = f"SNX{int(time.time()) % 10000}"
    status, launch = http(
        "POST", f"{runtime.rest}/test/launch", {"symbol": symbol, "decimals": 6, "afterMs": 0, "dex": "meteora"}
    )
    assert status == 201, launch
    body = {"type": "sniper", "tokenIn": "SOL", "tokenOut": launch["mint"], "amount": "0.5", "slippage": "0.05"}
    order = _post(runtime, {**body, "maxPrice": "0.00001", "expiresInS": 6})  # a tenth of the launch price
    done = _until(runtime, order["orderId"], TERMINAL, timeout=30)
    assert done["status"] == "expired", done["history"]
