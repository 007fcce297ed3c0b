"""The engine's ports: what the service layer needs from storage, queues and the WebSocket API.

Each has an AWS implementation (`chalicelib.aws`) and an in-memory twin
(`chalicelib.memory`); one contract test suite runs against both.
"""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib.orders import OrderRecord, Status, SubscriberMode

__all__ = ["MessageQueue", "OrderStore", "Page", "StatusNotifier"]

Page = tuple[list[OrderRecord], "str | None"]


class OrderStore(Protocol):
    def create(self, record: OrderRecord) -> bool:
        """Store a new order; False if an order with that id exists already."""

    def get(self, order_id: str) -> OrderRecord | None: ...

    def append_status(
        self,
        record: OrderRecord,
        event: dict[str, Any],
        details: dict[str, Any],
        *,
        attempts: int | None = None,
        round_: int | None = None,
    ) -> OrderRecord:
        """Write `event` as the next status, only if nobody wrote since `record` was read.

        One conditional update (seq must still be `record.seq`) that returns the new item,
        subscribers included: a subscribe and a status write serialise on the item, so
        whichever comes second sees the other. Raises StaleWrite when the condition fails.
        """

    def update_details(self, record: OrderRecord, details: dict[str, Any]) -> OrderRecord:
        """Merge `details` without a status change (same seq condition)."""

    def add_subscriber(
        self, order_id: str, connection_id: str, mode: SubscriberMode, client: str | None = None
    ) -> OrderRecord | None:
        """Register a connection on the order; returns the order (history to replay) or None.

        With `client`, only if the order is that client's (one conditional write: no read first).
        """

    def set_subscriber_mode(
        self,
        order_id: str,
        connection_id: str,
        mode: SubscriberMode,
        *,
        expect: tuple[SubscriberMode, ...] = (),
        at_seq: int | None = None,
    ) -> OrderRecord | None:
        """Change a registered connection's mode; returns the order, or None when the condition fails.

        The condition: the connection is registered, in one of the `expect` modes (any, if
        empty), and the order's `seq` is still `at_seq` (when given). One conditional write:
        it is how a replay hands a connection over to live pushes with no status in between.
        """

    def remove_subscriber(self, order_id: str, connection_id: str) -> None: ...

    def list_recent(self, limit: int, status: Status | None, next_token: str | None, client: str | None = None) -> Page:
        """Newest first; with `client`, only that client's orders (its own index, no scan)."""

    def pending_between(self, since_iso: str, until_iso: str) -> list[OrderRecord]:
        """Orders created in [since, until] that are still `pending`."""

    def waiting_since(self, created_after: str | None) -> list[OrderRecord]:
        """Orders `waiting` for their trigger, created after `created_after` (all if None), oldest first.

        A sparse index holds only waiting orders: the watcher reads what waits, not every order.
        """


class MessageQueue(Protocol):
    def send(self, body: dict[str, Any]) -> None: ...

    def change_visibility(self, receipt_handle: str, seconds: int) -> None: ...

    def counts(self) -> tuple[int, int]:
        """(waiting, in flight) messages."""


class StatusNotifier(Protocol):
    def post(self, connection_id: str, message: dict[str, Any]) -> bool:
        """Send one message; False if the connection is gone (410)."""

    def close(self, connection_id: str) -> None: ...
