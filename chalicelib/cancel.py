"""Cancelling a limit or sniper order while it waits (DELETE /order/{id})."""

from __future__ import annotations

from chalicelib.errors import EngineError, OrderNotFound, StaleWrite
from chalicelib.logs import logger
from chalicelib.orders import OrderRecord, Status, status_event
from chalicelib.ports import OrderStore
from chalicelib.publisher import StatusPublisher

__all__ = ["NotCancellable", "OrderCanceller"]

_CANCELLABLE = frozenset({Status.PENDING, Status.WAITING})


class NotCancellable(EngineError):
    code = "not_cancellable"
    status = 409


class OrderCanceller:
    def __init__(self, store: OrderStore, publisher: StatusPublisher) -> None:
        self.store = store
        self.publisher = publisher

    def cancel(self, order_id: str, client: str | None = None) -> OrderRecord:
        """One conditional write `pending|waiting -> cancelled`; a trigger that wins first makes it a 409.

        With `client`, another client's order is as unknown as one that does not exist (404).
        """
        for _ in range(5):
            record = self.store.get(order_id) if 0 < len(order_id) <= 64 else None
            if record is None or (client is not None and record.client != client):
                raise OrderNotFound(f"no order {order_id[:64]!r}")
            if not record.request.conditional:
                raise NotCancellable("only limit and sniper orders can be cancelled")
            if record.status not in _CANCELLABLE:
                raise NotCancellable(f"the order is {record.status.value}: it can no longer be cancelled")
            event = status_event(order_id, Status.CANCELLED, record.seq + 1, reason="cancelled")
            try:
                written = self.store.append_status(record, event, {"leaseUntilMs": None})
            except StaleWrite:
                continue  # it moved (waiting, triggered): look again
            self.publisher.publish(written, event)
            logger.info("cancelled", extra={"orderId": order_id})
            return written
        raise NotCancellable("the order kept changing; try again")
