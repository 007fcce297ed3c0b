"""Failures end to end: backoff, the DLQ and its endpoints, permanent errors, idempotent POSTs."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from functools import partial

import pytest

from tests.support import Runtime, follow, http, own_runtime, statuses, wait_until

# The DLQ endpoints reconcile on every call: poll them gently.
_wait = partial(wait_until, interval=0.25)
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
# Shorter than the default 2,4,8 s (the backoff is the same code, and growing): each round waits them out.
_DELAYS = (1, 2, 3)


@pytest.fixture(scope="module")
def rt(tmp_path_factory) -> Iterator[Runtime]:
    """A runtime of its own: the DLQ counts below must not see other tests' orders."""
    env = {"DEX_QUOTE_MS": "10", "DEX_SUBMIT_MS": "50", "RETRY_DELAYS_S": ",".join(map(str, _DELAYS))}
    with own_runtime(tmp_path_factory.mktemp("failures"), env) as runtime:
        yield runtime


def _ts(event) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def _dlq_stats(rt):
    status, stats = http("GET", f"{rt.rest}/api/dlq/stats")
    assert status == 200, stats
    return stats


def test_a_failing_order_backs_off_lands_in_the_dlq_and_can_be_redriven_and_cleared(rt):
    # GIVEN an order that fails on every attempt
    status, created = http("POST", f"{rt.rest}/test/dlq", {})
    assert status == 201
    order_id = created["orderId"]
    # WHEN it is followed to the end
    events = statuses(follow(rt.ws, order_id, timeout=60), order_id)
    # THEN it made exactly 4 attempts, at least RETRY_DELAYS_S (1, 2 and 3 s) apart, and failed once
    routing = [e for e in events if e["status"] == "routing"]
    assert [e["attempt"] for e in routing] == [1, 2, 3, 4]
    gaps = [_ts(b) - _ts(a) for a, b in itertools.pairwise(routing)]
    for gap, floor in zip(gaps, _DELAYS, strict=True):
        assert gap >= floor, f"attempt gaps {gaps}"
    assert all(e.get("error") for e in routing[1:]), "each retry carries the previous error"
    failed = [e for e in events if e["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["attempts"] == 4 and failed[0]["error"]
    assert events[-1]["status"] == "failed"
    # AND it is in the DLQ with its full story
    _wait(lambda: _dlq_stats(rt)["messagesInDlq"] >= 1, 20, "the message to reach the DLQ")
    stats = _dlq_stats(rt)
    assert stats["failureRecords"] >= 1 and stats["byReason"].get("test_failure", 0) >= 1
    status, listed = http("GET", f"{rt.rest}/api/dlq/failed-orders?limit=50")
    record = next(i for i in listed["items"] if i["orderId"] == order_id)
    assert record["attemptsMade"] == 4 and record["failureReason"] == "test_failure"
    assert record["originalOrder"]["tokenIn"] == "SOL" and record["lastError"] and record["failedAt"]
    assert [e["attempt"] for e in record["errors"]] == [1, 2, 3, 4]

    # WHEN it is redriven
    status, redriven = http("POST", f"{rt.rest}/api/dlq/redrive")
    assert status == 200 and order_id in redriven["orderIds"]
    # (by receive/send/delete on both emulators: DLQ_MOVE_TASK=auto uses the move task on AWS only,
    # since LocalStack's moved messages keep their receive count; tests/fidelity, decision 013)
    assert '"by":"receive/send/delete"' in rt.log_path.read_text().replace(" ", "")
    # THEN a subscriber sees a fresh round start live, and it fails again after 4 more attempts
    again = statuses(follow(rt.ws, subscribe=[order_id], timeout=60, after_seq=events[-1]["seq"]), order_id)
    round_two = [e for e in again if e["status"] == "routing" and e.get("round") == 2]
    assert [e["attempt"] for e in round_two] == [1, 2, 3, 4]
    assert [e["seq"] for e in again] == sorted({e["seq"] for e in again}), "seq keeps increasing"
    _wait(lambda: _dlq_stats(rt)["messagesInDlq"] >= 1, 20, "the redriven message to return to the DLQ")

    # WHEN the DLQ is cleared but the records kept
    status, cleared = http("DELETE", f"{rt.rest}/api/dlq/clear/failed")
    assert status == 200 and cleared["messagesPurged"] >= 1 and cleared["recordsCleared"] == 0
    assert _dlq_stats(rt)["messagesInDlq"] == 0 and _dlq_stats(rt)["failureRecords"] >= 1
    # AND then everything
    status, cleared = http("DELETE", f"{rt.rest}/api/dlq/clear")
    assert status == 200
    stats = _dlq_stats(rt)
    assert stats["messagesInDlq"] == 0 and stats["failureRecords"] == 0


def test_a_permanent_failure_fails_at_once_without_burning_retries(rt):
    # GIVEN a pair no venue has a pool for
    status, order = http(
        "POST", f"{rt.rest}/order", {"tokenIn": "JUP", "tokenOut": "BONK", "amount": 10, "slippage": 0.01}
    )
    assert status == 201
    events = statuses(follow(rt.ws, order["orderId"], timeout=20), order["orderId"])
    # THEN it fails on the first attempt, and is recorded, but not dead-lettered for redrive
    assert [e["status"] for e in events] == ["pending", "failed"]
    assert events[-1]["attempts"] == 1
    status, listed = http("GET", f"{rt.rest}/api/dlq/failed-orders?limit=50")
    record = next(i for i in listed["items"] if i["orderId"] == order["orderId"])
    assert record["retryable"] is False and record["attemptsMade"] == 1


def test_a_retried_post_with_the_same_idempotency_key_returns_the_first_order(rt):
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.5", "slippage": 0.01}
    first_status, first = http("POST", f"{rt.rest}/order", body, {"Idempotency-Key": "client-retry-42"})
    again_status, again = http("POST", f"{rt.rest}/order", body, {"Idempotency-Key": "client-retry-42"})
    assert (first_status, again_status) == (201, 200)
    assert again["orderId"] == first["orderId"]
    conflict_status, conflict = http(
        "POST", f"{rt.rest}/order", {**body, "amount": "0.6"}, {"Idempotency-Key": "client-retry-42"}
    )
    assert conflict_status == 409 and conflict["error"] == "idempotency_conflict"
    events = statuses(follow(rt.ws, first["orderId"], timeout=20), first["orderId"])
    assert [e["status"] for e in events][-1] == "confirmed"
    assert sum(e["status"] == "submitted" for e in events) == 1, "one order, one swap"
