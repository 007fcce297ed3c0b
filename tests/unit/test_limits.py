"""The WebSocket limits against a DynamoDB table (moto): connections per key, frames per connection."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from chalicelib.limits import (
    MAX_CONNECTION_S,
    ConnectionLimiter,
    FrameLimiter,
    LimitModel,
    Throttled,
    TooManyConnections,
)

TABLE = "limits-test"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table(monkeypatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        )
        monkeypatch.setattr(LimitModel, "_connection", None, raising=False)
        yield TABLE


def _open(limiter: ConnectionLimiter, client: str) -> set[str]:
    item = LimitModel.get(f"conns#{client}", consistent_read=True)
    return set(item.conns.as_dict()) if item.conns else set()


def test_a_key_holds_at_most_its_maximum_and_a_release_frees_a_slot(table):
    clock = Clock()
    limiter = ConnectionLimiter(table, 3, clock=clock)
    for cid in ("a", "b", "c"):
        limiter.admit("alice", cid)
    with pytest.raises(TooManyConnections) as refused:
        limiter.admit("alice", "d")
    assert refused.value.status == 429 and refused.value.code == "too_many_connections"
    limiter.admit("bob", "x")  # another key is not counted with alice's
    limiter.release("alice", "b")
    limiter.admit("alice", "d")
    assert _open(limiter, "alice") == {"a", "c", "d"}
    limiter.release("carol", "never-connected")  # a key with no connections: nothing to free, no error


def test_first_connects_of_a_key_arriving_together_both_get_a_slot(table, monkeypatch):
    # GIVEN a key with no connections yet, and another first connect creating its map between
    # this connect's refused update and its create (cold connects of a new key arrive together)
    limiter = ConnectionLimiter(table, 3, clock=Clock())
    save = LimitModel.save
    raced: list[bool] = []

    def save_after_the_other(self, *args, **kwargs):
        if not raced:
            raced.append(True)
            save(LimitModel("conns#alice", conns={"other": 1.0}), condition=LimitModel.key.does_not_exist())
        return save(self, *args, **kwargs)

    monkeypatch.setattr(LimitModel, "save", save_after_the_other)
    # WHEN this one connects THEN it takes a slot beside the other, not a 429
    limiter.admit("alice", "mine")
    assert raced and _open(limiter, "alice") == {"other", "mine"}


def test_entries_a_lost_disconnect_left_behind_are_reclaimed_when_the_key_is_full(table):
    clock = Clock()
    alive = {"a", "b"}
    probed: list[str] = []

    def probe(cid: str) -> bool:
        probed.append(cid)
        return cid in alive

    limiter = ConnectionLimiter(table, 3, clock=clock, probe=probe, probe_interval_s=30, probe_min_age_s=30)
    for cid in ("a", "b", "c"):
        limiter.admit("alice", cid)  # c's $disconnect will never come
    clock.now += 10
    with pytest.raises(TooManyConnections):
        limiter.admit("alice", "d")  # too young to probe: they may still be connecting
    assert probed == []
    clock.now += 60
    limiter.admit("alice", "d")  # the probe finds c gone and frees its slot
    assert sorted(probed) == ["a", "b", "c"] and _open(limiter, "alice") == {"a", "b", "d"}
    alive.add("d")
    with pytest.raises(TooManyConnections):
        limiter.admit("alice", "e")  # full of live connections; probed once per interval at most
    assert len(probed) == 3


def test_entries_older_than_api_gateways_maximum_are_dropped_without_a_probe(table):
    clock = Clock()
    limiter = ConnectionLimiter(table, 2, clock=clock)  # no probe at all
    limiter.admit("alice", "a")
    limiter.admit("alice", "b")
    clock.now += MAX_CONNECTION_S + 1
    limiter.admit("alice", "c")
    assert _open(limiter, "alice") == {"c"}


def test_frames_get_the_burst_then_the_rate(table):
    clock = Clock()
    limiter = FrameLimiter(table, rate=2, burst=4, clock=clock)
    for _ in range(4):
        limiter.take("conn")  # the burst, at once
    with pytest.raises(Throttled) as throttled:
        limiter.take("conn")
    assert throttled.value.code == "throttled"
    limiter.take("other")  # another connection has its own bucket
    clock.now += 0.5  # one interval at 2/s: one more frame
    limiter.take("conn")
    with pytest.raises(Throttled):
        limiter.take("conn")
    clock.now += 10  # idle: the whole burst again
    for _ in range(4):
        limiter.take("conn")
    with pytest.raises(Throttled):
        limiter.take("conn")
