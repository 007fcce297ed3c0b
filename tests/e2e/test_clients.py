"""Clients and keys over the local runtime: 401 without a key, ownership, admin routes, throttling.

The runtime plays API Gateway's authorizers and usage plan from infra/resources.json,
so what is refused here is what the deployed stack refuses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import websocket

from tests.support import Runtime, follow, http, own_runtime, wait_until

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.1", "slippage": "0.01"}
KEYS = {"alice": "key-alice", "bob": "key-bob", "root": "key-root", "flood": "key-flood", "other": "key-other"}
RATE, BURST = 5, 10
ADMIN_ROUTES = [
    ("GET", "/api/dlq/failed-orders"),
    ("GET", "/api/dlq/stats"),
    ("DELETE", "/api/dlq/clear"),
    ("DELETE", "/api/dlq/clear/failed"),
    ("POST", "/api/dlq/redrive"),
    ("GET", "/api/stats"),
    ("POST", "/test/dlq"),
    ("POST", "/test/dlq/bulk"),
]


@pytest.fixture(scope="module")
def rt(tmp_path_factory) -> Iterator[Runtime]:
    api_keys = ",".join(f"{name}:{key}" + (":admin" if name == "root" else "") for name, key in KEYS.items())
    env = {"API_KEYS": api_keys, "RATE_LIMIT_RPS": str(RATE), "RATE_LIMIT_BURST": str(BURST)}
    with own_runtime(tmp_path_factory.mktemp("clients"), env) as runtime:
        yield runtime


def _as(name: str | None) -> dict[str, str | None]:
    return {"x-api-key": KEYS[name] if name else None}


def _submit(rt: Runtime, name: str, **headers: str) -> dict:
    status, order = http("POST", f"{rt.rest}/order", ORDER, headers={**_as(name), **headers})
    assert status in (200, 201), order
    return order


def test_no_key_or_an_unknown_key_is_401_and_stores_nothing(rt):
    for headers in (_as(None), {"x-api-key": "not-a-key"}, {"x-api-key": ""}):
        for method, path, body in (("POST", "/order", ORDER), ("GET", "/orders", None), ("GET", "/order/x", None)):
            status, error = http(method, f"{rt.rest}{path}", body, headers=headers)
            assert status == 401, (headers, path, error)
            assert error["error"] == "unauthorized" and error["message"], error
    # the console and the health check stay open, as on AWS (no authorizer on them)
    assert http("GET", f"{rt.rest}/health", headers=_as(None))[0] == 200
    status, orders = http("GET", f"{rt.rest}/orders?limit=100", headers=_as("other"))
    assert status == 200 and orders["items"] == []


def test_a_client_sees_only_its_own_orders(rt):
    # GIVEN an order of alice's
    order = _submit(rt, "alice")
    oid = order["orderId"]
    # WHEN bob asks for it: as unknown as an order that does not exist
    status, error = http("GET", f"{rt.rest}/order/{oid}", headers=_as("bob"))
    assert (status, error["error"]) == (404, "not_found")
    _, listed = http("GET", f"{rt.rest}/orders?limit=100", headers=_as("bob"))
    assert oid not in {o["orderId"] for o in listed["items"]}
    # even the admin key reads only its own orders (it administers the DLQ, not other clients' orders)
    assert http("GET", f"{rt.rest}/order/{oid}", headers=_as("root"))[0] == 404
    # THEN alice sees it, in her list too
    status, mine = http("GET", f"{rt.rest}/order/{oid}", headers=_as("alice"))
    assert status == 200 and mine["orderId"] == oid
    _, listed = http("GET", f"{rt.rest}/orders?limit=100", headers=_as("alice"))
    assert oid in {o["orderId"] for o in listed["items"]}
    assert all(o["orderId"] != oid for o in http("GET", f"{rt.rest}/orders", headers=_as("bob"))[1]["items"])


def test_subscribing_to_another_clients_order_is_refused(rt):
    oid = _submit(rt, "alice")["orderId"]
    # a ?orderId= connect for someone else's order: refused like an unknown order
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"{rt.ws}/?apiKey={KEYS['bob']}&orderId={oid}", timeout=10)
    assert refused.value.status_code == 404
    # a subscribe frame: an error frame not_found, the connection stays open, nothing is pushed
    conn = websocket.create_connection(f"{rt.ws}/?apiKey={KEYS['bob']}", timeout=10)
    try:
        conn.send(json.dumps({"action": "subscribe", "orderId": oid}))
        reply = json.loads(conn.recv())
        assert reply["type"] == "error" and reply["error"] == "not_found", reply
        conn.settimeout(1.5)
        with pytest.raises(websocket.WebSocketTimeoutException):
            conn.recv()  # no status of alice's order ever reaches bob
    finally:
        conn.close()
    # alice, with the header instead of the query, follows it to the end
    frames = follow(rt.ws, oid, timeout=30, api_key=KEYS["alice"])
    assert frames[-1]["status"] == "confirmed", frames


def test_a_websocket_connect_without_a_valid_key_is_401(rt):
    for query in ("", "?apiKey=wrong", "?orderId=x"):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"{rt.ws}/{query}", timeout=10)
        assert refused.value.status_code == 401, query
    # the header works as well as the query
    conn = websocket.create_connection(rt.ws, timeout=10, header={"x-api-key": KEYS["bob"]})
    conn.close()


def test_admin_and_test_routes_need_an_admin_key(rt):
    for method, path in ADMIN_ROUTES:
        body = {"count": 1} if path.endswith("bulk") else None
        status, error = http(method, f"{rt.rest}{path}", body, headers=_as("alice"))
        assert (status, error["error"]) == (403, "forbidden"), (method, path, error)
        assert http(method, f"{rt.rest}{path}", body, headers=_as(None))[0] == 401
    assert http("GET", f"{rt.rest}/api/dlq/stats", headers=_as("root"))[0] == 200
    status, created = http("POST", f"{rt.rest}/test/dlq", headers=_as("root"))
    assert status == 201
    # the admin's test order is the admin's own
    assert http("GET", f"{rt.rest}/order/{created['orderId']}", headers=_as("root"))[0] == 200


def test_idempotency_keys_are_per_client(rt):
    a = _submit(rt, "alice", **{"Idempotency-Key": "same-key"})
    b = _submit(rt, "bob", **{"Idempotency-Key": "same-key"})
    assert a["orderId"] != b["orderId"]
    again = _submit(rt, "alice", **{"Idempotency-Key": "same-key"})
    assert again["orderId"] == a["orderId"]


def test_above_the_rate_429_and_nothing_stored(rt):
    # GIVEN a key with a usage plan of RATE/s and a burst of BURST
    def post(_: int) -> int:
        return http("POST", f"{rt.rest}/order", ORDER, headers=_as("flood"))[0]

    # (its policy cached first, as API Gateway caches it: the authorizer runs in a function of
    # its own, and a burst of cold authorizer calls would spread the requests over seconds)
    assert http("GET", f"{rt.rest}/orders", headers=_as("flood"))[0] == 200
    time.sleep(BURST / RATE)  # the bucket full again
    # WHEN it sends three bursts' worth at once
    with ThreadPoolExecutor(max_workers=30) as pool:
        codes = list(pool.map(post, range(3 * BURST)))
    accepted, throttled = codes.count(201), codes.count(429)
    # THEN the excess is 429 throttled (in the contract's shape), the rest accepted
    assert accepted + throttled == len(codes), codes
    assert BURST <= accepted <= BURST + RATE and throttled >= BURST, codes
    status, error = http("POST", f"{rt.rest}/order", ORDER, headers=_as("flood"))
    if status == 429:
        assert error["error"] == "throttled" and error["message"], error
    else:
        accepted += 1
    # another key is not slowed by it
    assert http("GET", f"{rt.rest}/orders", headers=_as("other"))[0] == 200
    # and only the accepted orders exist (read once the bucket has refilled)
    time.sleep(BURST / RATE)
    _, listed = http("GET", f"{rt.rest}/orders?limit=100", headers=_as("flood"))
    assert len(listed["items"]) == accepted, (accepted, len(listed["items"]))
    # the accepted ones run to the end: nothing accepted is lost
    time.sleep(BURST / RATE)

    def all_done() -> bool:
        _, page = http("GET", f"{rt.rest}/orders?limit=100", headers=_as("flood"))
        return all(o["status"] == "confirmed" for o in page["items"])

    wait_until(all_done, 60, "every accepted order confirmed", interval=1.0)


def test_a_frame_above_the_size_limit_is_refused_and_the_connection_stays_open(rt):
    conn = websocket.create_connection(f"{rt.ws}/?apiKey={KEYS['bob']}", timeout=10)
    try:
        conn.send(json.dumps({"action": "subscribe", "orderId": "x" * 8000}))
        reply = json.loads(conn.recv())
        assert reply["type"] == "error" and reply["error"] == "payload_too_large", reply
        conn.send(json.dumps({"action": "subscribe", "orderId": "nope"}))
        assert json.loads(conn.recv())["error"] == "not_found"
    finally:
        conn.close()


def test_no_key_is_ever_logged(rt):
    # GIVEN every request of this module (keys in headers, in ?apiKey=, refused ones too)
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(f"{rt.ws}/?apiKey={KEYS['alice']}&orderId=none-such", timeout=10)
    log = rt.log_path.read_text()
    # THEN the runtime's and the engine's log lines name clients, never a key
    assert "ws_connect" in log and "[redacted]" in log
    for key in (*KEYS.values(), "not-a-key", "wrong"):
        assert key not in log, key
