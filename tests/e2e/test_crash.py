"""Fault tests: the local runtime is killed with SIGKILL; the emulator (the 'AWS' side) lives on."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator

import boto3
import pytest

from tests.emulators import emulator_server
from tests.support import Runtime, http, submit_many

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TERMINAL = {"confirmed", "failed"}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Iterator[str]:
    with emulator_server(tmp_path_factory.mktemp("crash-emulator")) as endpoint:
        yield endpoint


def _shorten_visibility(endpoint: str, seconds: int) -> None:
    """An operator's setting, not the app's: the template's 180 s (6x the function timeout)
    would only make this test wait longer for the killed attempts' messages to return."""
    sqs = boto3.client(
        "sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    url = sqs.get_queue_url(QueueName="solana-exec-orders")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(seconds)})


def _queue_counts(endpoint: str) -> dict[str, str]:
    sqs = boto3.client(
        "sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    url = sqs.get_queue_url(QueueName="solana-exec-orders")["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def _orders(rt: Runtime, ids: list[str]) -> list[dict]:
    found = []
    for order_id in ids:
        status, order = http("GET", f"{rt.rest}/order/{order_id}")
        assert status == 200, order
        found.append(order)
    return found


def _wait_all_terminal(rt: Runtime, ids: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        orders = _orders(rt, ids)
        if all(o["status"] in TERMINAL for o in orders) or time.monotonic() > deadline:
            return orders
        time.sleep(0.5)


def _assert_one_swap_each(orders: list[dict]) -> None:
    for order in orders:
        hashes = {e["txHash"] for e in order["history"] if e.get("txHash")}
        assert len(hashes) <= 1, f"order {order['orderId']} has transactions {hashes}"
        if order["status"] == "confirmed":
            assert hashes == {order["txHash"]}
        seqs = [e["seq"] for e in order["history"]]
        assert seqs == sorted(set(seqs)), "history must be gap-free and ordered"


def test_killed_with_orders_in_every_stage_then_restarted(emulator, tmp_path):
    env = {"DEX_QUOTE_MS": "300", "DEX_SUBMIT_MS": "1500-2500", "ATTEMPT_LEASE_S": "3"}
    first = Runtime(emulator, tmp_path / "first.log", env).start()
    try:
        _killed_with_orders_in_every_stage(emulator, tmp_path, env, first)
    finally:
        first.stop(signal.SIGKILL)  # no-op once the test has killed it; no runtime left behind


def _killed_with_orders_in_every_stage(emulator, tmp_path, env, first):
    _shorten_visibility(emulator, 4)
    # A long poll already waiting keeps the visibility it started with (moto fixes it at
    # the start of the call): let the pollers' current 2 s long polls run out first.
    time.sleep(2.5)
    ids = submit_many(first.rest, {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.3", "slippage": 0.02}, 30)
    # GIVEN orders waiting or being quoted (pending) and others on the chain (submitted) at
    # the same instant; `routing` and `building` last only milliseconds (the quotes come
    # before the `routing` write), so the kill lands in them only by chance.
    deadline = time.monotonic() + 30
    seen: Counter[str] = Counter()
    while time.monotonic() < deadline:
        _, listed = http("GET", f"{first.rest}/orders?limit=100")
        seen = Counter(o["status"] for o in listed["items"] if o["orderId"] in ids)
        if seen["pending"] and seen["submitted"]:
            break
        time.sleep(0.02)
    # WHEN the runtime is killed outright
    first.stop(signal.SIGKILL)
    assert first.proc.returncode == -signal.SIGKILL
    assert seen["pending"] and seen["submitted"], f"did not catch every stage: {seen}"
    # AND started again on the same emulator
    second = Runtime(emulator, tmp_path / "second.log", env).start()
    try:
        orders = _wait_all_terminal(second, ids, timeout=120)
    finally:
        second.stop()
    # THEN every order ended terminal, none was lost, and none has two transactions
    assert len(orders) == 30
    stuck = [(o["orderId"], o["status"]) for o in orders if o["status"] != "confirmed"]
    assert not stuck, (stuck, _queue_counts(emulator))
    _assert_one_swap_each(orders)


def test_killed_between_the_order_write_and_the_enqueue(emulator, tmp_path):
    # GIVEN an API function whose execution environment dies right after it stores an
    # order, before it queues it (on Lambda only that environment dies, not the API)
    fast_sweeper = {
        "OFFLINE_SCHEDULE_SCALE": "0.05",
        "STRANDED_AFTER_S": "2",
        "DEX_QUOTE_MS": "0",
        "DEX_SUBMIT_MS": "0",
        "ENGINE_FAULT_POINT": "after_order_write",
    }
    rt = Runtime(emulator, tmp_path / "runtime.log", fast_sweeper).start()
    try:
        status, _ = http(
            "POST", f"{rt.rest}/order", {"tokenIn": "SOL", "tokenOut": "USDT", "amount": "0.7", "slippage": 0.01}
        )
        assert status == 502, "API Gateway answers a dead environment with 502: never 201"
        assert rt.proc is not None and rt.proc.poll() is None, "only the function's environment died"
        _, listed = http("GET", f"{rt.rest}/orders?limit=100")
        stranded = [o for o in listed["items"] if o["tokenOut"] == "USDT" and o["amount"] == "0.7"]
        assert len(stranded) == 1, "the order was stored before the crash"
        # WHEN the sweeper finds it stranded THEN it queues it and it executes, once
        [order] = _wait_all_terminal(rt, [stranded[0]["orderId"]], timeout=60)
    finally:
        rt.stop()
    assert order["status"] == "confirmed"
    _assert_one_swap_each([order])
