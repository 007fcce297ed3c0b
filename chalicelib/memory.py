"""In-memory twins of the ports, for unit tests and for reasoning about the AWS ones.

They keep the same semantics as DynamoDB (conditional writes that return the new item)
so the shared contract tests hold for both.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import replace
from typing import Any

from chalicelib.errors import StaleWrite
from chalicelib.orders import OrderRecord, Status, SubscriberMode
from chalicelib.ports import Page
from chalicelib.records import merged_details

__all__ = ["MemoryNotifier", "MemoryOrderStore", "MemoryQueue"]


class MemoryOrderStore:
    def __init__(self) -> None:
        self._items: dict[str, OrderRecord] = {}
        self._lock = threading.Lock()

    def create(self, record: OrderRecord) -> bool:
        with self._lock:
            if record.order_id in self._items:
                return False
            self._items[record.order_id] = replace(record, subscribers={})
            return True

    def get(self, order_id: str) -> OrderRecord | None:
        with self._lock:
            return self._copy(self._items.get(order_id))

    def append_status(
        self,
        record: OrderRecord,
        event: dict[str, Any],
        details: dict[str, Any],
        *,
        attempts: int | None = None,
        round_: int | None = None,
    ) -> OrderRecord:
        with self._lock:
            current = self._checked(record)
            updated = replace(
                current,
                status=Status(event["status"]),
                seq=int(event["seq"]),
                history=(*current.history, dict(event)),
                details=merged_details(record.details, details),
                attempts=current.attempts if attempts is None else attempts,
                round=current.round if round_ is None else round_,
                version=current.version + 1,
            )
            self._items[record.order_id] = updated
            return self._copy(updated)  # type: ignore[return-value]

    def update_details(self, record: OrderRecord, details: dict[str, Any]) -> OrderRecord:
        with self._lock:
            current = self._checked(record)
            updated = replace(current, details=merged_details(record.details, details), version=current.version + 1)
            self._items[record.order_id] = updated
            return self._copy(updated)  # type: ignore[return-value]

    def _checked(self, record: OrderRecord) -> OrderRecord:
        current = self._items.get(record.order_id)
        if current is None or current.version != record.version:
            raise StaleWrite(f"order {record.order_id} changed since version {record.version}")
        return current

    def add_subscriber(
        self, order_id: str, connection_id: str, mode: SubscriberMode, client: str | None = None
    ) -> OrderRecord | None:
        with self._lock:
            current = self._items.get(order_id)
            if current is None or (client is not None and current.client != client):
                return None
        return self._subscribers(order_id, connection_id, mode, must_exist=False)

    def set_subscriber_mode(
        self,
        order_id: str,
        connection_id: str,
        mode: SubscriberMode,
        *,
        expect: tuple[SubscriberMode, ...] = (),
        at_seq: int | None = None,
    ) -> OrderRecord | None:
        with self._lock:
            current = self._items.get(order_id)
            if current is None or connection_id not in current.subscribers:
                return None
            if expect and current.subscribers[connection_id] not in expect:
                return None
            if at_seq is not None and current.seq != at_seq:
                return None
            self._items[order_id] = replace(current, subscribers={**current.subscribers, connection_id: mode})
            return self._copy(self._items[order_id])

    def remove_subscriber(self, order_id: str, connection_id: str) -> None:
        self._subscribers(order_id, connection_id, None, must_exist=False)

    def _subscribers(
        self, order_id: str, connection_id: str, mode: SubscriberMode | None, *, must_exist: bool
    ) -> OrderRecord | None:
        with self._lock:
            current = self._items.get(order_id)
            if current is None or (must_exist and connection_id not in current.subscribers):
                return None
            subscribers = dict(current.subscribers)
            if mode is None:
                subscribers.pop(connection_id, None)
            else:
                subscribers[connection_id] = mode
            self._items[order_id] = replace(current, subscribers=subscribers)
            return self._copy(self._items[order_id])

    def list_recent(self, limit: int, status: Status | None, next_token: str | None, client: str | None = None) -> Page:
        with self._lock:
            ordered = sorted(self._items.values(), key=lambda r: (r.created_at, r.order_id), reverse=True)
        start = int(base64.urlsafe_b64decode(next_token.encode()).decode()) if next_token else 0
        matching = [
            r for r in ordered if (status is None or r.status is status) and (client is None or r.client == client)
        ]
        page = matching[start : start + limit]
        more = start + limit < len(matching)
        token = base64.urlsafe_b64encode(str(start + limit).encode()).decode() if more else None
        return [self._copy(r) for r in page], token  # type: ignore[misc]

    def pending_between(self, since_iso: str, until_iso: str) -> list[OrderRecord]:
        with self._lock:
            return [
                self._copy(r)  # type: ignore[misc]
                for r in self._items.values()
                if r.status is Status.PENDING and since_iso <= r.created_at <= until_iso
            ]

    def waiting_since(self, created_after: str | None) -> list[OrderRecord]:
        with self._lock:
            found = [
                r
                for r in self._items.values()
                if r.status is Status.WAITING and (created_after is None or r.created_at > created_after)
            ]
        return [self._copy(r) for r in sorted(found, key=lambda r: r.created_at)]  # type: ignore[misc]

    @staticmethod
    def _copy(record: OrderRecord | None) -> OrderRecord | None:
        if record is None:
            return None
        return replace(record, subscribers=dict(record.subscribers), details=dict(record.details))


class MemoryQueue:
    """Keeps what was sent; receive hands out what is not deleted (no visibility clock)."""

    def __init__(self, move_tasks: bool = False) -> None:
        """``move_tasks``: serve :meth:`move_to` as SQS's StartMessageMoveTask does (moto does not)."""
        self.move_tasks = move_tasks
        self.sent: list[dict[str, Any]] = []
        self.visibility: dict[str, int] = {}
        self.delays: dict[str, int] = {}
        self._live: dict[str, dict[str, Any]] = {}
        self._next = 0

    def send(self, body: dict[str, Any]) -> None:
        self.sent.append(body)
        self._next += 1
        self._live[str(self._next)] = body

    def send_batch(self, bodies: list[dict[str, Any]], delay_s: int = 0) -> None:
        for body in bodies:
            self.send(body)
            if delay_s:
                self.delays[str(self._next)] = delay_s  # what SQS would hold back (no clock here)

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        self.visibility[receipt_handle] = seconds

    def receive(self, max_messages: int = 10, wait_s: int = 0, visibility_s: int = 30) -> list[dict[str, Any]]:
        ids = list(self._live)[:max_messages]
        return [{"id": i, "receipt": i, "body": self._live[i], "receiveCount": 1} for i in ids]

    def delete(self, receipts: list[str]) -> None:
        for receipt in receipts:
            self._live.pop(receipt, None)

    def release(self, receipts: list[str]) -> None:
        for receipt in receipts:
            self.visibility[receipt] = 0

    def move_to(self, destination: MemoryQueue) -> bool:
        """Every message to ``destination``, bodies unchanged (as a message move task)."""
        if not self.move_tasks:
            return False
        for receipt in list(self._live):
            destination.send(self._live.pop(receipt))
        return True

    def depth(self) -> int:
        return len(self._live)

    def counts(self) -> tuple[int, int]:
        return len(self._live), 0


class MemoryNotifier:
    """Records every message per connection; `gone` connections answer like a 410."""

    def __init__(self) -> None:
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.closed: list[str] = []
        self.gone: set[str] = set()
        self._lock = threading.Lock()

    def post(self, connection_id: str, message: dict[str, Any]) -> bool:
        with self._lock:
            if connection_id in self.gone:
                return False
            self.messages.setdefault(connection_id, []).append(message)
            return True

    def close(self, connection_id: str) -> None:
        with self._lock:
            self.closed.append(connection_id)
