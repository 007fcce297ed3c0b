"""Fan a status event out to exactly the subscribers the status write returned."""

from __future__ import annotations

from typing import Any

from chalicelib.logs import logger
from chalicelib.orders import TERMINAL, OrderRecord, Status, SubscriberMode
from chalicelib.ports import OrderStore, StatusNotifier

__all__ = ["StatusPublisher"]


class StatusPublisher:
    def __init__(self, store: OrderStore, notifier: StatusNotifier) -> None:
        self.store = store
        self.notifier = notifier

    def publish(self, record: OrderRecord, event: dict[str, Any]) -> None:
        """Push `event` to every live subscriber of `record` (the item as written).

        Only OPEN and SUBSCRIBED connections are pushed to. The others are still being sent
        their history by a replay, which hands them over to live pushes once it has sent
        up to the order's current seq (this event included): pushing here as well would
        interleave with it, and posting during a $connect would 410 and wrongly drop the
        connection. A push never fails the order: delivery is best effort, the history in
        the order is the record.
        """
        terminal = Status(event["status"]) in TERMINAL
        for connection_id, mode in record.subscribers.items():
            if not mode.live:
                continue
            try:
                delivered = self.notifier.post(connection_id, event)
                if not delivered:
                    logger.info("subscriber gone", extra={"orderId": record.order_id, "connectionId": connection_id})
                    self.store.remove_subscriber(record.order_id, connection_id)
                elif terminal and mode is SubscriberMode.OPEN:
                    self.notifier.close(connection_id)
            except Exception:  # noqa: BLE001 - a push must never fail the order
                logger.exception("push failed", extra={"orderId": record.order_id, "connectionId": connection_id})

    def send_history(self, record: OrderRecord, connection_id: str, after_seq: int = 0) -> int:
        """Post the stored statuses after `after_seq`, in order; the last seq delivered.

        It stops at the first post that fails (the connection is gone, or not open yet),
        so what was delivered is always a gapless run after `after_seq`.
        """
        sent = after_seq
        for event in record.history:
            seq = int(event["seq"])
            if seq <= sent:
                continue
            if not self.notifier.post(connection_id, event):
                break
            sent = seq
        return sent
