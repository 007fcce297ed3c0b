"""WebSocket limits over the local runtime: connections per key, frames per connection.

Real sockets against the runtime, which plays API Gateway's `$connect`, `$disconnect` and
`$default` routes; the counts live in the template's limits table on the emulator
(docs/decisions/016), as deployed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import websocket

from tests.support import Runtime, follow, http, own_runtime, wait_until

KEYS = {"alice": "key-alice", "bob": "key-bob", "carol": "key-carol"}
MAX_CONNECTIONS, FRAME_RATE, FRAME_BURST = 3, 0.1, 4  # a frame per 10 s: no refill within a burst
ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.1", "slippage": "0.01"}


@pytest.fixture(scope="module")
def rt(tmp_path_factory) -> Iterator[Runtime]:
    env = {
        "API_KEYS": ",".join(f"{name}:{key}" for name, key in KEYS.items()),
        "WS_MAX_CONNECTIONS_PER_KEY": str(MAX_CONNECTIONS),
        "WS_FRAME_RATE": str(FRAME_RATE),
        "WS_FRAME_BURST": str(FRAME_BURST),
        "DEX_QUOTE_MS": "20",
        "DEX_SUBMIT_MS": "300-500",
    }
    with own_runtime(tmp_path_factory.mktemp("ws-limits"), env) as runtime:
        yield runtime


def _connect(rt: Runtime, name: str, query: str = "") -> websocket.WebSocket:
    return websocket.create_connection(f"{rt.ws}/?apiKey={KEYS[name]}{query}", timeout=45)  # cold starts under load


def _refused(rt: Runtime, name: str, query: str = "") -> int:
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _connect(rt, name, query)
    return int(refused.value.status_code)


def _can_connect(rt: Runtime, name: str) -> websocket.WebSocket | None:
    try:
        return _connect(rt, name)
    except websocket.WebSocketBadStatusException as exc:
        assert exc.status_code == 429, exc
        return None


def test_a_key_holds_at_most_its_connections_and_a_closed_one_frees_its_slot(rt):
    # GIVEN alice holding her maximum of open connections
    held = [_connect(rt, "alice") for _ in range(MAX_CONNECTIONS)]
    try:
        # WHEN she opens one more: refused on the upgrade with 429
        assert _refused(rt, "alice") == 429
        # another key is counted on its own
        _connect(rt, "bob").close()
        # the held ones still serve
        held[0].send(json.dumps({"action": "subscribe", "orderId": "none-such"}))
        assert json.loads(held[0].recv())["error"] == "not_found"
        # THEN closing one frees its slot (API Gateway's $disconnect), and only one
        held.pop().close()
        extra = wait_until(lambda: _can_connect(rt, "alice"), 15, "a slot freed by the close", interval=0.2)
        held.append(extra)
        assert _refused(rt, "alice") == 429
    finally:
        for conn in held:
            conn.close()
    # and once all are closed the key has every slot again
    wait_until(lambda: _idle(rt, "alice"), 15, "all of alice's slots back", interval=0.2)


def test_a_connection_the_server_closes_after_its_order_frees_its_slot(rt):
    # GIVEN carol at her maximum, one of them following an order with ?orderId=
    _, order = http("POST", f"{rt.rest}/order", ORDER, headers={"x-api-key": KEYS["carol"]})
    held = [_connect(rt, "carol") for _ in range(MAX_CONNECTIONS - 1)]
    try:
        frames = follow(rt.ws, order["orderId"], timeout=30, api_key=KEYS["carol"])  # the third slot
        # WHEN the server closed that connection after `confirmed`
        assert frames[-1]["status"] == "confirmed", frames
        # THEN its slot is free again: a third connection is admitted, a fourth is not
        third = wait_until(lambda: _can_connect(rt, "carol"), 15, "the followed order's slot", interval=0.2)
        held.append(third)
        assert _refused(rt, "carol") == 429
    finally:
        for conn in held:
            conn.close()


def test_a_refused_connect_takes_no_slot(rt):
    wait_until(lambda: _idle(rt, "bob"), 15, "bob's slots free", interval=0.2)
    # connects refused for an unknown order (404) or a bad key (401) count for nothing
    for _ in range(2 * MAX_CONNECTIONS):
        assert _refused(rt, "bob", "&orderId=none-such") == 404
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(f"{rt.ws}/?apiKey=wrong", timeout=10)
    held = [_connect(rt, "bob") for _ in range(MAX_CONNECTIONS)]
    for conn in held:
        conn.close()


def _idle(rt: Runtime, name: str) -> bool:
    conns = []
    try:
        for _ in range(MAX_CONNECTIONS):
            conn = _can_connect(rt, name)
            if conn is None:
                return False
            conns.append(conn)
        return True
    finally:
        for conn in conns:
            conn.close()


def _connect_when_free(rt: Runtime, name: str) -> websocket.WebSocket:
    """A connection once a slot is free: the `$disconnect`s of `_idle`'s probes run after their closes."""
    conn: websocket.WebSocket = wait_until(lambda: _can_connect(rt, name), 15, f"a free slot for {name}", interval=0.2)
    return conn


