"""DynamoDB adapter (pynamodb): orders with their history and subscribers."""

from __future__ import annotations

import base64
import json
from typing import Any

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.errors import StaleWrite
from chalicelib.orders import OrderRecord, Status, SubscriberMode, utc_now_iso
from chalicelib.ports import Page
from chalicelib.records import dumps, merged_details, record_from_parts, request_to_json

__all__ = ["DynamoOrderStore", "OrderModel", "bind_tables"]

_LIST_KEY = "orders"
_WATCH_KEY = "waiting"


def _is_conditional_failure(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


class ByClient(GlobalSecondaryIndex["OrderModel"]):
    """A client's orders, newest first: GET /orders reads its own partition, never a scan."""

    class Meta:
        index_name = "byClient"
        projection = AllProjection()

    client = UnicodeAttribute(hash_key=True)
    createdAt = UnicodeAttribute(range_key=True)


class ByCreatedAt(GlobalSecondaryIndex["OrderModel"]):
    class Meta:
        index_name = "byCreatedAt"
        projection = AllProjection()

    listKey = UnicodeAttribute(hash_key=True)
    createdAt = UnicodeAttribute(range_key=True)


class ByWatch(GlobalSecondaryIndex["OrderModel"]):
    """Waiting orders only (watchKey is removed when an order leaves `waiting`)."""

    class Meta:
        index_name = "byWatch"
        projection = AllProjection()

    watchKey = UnicodeAttribute(hash_key=True)
    createdAt = UnicodeAttribute(range_key=True)


# pynamodb pools 10 connections per table by default; where one process serves many
# requests at once (the local runtime, a Lambda's concurrent quotes) a busier pool would
# drop and redial connections. On Lambda an instance uses one or two: harmless.
MAX_POOL_CONNECTIONS = 50


class OrderModel(Model):
    class Meta:
        table_name = "solana-exec-orders"
        max_pool_connections = MAX_POOL_CONNECTIONS

    orderId = UnicodeAttribute(hash_key=True)
    listKey = UnicodeAttribute(default=_LIST_KEY)
    createdAt = UnicodeAttribute()
    request = UnicodeAttribute()
    status = UnicodeAttribute()
    seq = NumberAttribute()
    history = ListAttribute(of=UnicodeAttribute, default=list)
    subscribers = MapAttribute(default=dict)  # type: ignore[var-annotated]
    attempts = NumberAttribute(default=0)
    round = NumberAttribute(default=1)
    details = UnicodeAttribute(null=True)
    fingerprint = UnicodeAttribute(default="")
    updatedAt = UnicodeAttribute(null=True)
    version = NumberAttribute(default=0)
    # Set only while the order is `waiting` (limit and sniper orders): a sparse index.
    watchKey = UnicodeAttribute(null=True)
    client = UnicodeAttribute(null=True)
    by_created_at = ByCreatedAt()
    by_watch = ByWatch()
    by_client = ByClient()


def bind_tables(orders_table: str) -> None:
    """Point the model at the table the template created (its name comes from the environment)."""
    OrderModel.Meta.table_name = orders_table


def _to_record(item: OrderModel) -> OrderRecord:
    subscribers = item.subscribers.as_dict() if item.subscribers is not None else {}
    return record_from_parts(
        order_id=item.orderId,
        request_json=item.request,
        status=item.status,
        seq=int(item.seq),
        created_at=item.createdAt,
        history=[str(h) for h in (item.history or [])],
        subscribers={k: str(v) for k, v in subscribers.items()},
        attempts=int(item.attempts or 0),
        round_=int(item.round or 1),
        details_json=item.details,
        fingerprint=item.fingerprint or "",
        version=int(item.version or 0),
        client=item.client or "",
    )


class DynamoOrderStore:
    """Orders in one item each; every status change is one conditional UpdateItem."""

    def create(self, record: OrderRecord) -> bool:
        item = OrderModel(
            record.order_id,
            createdAt=record.created_at,
            request=request_to_json(record.request),
            status=record.status.value,
            seq=record.seq,
            history=[dumps(e) for e in record.history],
            subscribers={},
            attempts=record.attempts,
            round=record.round,
            details=dumps(record.details),
            fingerprint=record.fingerprint,
            updatedAt=record.created_at,
            version=record.version,
            client=record.client or None,
        )
        try:
            item.save(condition=OrderModel.orderId.does_not_exist())
        except PutError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def get(self, order_id: str) -> OrderRecord | None:
        try:
            return _to_record(OrderModel.get(order_id, consistent_read=True))
        except DoesNotExist:
            return None

    def append_status(
        self,
        record: OrderRecord,
        event: dict[str, Any],
        details: dict[str, Any],
        *,
        attempts: int | None = None,
        round_: int | None = None,
    ) -> OrderRecord:
        actions = [
            OrderModel.status.set(event["status"]),
            OrderModel.seq.set(event["seq"]),
            OrderModel.history.set(OrderModel.history.append([dumps(event)])),
            OrderModel.details.set(dumps(merged_details(record.details, details))),
            OrderModel.updatedAt.set(event["timestamp"]),
        ]
        if event["status"] == Status.WAITING.value:
            actions.append(OrderModel.watchKey.set(_WATCH_KEY))
        elif record.status is Status.WAITING:
            actions.append(OrderModel.watchKey.remove())
        if attempts is not None:
            actions.append(OrderModel.attempts.set(attempts))
        if round_ is not None:
            actions.append(OrderModel.round.set(round_))
        return self._conditional_update(record, actions)

    def update_details(self, record: OrderRecord, details: dict[str, Any]) -> OrderRecord:
        actions = [
            OrderModel.details.set(dumps(merged_details(record.details, details))),
            OrderModel.updatedAt.set(utc_now_iso()),
        ]
        return self._conditional_update(record, actions)

    def _conditional_update(self, record: OrderRecord, actions: list[Any]) -> OrderRecord:
        item = OrderModel(record.order_id)
        condition = OrderModel.version == record.version
        if record.version == 0:  # an item written before `version` existed reads as 0 (but must exist)
            condition = condition | (OrderModel.orderId.exists() & OrderModel.version.does_not_exist())
        try:
            item.update(actions=[*actions, OrderModel.version.set(record.version + 1)], condition=condition)
        except UpdateError as exc:
            if _is_conditional_failure(exc):
                raise StaleWrite(f"order {record.order_id} changed since version {record.version}") from None
            raise
        return _to_record(item)

    def add_subscriber(
        self, order_id: str, connection_id: str, mode: SubscriberMode, client: str | None = None
    ) -> OrderRecord | None:
        owner = None if client is None else OrderModel.client == client
        return self._subscriber_update(order_id, [OrderModel.subscribers[connection_id].set(mode.value)], owner)

    def set_subscriber_mode(
        self,
        order_id: str,
        connection_id: str,
        mode: SubscriberMode,
        *,
        expect: tuple[SubscriberMode, ...] = (),
        at_seq: int | None = None,
    ) -> OrderRecord | None:
        subscriber = OrderModel.subscribers[connection_id]
        condition = subscriber.exists()
        if expect:
            condition = condition & subscriber.is_in(*(m.value for m in expect))
        if at_seq is not None:
            condition = condition & (OrderModel.seq == at_seq)
        return self._subscriber_update(order_id, [subscriber.set(mode.value)], condition)

    def remove_subscriber(self, order_id: str, connection_id: str) -> None:
        self._subscriber_update(order_id, [OrderModel.subscribers[connection_id].remove()], None)

    def _subscriber_update(self, order_id: str, actions: list[Any], extra: Any) -> OrderRecord | None:
        condition = OrderModel.orderId.exists()
        if extra is not None:
            condition = condition & extra
        item = OrderModel(order_id)
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if _is_conditional_failure(exc):
                return None
            raise
        return _to_record(item)

    def list_recent(self, limit: int, status: Status | None, next_token: str | None, client: str | None = None) -> Page:
        start_key = json.loads(base64.urlsafe_b64decode(next_token.encode())) if next_token else None
        condition = OrderModel.status == status.value if status else None
        index: Any = OrderModel.by_created_at if client is None else OrderModel.by_client
        results = index.query(
            _LIST_KEY if client is None else client,
            scan_index_forward=False,
            limit=limit,
            filter_condition=condition,
            last_evaluated_key=start_key,
            page_size=limit if status is None else max(limit, 50),
        )
        items = [_to_record(item) for item in results]
        last = results.last_evaluated_key
        token = base64.urlsafe_b64encode(json.dumps(last).encode()).decode() if last else None
        return items, token

    def pending_between(self, since_iso: str, until_iso: str) -> list[OrderRecord]:
        results = OrderModel.by_created_at.query(
            _LIST_KEY,
            OrderModel.createdAt.between(since_iso, until_iso),
            filter_condition=OrderModel.status == Status.PENDING.value,
        )
        return [_to_record(item) for item in results]

    def waiting_since(self, created_after: str | None) -> list[OrderRecord]:
        condition = OrderModel.createdAt > created_after if created_after else None
        results = OrderModel.by_watch.query(_WATCH_KEY, condition, scan_index_forward=True)
        return [_to_record(item) for item in results if item.status == Status.WAITING.value]
