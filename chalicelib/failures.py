"""Failure records: the full story of every order that failed, kept for post-mortem."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.models import Model

from chalicelib.dynamo import MAX_POOL_CONNECTIONS

__all__ = ["DynamoFailureStore", "FailureModel", "FailureRecord", "FailureStore", "MemoryFailureStore"]


@dataclass(frozen=True)
class FailureRecord:
    order_id: str
    original_order: dict[str, Any]
    failure_reason: str
    attempts_made: int
    failed_at: str
    last_error: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    round: int = 1
    retryable: bool = True
    redriven: int = 0

    def to_public(self) -> dict[str, Any]:
        return {
            "orderId": self.order_id,
            "originalOrder": self.original_order,
            "failureReason": self.failure_reason,
            "attemptsMade": self.attempts_made,
            "failedAt": self.failed_at,
            "lastError": self.last_error,
            "errors": self.errors,
            "round": self.round,
            "retryable": self.retryable,
            "redriven": self.redriven,
        }


class FailureStore(Protocol):
    def put(self, record: FailureRecord) -> None: ...

    def get(self, order_id: str) -> FailureRecord | None: ...

    def page(self, limit: int, next_token: str | None) -> tuple[list[FailureRecord], str | None]: ...

    def all(self) -> list[FailureRecord]: ...

    def mark_redriven(self, order_id: str) -> None: ...

    def clear(self) -> int: ...


class FailureModel(Model):
    class Meta:
        table_name = "solana-exec-failures"
        max_pool_connections = MAX_POOL_CONNECTIONS

    orderId = UnicodeAttribute(hash_key=True)
    body = UnicodeAttribute()
    failedAt = UnicodeAttribute()
    redriven = NumberAttribute(default=0)


def _from_item(item: FailureModel) -> FailureRecord:
    data = json.loads(item.body)
    data["redriven"] = int(item.redriven or 0)
    return FailureRecord(**data)


class DynamoFailureStore:
    def put(self, record: FailureRecord) -> None:
        FailureModel(
            record.order_id,
            body=json.dumps(asdict(record), default=str),
            failedAt=record.failed_at,
            redriven=record.redriven,
        ).save()

    def get(self, order_id: str) -> FailureRecord | None:
        try:
            return _from_item(FailureModel.get(order_id, consistent_read=True))
        except DoesNotExist:
            return None

    def page(self, limit: int, next_token: str | None) -> tuple[list[FailureRecord], str | None]:
        start = json.loads(base64.urlsafe_b64decode(next_token.encode())) if next_token else None
        results = FailureModel.scan(limit=limit, last_evaluated_key=start, page_size=limit)
        items = [_from_item(i) for i in results]
        last = results.last_evaluated_key
        return items, base64.urlsafe_b64encode(json.dumps(last).encode()).decode() if last else None

    def all(self) -> list[FailureRecord]:
        return [_from_item(i) for i in FailureModel.scan()]

    def mark_redriven(self, order_id: str) -> None:
        try:
            FailureModel(order_id).update(
                actions=[FailureModel.redriven.add(1)], condition=FailureModel.orderId.exists()
            )
        except UpdateError as exc:
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise

    def clear(self) -> int:
        count = 0
        with FailureModel.batch_write() as batch:
            for item in FailureModel.scan(attributes_to_get=["orderId"]):
                batch.delete(item)
                count += 1
        return count


class MemoryFailureStore:
    def __init__(self) -> None:
        self._items: dict[str, FailureRecord] = {}
        self._lock = threading.Lock()

    def put(self, record: FailureRecord) -> None:
        with self._lock:
            self._items[record.order_id] = record

    def get(self, order_id: str) -> FailureRecord | None:
        return self._items.get(order_id)

    def page(self, limit: int, next_token: str | None) -> tuple[list[FailureRecord], str | None]:
        ordered = sorted(self._items.values(), key=lambda r: r.order_id)
        start = int(next_token) if next_token else 0
        page = ordered[start : start + limit]
        return page, str(start + limit) if start + limit < len(ordered) else None

    def all(self) -> list[FailureRecord]:
        return list(self._items.values())

    def mark_redriven(self, order_id: str) -> None:
        with self._lock:
            current = self._items.get(order_id)
            if current is not None:
                self._items[order_id] = FailureRecord(**{**asdict(current), "redriven": current.redriven + 1})

    def clear(self) -> int:
        with self._lock:
            count = len(self._items)
            self._items.clear()
            return count