def _warm_up(rt: Runtime) -> None:
    """Start the message function's environments first, so cold starts do not stretch a burst past an interval."""
    conn = _connect(rt, "carol")
    try:
        for _ in range(FRAME_BURST):
            conn.send(json.dumps({"action": "subscribe", "orderId": "none-such"}))
        _replies(conn, FRAME_BURST)
    finally:
        conn.close()


def _replies(conn: websocket.WebSocket, count: int) -> list[dict]:
    return [json.loads(conn.recv()) for _ in range(count)]


def test_frames_above_the_rate_get_throttled_and_the_connection_stays_open(rt):
    # GIVEN a connection of alice's
    wait_until(lambda: _idle(rt, "alice"), 15, "alice's slots free", interval=0.2)
    conn = _connect_when_free(rt, "alice")
    try:
        _warm_up(rt)
        # WHEN it sends three bursts' worth of frames at once
        sent = 3 * FRAME_BURST
        for _ in range(sent):
            conn.send(json.dumps({"action": "subscribe", "orderId": "none-such"}))
        replies = _replies(conn, sent)
        codes = [r["error"] for r in replies]
        # THEN the burst is served (not_found), every other frame gets an error frame `throttled`
        assert all(r["type"] == "error" and r["message"] for r in replies), replies
        assert codes.count("not_found") == FRAME_BURST and codes.count("throttled") == sent - FRAME_BURST, codes
        # AND one interval later the connection, still open, is served again
        time.sleep(1 / FRAME_RATE)
        conn.send(json.dumps({"action": "subscribe", "orderId": "none-such"}))
        assert json.loads(conn.recv())["error"] == "not_found"
        # another connection of the same key has its own rate
        other = _connect_when_free(rt, "alice")
        other.send(json.dumps({"action": "subscribe", "orderId": "none-such"}))
        assert json.loads(other.recv())["error"] == "not_found"
        other.close()
    finally:
        conn.close()


def test_a_throttled_subscribe_subscribes_nothing(rt):
    _, order = http("POST", f"{rt.rest}/order", ORDER, headers={"x-api-key": KEYS["bob"]})
    wait_until(lambda: _idle(rt, "bob"), 15, "bob's slots free", interval=0.2)
    conn = _connect_when_free(rt, "bob")
    try:
        for _ in range(FRAME_BURST):  # spend the burst on frames that do nothing
            conn.send(json.dumps({"action": "subscribe", "orderId": "none-such"}))
        assert {r["error"] for r in _replies(conn, FRAME_BURST)} == {"not_found"}
        conn.send(json.dumps({"action": "subscribe", "orderId": order["orderId"]}))
        reply = json.loads(conn.recv())
        assert reply == {"type": "error", "error": "throttled", "message": reply["message"]}, reply
        # no status of the order ever comes on this connection
        conn.settimeout(3)
        with pytest.raises(websocket.WebSocketTimeoutException):
            conn.recv()
    finally:
        conn.close()
