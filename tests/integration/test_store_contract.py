"""One contract, two stores: the in-memory twin and DynamoDB (moto, or LocalStack's DynamoDB Local) behave alike."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from chalicelib.dynamo import DynamoOrderStore, bind_tables
from chalicelib.errors import StaleWrite
from chalicelib.memory import MemoryOrderStore
from chalicelib.orders import OrderRecord, OrderRequest, Status, SubscriberMode, status_event
from tests.emulators import emulator_server, test_emulator

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "resources.json"


def _create_tables(name: str = "t-orders") -> None:
    resources = json.loads(TEMPLATE.read_text())["Resources"]
    client = boto3.client("dynamodb", region_name="us-east-1")
    props = resources["OrdersTable"]["Properties"]
    kwargs = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")}
    client.create_table(TableName=name, **kwargs)
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    bind_tables(name)


@pytest.fixture(scope="module")
def localstack_endpoint(tmp_path_factory) -> Iterator[str | None]:
    """With TEST_EMULATOR=localstack, the DynamoDB store runs on a LocalStack (DynamoDB Local) of this module's."""
    if test_emulator() != "localstack":
        yield None
        return
    with emulator_server(tmp_path_factory.mktemp("store-contract")) as endpoint:
        yield endpoint


@pytest.fixture(params=["memory", "dynamodb"])
def stores(request, monkeypatch, localstack_endpoint) -> Iterator[tuple]:
    if request.param == "memory":
        yield MemoryOrderStore(), None
        return
    for key, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    if localstack_endpoint is not None:
        monkeypatch.setenv("AWS_ENDPOINT_URL", localstack_endpoint)
        _create_tables(f"t-orders-{uuid.uuid4().hex[:8]}")  # one server for the module: a table per test
        yield DynamoOrderStore(), None
        return
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        _create_tables()
        yield DynamoOrderStore(), None


def _order(order_id: str = "o-1", created_at: str = "2026-11-25T10:00:00.000Z") -> OrderRecord:
    request = OrderRequest("SOL", "USDC", Decimal("1.5"), 1_500_000_000, Decimal("0.01"))
    return OrderRecord(
        order_id=order_id,
        request=request,
        status=Status.PENDING,
        seq=1,
        created_at=created_at,
        history=(status_event(order_id, Status.PENDING, 1),),
        fingerprint=request.fingerprint(),
    )


def test_create_is_conditional_and_get_round_trips(stores):
    store, _ = stores
    # GIVEN a stored order WHEN it is created again THEN the second create is refused
    assert store.create(_order())
    assert not store.create(_order())
    got = store.get("o-1")
    assert got is not None
    assert got.request.amount == Decimal("1.5") and got.request.amount_in == 1_500_000_000
    assert got.status is Status.PENDING and got.seq == 1 and got.history[0]["status"] == "pending"
    assert store.get("missing") is None


def test_status_write_is_conditional_on_seq_and_returns_subscribers(stores):
    store, _ = stores
    store.create(_order())
    first = store.get("o-1")
    # GIVEN a subscriber registered after the order was read
    store.add_subscriber("o-1", "c-1", SubscriberMode.SUBSCRIBED)
    # WHEN the worker writes the next status from its (older) read
    written = store.append_status(first, status_event("o-1", Status.ROUTING, 2), {"dex": "raydium"}, attempts=1)
    # THEN the write sees the subscriber: no status can be lost to the race
    assert written.subscribers == {"c-1": SubscriberMode.SUBSCRIBED}
    assert [e["seq"] for e in written.history] == [1, 2]
    assert written.details["dex"] == "raydium" and written.attempts == 1
    # AND a second writer holding the same stale read loses
    with pytest.raises(StaleWrite):
        store.append_status(first, status_event("o-1", Status.ROUTING, 2), {})


def test_a_details_write_also_invalidates_older_reads(stores):
    store, _ = stores
    store.create(_order())
    read = store.get("o-1")
    # GIVEN another delivery recorded an error on the order (no status change, same seq)
    store.update_details(read, {"lastError": "venue down"})
    # WHEN a writer holding the read from before tries to write a status
    # THEN it loses, rather than overwrite the details it never saw
    with pytest.raises(StaleWrite):
        store.append_status(read, status_event("o-1", Status.ROUTING, 2), {})
    assert store.get("o-1").details["lastError"] == "venue down"


