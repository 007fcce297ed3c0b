"""An order end to end: real HTTP, a real WebSocket, the local runtime, moto behind it."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import datetime
from decimal import Decimal

import pytest
import websocket
from solders.transaction import VersionedTransaction

from chalicelib.market import PROGRAM_IDS, verify_signature
from tests.support import DEV_KEY, follow, http, statuses, submit_many

pytestmark = pytest.mark.e2e

LIFECYCLE = ["pending", "routing", "building", "submitted", "confirmed"]


def _submit(rt, **overrides):
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5", "slippage": 0.01, **overrides}
    status, order = http("POST", f"{rt.rest}/order", body)
    assert status == 201, order
    return order


def _wait_terminal(rt, order_id, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, order = http("GET", f"{rt.rest}/order/{order_id}")
        assert status == 200
        if order["status"] in ("confirmed", "failed"):
            return order
        time.sleep(0.2)
    raise AssertionError(f"order {order_id} not terminal after {timeout}s")


def test_order_travels_pending_to_confirmed_over_websocket(runtime):
    # GIVEN an order submitted over REST
    order = _submit(runtime)
    assert order["status"] == "pending" and order["orderId"]
    # WHEN a client connects for it right away
    frames = follow(runtime.ws, order["orderId"])
    # THEN it receives every status in order, then the server closes the connection
    events = statuses(frames, order["orderId"])
    assert [e["status"] for e in events] == LIFECYCLE
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    routing, building, confirmed = events[1], events[2], events[4]
    assert {q["dex"] for q in routing["quotes"]} == {"raydium", "meteora"}
    assert routing["dex"] in ("raydium", "meteora", "split") and routing["route"]
    assert Decimal(building["minAmountOut"]) > 0
    assert confirmed["txHash"] and Decimal(confirmed["executedPrice"]) > 0
    # AND the hash is the signature of the real Solana transaction the engine built and signed
    raw = base64.b64decode(events[3]["transaction"])
    tx = VersionedTransaction.from_bytes(raw)
    assert str(tx.signatures[0]) == confirmed["txHash"] == events[3]["txHash"]
    assert verify_signature(raw)
    programs = {str(tx.message.account_keys[ix.program_id_index]) for ix in tx.message.instructions}
    assert programs & set(PROGRAM_IDS.values()), "a swap instruction to the chosen venue's program"
    assert Decimal(confirmed["amountOut"]) >= Decimal(building["minAmountOut"])
    # AND GET /order shows the same history
    status, stored = http("GET", f"{runtime.rest}/order/{order['orderId']}")
    assert status == 200
    assert stored["status"] == "confirmed" and stored["txHash"] == confirmed["txHash"]
    assert [e["seq"] for e in stored["history"]] == [1, 2, 3, 4, 5]
    assert stored["history"][4] == confirmed


def test_late_subscriber_gets_full_history_then_is_disconnected(runtime):
    # GIVEN an order that has already confirmed
    order = _submit(runtime)
    _wait_terminal(runtime, order["orderId"])
    # WHEN a client connects for it afterwards
    started = time.monotonic()
    frames = follow(runtime.ws, order["orderId"], timeout=20)
    # THEN it still receives the whole history and the server closes the connection
    assert [e["status"] for e in statuses(frames, order["orderId"])] == LIFECYCLE
    assert time.monotonic() - started < 15, "the server should close after the terminal status"


def test_subscribe_action_follows_several_orders_on_one_connection(runtime):
    first, second = _submit(runtime), _submit(runtime, tokenIn="USDC", tokenOut="SOL", amount="25")
    frames = follow(runtime.ws, subscribe=[first["orderId"], second["orderId"]], timeout=30)
    for order in (first, second):
        assert [e["status"] for e in statuses(frames, order["orderId"])] == LIFECYCLE


def test_an_order_with_slippage_bps_to_usdt_confirms(runtime):
    # GIVEN an order sent with slippageBps instead of a fraction
    status, order = http(
        "POST", f"{runtime.rest}/order", {"tokenIn": "SOL", "tokenOut": "USDT", "amount": 2, "slippageBps": 50}
    )
    assert status == 201
    frames = follow(runtime.ws, order["orderId"], timeout=30)
    assert [e["status"] for e in statuses(frames, order["orderId"])] == LIFECYCLE


def test_fifty_orders_all_confirm_with_at_most_ten_executing(runtime):
    # GIVEN 50 orders submitted at once
    ids = submit_many(runtime.rest, {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.25", "slippage": 0.01}, 50)
    assert len(ids) == 50
    # WHEN they all finish
    orders = [_wait_terminal(runtime, oid, timeout=120) for oid in ids]
    # THEN every one confirmed
    assert {o["status"] for o in orders} == {"confirmed"}

    # AND the recorded timestamps never show more than 10 executing at once
    def ts(event):
        return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()

    edges = []
    for order in orders:
        history = order["history"]
        start = min(ts(e) for e in history if e["status"] == "routing")
        end = max(ts(e) for e in history if e["status"] == "confirmed")
        edges += [(start, 1), (end, -1)]
    running = peak = 0
    for _, delta in sorted(edges, key=lambda e: (e[0], e[1])):
        running += delta
        peak = max(peak, running)
    assert peak <= 10, f"{peak} orders executing at once"
    assert peak >= 5, f"only {peak} at once: the consumer is not running orders concurrently"


def test_bad_orders_get_clear_400s_and_store_nothing(runtime):
    _, before = http("GET", f"{runtime.rest}/orders?limit=100")
    cases = [
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": -1, "slippage": 0.01}, "amount"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.0000000001", "slippage": 0.01}, "amount"),
        ({"tokenIn": "SOL", "tokenOut": "SOL", "amount": 1, "slippage": 0.01}, "tokenOut"),
        ({"tokenIn": "DOGE", "tokenOut": "USDC", "amount": 1, "slippage": 0.01}, "tokenIn"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippage": 2}, "slippage"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippage": 0.01, "type": "stop"}, "type"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippage": 0.01, "type": "limit"}, "limitPrice"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": True, "slippage": 0.01}, "amount"),
        ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippage": 0.01, "extra": 1}, "extra"),
        ([1, 2, 3], None),
    ]
    for body, field in cases:
        status, error = http("POST", f"{runtime.rest}/order", body)
        assert status == 400, (body, status, error)
        assert error["error"] and error["message"]
        if field:
            assert error.get("field") == field, (body, error)
    status, error = http("POST", f"{runtime.rest}/order", raw=b"{not json")
    assert status == 400 and error["error"] == "invalid_json"
    status, error = http("POST", f"{runtime.rest}/order", raw=b"{" + b" " * 200_000 + b"}")
    assert status == 413 and error["error"] == "payload_too_large"
    status, error = http("POST", f"{runtime.rest}/order", raw=b"<order/>", headers={"Content-Type": "application/xml"})
    assert status == 415 and error["error"] == "unsupported_media_type" and error["message"]
    # A method the path does not define: API Gateway's own 403, before any function runs
    status, error = http("PUT", f"{runtime.rest}/order", {"tokenIn": "SOL"})
    assert status == 403 and error["error"] == "missing_authentication_token"
    status, error = http("GET", f"{runtime.rest}/orders?limit=1000")
    assert status == 400 and error["field"] == "limit"
    status, error = http("GET", f"{runtime.rest}/orders?nextToken=garbage")
    assert status == 400 and error["field"] == "nextToken"
    status, error = http("GET", f"{runtime.rest}/orders?limit=5&colour=blue")
    assert status == 400 and error["error"] == "invalid_request" and error["field"] == "colour"
    status, error = http("GET", f"{runtime.rest}/order/does-not-exist")
    assert status == 404 and error["error"] == "not_found"
    # A path no route matches: API Gateway's own 403, in the contract's error shape (the
    # template's gateway responses, applied by the local runtime as API Gateway would)
    status, error = http("GET", f"{runtime.rest}/no/such/route")
    assert status == 403 and error["error"] == "missing_authentication_token"
    assert error["message"] == "Missing Authentication Token" and "no route matches" in error["hint"]
    _, after = http("GET", f"{runtime.rest}/orders?limit=100")
    assert len(after["items"]) == len(before["items"])


def test_websocket_bad_frames_get_errors_and_the_connection_stays_open(runtime):
    conn = websocket.create_connection(f"{runtime.ws}/?apiKey={DEV_KEY}", timeout=10)
    try:
        for frame, code in (
            ("not json", "invalid_json"),
            ('{"action": "dance"}', "unknown_action"),
            ('{"action": "subscribe", "orderId": "nope"}', "not_found"),
        ):
            conn.send(frame)
            reply = json.loads(conn.recv())
            assert reply["type"] == "error" and reply["error"] == code, reply
        order = _submit(runtime)
        conn.send(json.dumps({"action": "subscribe", "orderId": order["orderId"]}))
        seen = []
        while not seen or seen[-1]["status"] != "confirmed":
            seen = statuses([*seen, json.loads(conn.recv())], order["orderId"])
        assert [e["status"] for e in seen] == LIFECYCLE
    finally:
        conn.close()


def test_subscribers_joining_at_random_moments_all_see_gap_free_histories(runtime):
    # GIVEN 20 orders, each followed by a client that connects at a random moment of its life
    import random

    rng = random.Random(11)
    results: dict[str, list[dict]] = {}
    lock = threading.Lock()

    def one(delay_s: float, by_action: bool) -> None:
        order = _submit(runtime, amount="0.2")
        time.sleep(delay_s)
        if by_action:
            frames = follow(runtime.ws, subscribe=[order["orderId"]], timeout=30)
        else:
            frames = follow(runtime.ws, order["orderId"], timeout=30)
        with lock:
            results[order["orderId"]] = statuses(frames, order["orderId"])

    threads = [threading.Thread(target=one, args=(rng.uniform(0, 0.8), i % 2 == 0)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN every one received pending..confirmed with no gap, whichever way it subscribed
    assert len(results) == 20
    for order_id, events in results.items():
        assert [e["status"] for e in events] == LIFECYCLE, (order_id, events)


def test_a_subscriber_joining_mid_way_gets_the_past_then_the_rest_live(runtime):
    order = _submit(runtime)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        _, current = http("GET", f"{runtime.rest}/order/{order['orderId']}")
        if current["status"] == "submitted":
            break
        time.sleep(0.02)
    assert current["status"] == "submitted", "the order should still be on the chain"
    events = statuses(follow(runtime.ws, order["orderId"]), order["orderId"])
    assert [e["status"] for e in events] == LIFECYCLE
