"""Property-based fuzzing of the running local stack: REST from the OpenAPI document, WebSocket frames.

REST: schemathesis generates requests from chalicelib/openapi.json (valid and invalid
bodies, query strings, headers, path ids) and sends them to a runtime of this module's
own on 127.0.0.1, with the default admin key; its checks (no 5xx, statuses and bodies
as documented, auth enforced) run on every answer. WebSocket: hypothesis generates
frames (JSON and not, known and unknown actions, odd ids, big and unicode text) on one
connection. Afterwards: the orders that exist are exactly those a 201 created (a rejected
request stored nothing), and every one of them reaches a terminal status (none lost).

Bounded: FUZZ_EXAMPLES cases per operation (default 25; four times that of orders built
near the valid ones, which the schema alone rarely produces) and FUZZ_FRAMES frames
(default 300); the summary line gives the counts.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
import schemathesis.checks as checks
import websocket
from hypothesis import HealthCheck, given, settings

from chalicelib.openapi import DOCUMENT
from tests.support import DEV_KEY, Runtime, http, own_runtime, wait_until

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FRAMES = int(os.environ.get("FUZZ_FRAMES", "300"))
schema = schemathesis.openapi.from_path(str(DOCUMENT))
RESULTS: dict[str, Any] = {"cases": Counter(), "statuses": Counter(), "created": set(), "frames": 0, "ws_errors": 0}
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def rt(tmp_path_factory) -> Iterator[Runtime]:
    env = {
        "RATE_LIMIT_RPS": "100000",
        "RATE_LIMIT_BURST": "100000",
        "ENABLE_TEST_ENDPOINTS": "false",  # /test/dlq/bulk would queue 100 failing orders a case
        "RETRY_DELAYS_S": "1,1,1",
    }
    with own_runtime(tmp_path_factory.mktemp("fuzz"), env) as runtime:
        yield runtime


@schema.parametrize()
@FUZZ_SETTINGS
def test_rest_api_from_its_openapi_document(case, rt):
    # Every check but positive_data_acceptance: which tokens and amounts are valid is data (GET /tokens,
    # each token's decimals), not schema, so a schema-valid order may rightly be 400. Nor
    # unsupported_method (405 for an undeclared method): API Gateway answers those itself with 403
    # Missing Authentication Token before any function runs, as the local runtime now does (docs/CONTRACT.md).
    response = case.call_and_validate(
        base_url=rt.rest,
        headers={"x-api-key": DEV_KEY},
        excluded_checks=[checks.positive_data_acceptance, checks.unsupported_method],
    )
    label = f"{case.method} {case.path}"
    RESULTS["cases"][label] += 1
    RESULTS["statuses"][response.status_code] += 1
    assert response.status_code < 500, (label, response.status_code, response.text[:300])
    if case.method == "POST" and case.path == "/order" and response.status_code == 201:
        RESULTS["created"].add(response.json()["orderId"])


ORDERS = st.fixed_dictionaries(
    {
        "tokenIn": st.sampled_from(
            ["SOL", "USDC", "sol", "usdc", "BONK", "So11111111111111111111111111111111111111112"]
        ),
        "tokenOut": st.sampled_from(["USDC", "SOL", "Usdc", "NOPE"]),
        "amount": st.one_of(
            *(st.decimals(min_value=-1, max_value=20, places=p, allow_nan=False).map(str) for p in (0, 2, 6, 10))
        ),
        "slippage": st.decimals(min_value=0, max_value="1.2", places=3, allow_nan=False).map(str),
    }
)


@settings(FUZZ_SETTINGS, max_examples=4 * EXAMPLES)
@given(order=ORDERS, key=st.one_of(st.none(), st.sampled_from(["k1", "k2", "k3"])))
def test_orders_near_the_valid_ones(rt, order, key):
    """Mostly valid orders (the schema alone rarely builds one): each is stored once or refused with nothing stored."""
    headers = {"Idempotency-Key": key} if key else {}
    status, body = http("POST", f"{rt.rest}/order", order, headers=headers)
    RESULTS["cases"]["POST /order (near valid)"] += 1
    RESULTS["statuses"][status] += 1
    assert status in (200, 201, 400, 409), (order, status, body)
    if status == 201:
        RESULTS["created"].add(body["orderId"])
    elif status == 200:
        assert body["orderId"] in RESULTS["created"], body  # a replay returns an order a 201 created
    else:
        assert body["error"] and body["message"], body


FRAME_TEXT = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.builds(
        json.dumps,
        st.fixed_dictionaries(
            {"action": st.sampled_from(["subscribe", "unsubscribe", "$connect", "$default", "", "sendmessage"])},
            optional={
                "orderId": st.one_of(st.text(max_size=80), st.integers(), st.none(), st.lists(st.integers())),
                "apiKey": st.text(max_size=20),
            },
        ),
    ),
    st.builds(json.dumps, st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10), st.lists)),
    st.integers(min_value=4000, max_value=9000).map(lambda n: json.dumps({"action": "subscribe", "orderId": "x" * n})),
)


def _acknowledged_silently(frame: str) -> bool:
    """`unsubscribe` with a plausible id: the contract sends nothing back for it."""
    try:
        parsed = json.loads(frame)
    except ValueError:
        return False
    return (
        isinstance(parsed, dict)
        and parsed.get("action") == "unsubscribe"
        and isinstance(parsed.get("orderId"), str)
        and 0 < len(parsed["orderId"]) <= 64
        and len(frame.encode()) <= 4096
    )


def test_websocket_frames(rt):
    conn = websocket.create_connection(f"{rt.ws}/?apiKey={DEV_KEY}", timeout=10)
    try:

        @given(frame=FRAME_TEXT)
        @settings(max_examples=FRAMES, deadline=None, derandomize=True, database=None)
        def one_frame(frame: str) -> None:
            conn.send(frame)
            RESULTS["frames"] += 1
            if _acknowledged_silently(frame):
                # an unsubscribe that succeeds has no answer: a probe shows the connection still serves
                conn.send(json.dumps({"action": "subscribe", "orderId": "probe"}))
                assert json.loads(conn.recv())["error"] == "not_found"
                return
            reply = json.loads(conn.recv())
            # every bad frame gets the contract's error frame; API Gateway's own 5xx frame never comes
            if reply.get("message") == "Internal server error":
                RESULTS["ws_errors"] += 1
            assert reply.get("message") != "Internal server error", (frame[:200], reply)
            assert reply.get("type") in ("error", "status"), (frame[:200], reply)
            if reply["type"] == "error":
                assert reply["error"] and reply["message"], reply

        one_frame()
        # the connection is still open and still works
        conn.send(json.dumps({"action": "subscribe", "orderId": "nope"}))
        assert json.loads(conn.recv())["error"] == "not_found"
    finally:
        conn.close()


def test_rejected_input_stored_nothing_and_no_accepted_order_was_lost(rt):
    assert sum(RESULTS["cases"].values()) > 0, "the REST fuzzer ran no case"
    time.sleep(0.5)
    stored: set[str] = set()
    token = None
    while True:
        status, page = http("GET", f"{rt.rest}/orders?limit=100" + (f"&nextToken={token}" if token else ""))
        assert status == 200, page
        stored |= {o["orderId"] for o in page["items"]}
        token = page["nextToken"]
        if not token:
            break
    created = RESULTS["created"]
    assert stored == created, {"stored only": stored - created, "lost": created - stored}

    def all_terminal() -> bool:
        return all(http("GET", f"{rt.rest}/order/{oid}")[1]["status"] in ("confirmed", "failed") for oid in stored)

    wait_until(all_terminal, 120, "every accepted order terminal", interval=1.0)
    print(
        f"\nfuzz: {sum(RESULTS['cases'].values())} REST cases over {len(RESULTS['cases'])} method+path pairs, "
        f"statuses {dict(sorted(RESULTS['statuses'].items()))}, {len(stored)} orders accepted and all terminal; "
        f"{RESULTS['frames']} WebSocket frames, {RESULTS['ws_errors']} server errors"
    )