def test_a_write_for_an_order_that_is_not_there_creates_nothing(stores):
    store, _ = stores
    ghost = _order()  # never created
    with pytest.raises(StaleWrite):
        store.append_status(ghost, status_event("o-1", Status.ROUTING, 2), {})
    assert store.get("o-1") is None


def test_subscriber_modes(stores):
    store, _ = stores
    store.create(_order())
    assert store.add_subscriber("missing", "c-1", SubscriberMode.PENDING) is None
    assert store.set_subscriber_mode("o-1", "c-1", SubscriberMode.OPEN) is None  # not registered
    store.add_subscriber("o-1", "c-1", SubscriberMode.PENDING)
    marked = store.set_subscriber_mode("o-1", "c-1", SubscriberMode.OPEN)
    assert marked is not None and marked.subscribers["c-1"] is SubscriberMode.OPEN
    store.remove_subscriber("o-1", "c-1")
    assert store.get("o-1").subscribers == {}


def test_a_hand_over_lands_only_in_the_expected_mode_at_the_expected_seq(stores):
    store, _ = stores
    order = _order()
    store.create(order)
    store.add_subscriber("o-1", "c-1", SubscriberMode.PENDING)
    # a claim: only from the expected mode
    assert store.set_subscriber_mode("o-1", "c-1", SubscriberMode.REPLAYING, expect=(SubscriberMode.OPEN,)) is None
    claimed = store.set_subscriber_mode("o-1", "c-1", SubscriberMode.REPLAYING, expect=(SubscriberMode.PENDING,))
    assert claimed is not None and claimed.subscribers["c-1"] is SubscriberMode.REPLAYING
    assert store.set_subscriber_mode("o-1", "c-1", SubscriberMode.REPLAYING, expect=(SubscriberMode.PENDING,)) is None
    # a status written since seq 1: the hand-over at seq 1 fails, at seq 2 it lands
    store.append_status(claimed, status_event("o-1", Status.ROUTING, 2), {})
    expect = (SubscriberMode.REPLAYING,)
    assert store.set_subscriber_mode("o-1", "c-1", SubscriberMode.OPEN, expect=expect, at_seq=1) is None
    assert store.get("o-1").subscribers == {"c-1": SubscriberMode.REPLAYING}
    live = store.set_subscriber_mode("o-1", "c-1", SubscriberMode.OPEN, expect=expect, at_seq=2)
    assert live is not None and live.subscribers == {"c-1": SubscriberMode.OPEN} and live.seq == 2
    assert store.set_subscriber_mode("o-9", "c-1", SubscriberMode.OPEN, at_seq=2) is None  # no such order


def test_list_recent_newest_first_with_pagination_and_status(stores):
    store, _ = stores
    for i in range(5):
        store.create(_order(f"o-{i}", f"2026-11-25T10:00:0{i}.000Z"))
    record = store.get("o-3")
    store.append_status(record, status_event("o-3", Status.ROUTING, 2), {})
    page, token = store.list_recent(3, None, None)
    assert [r.order_id for r in page] == ["o-4", "o-3", "o-2"]
    assert token
    rest, token2 = store.list_recent(3, None, token)
    assert [r.order_id for r in rest] == ["o-1", "o-0"]
    assert token2 is None or store.list_recent(3, None, token2)[0] == []
    routing, _ = store.list_recent(10, Status.ROUTING, None)
    assert [r.order_id for r in routing] == ["o-3"]


def test_waiting_since_holds_only_waiting_orders_oldest_first(stores):
    store, _ = stores
    for i in range(4):
        store.create(_order(f"w-{i}", f"2026-11-25T10:00:0{i}.000Z"))
        store.append_status(store.get(f"w-{i}"), status_event(f"w-{i}", Status.WAITING, 2), {})
    store.create(_order("p-9", "2026-11-25T10:00:09.000Z"))  # pending: not in the index
    leaving = store.get("w-1")
    store.append_status(leaving, status_event("w-1", Status.CANCELLED, 3), {})
    assert [r.order_id for r in store.waiting_since(None)] == ["w-0", "w-2", "w-3"]
    assert [r.order_id for r in store.waiting_since("2026-11-25T10:00:02.000Z")] == ["w-3"]
