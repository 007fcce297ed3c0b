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

        PENDING subscribers are skipped: their replay (which reads after it marks them
        OPEN) delivers this event, and posting during their $connect would 410 and
        wrongly drop them. A push never fails the order: delivery is best effort, the
        history in the order is the record.
        """
        terminal = Status(event["status"]) in TERMINAL
        for connection_id, mode in record.subscribers.items():
            if mode is SubscriberMode.PENDING:
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

    def replay(self, record: OrderRecord, connection_id: str, after_seq: int = 0) -> bool:
        """Send the stored history after `after_seq`; False if the connection is gone."""
        for event in record.history:
            if int(event["seq"]) > after_seq and not self.notifier.post(connection_id, event):
                return False
        return True
