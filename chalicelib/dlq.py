"""The dead-letter queue as users see it: failures with their story, counts, clear, redrive."""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

from chalicelib.failures import FailureStore
from chalicelib.logs import logger
from chalicelib.ports import MessageQueue

__all__ = ["DeadLetterFinisher", "DeadLetterQueue", "DeadLetterService"]

_MAX_MESSAGES_PER_CALL = 1000  # bounds one redrive/clear call; call again for more


class DeadLetterQueue(MessageQueue, Protocol):
    def receive(self, max_messages: int = 10, wait_s: int = 0, visibility_s: int = 30) -> list[dict[str, Any]]: ...

    def delete(self, receipts: list[str]) -> None: ...

    def depth(self) -> int: ...


class DeadLetterFinisher(Protocol):
    def finish_dead_letter(self, order_id: str) -> bool:
        """Make sure a dead-lettered order is terminal with a failure record; True if it confirmed instead."""


class DeadLetterService:
    def __init__(
        self, failures: FailureStore, dlq: DeadLetterQueue, orders_queue: MessageQueue, finisher: DeadLetterFinisher
    ) -> None:
        self.failures = failures
        self.dlq = dlq
        self.orders_queue = orders_queue
        self.finisher = finisher

    def reconcile(self) -> int:
        """Give every DLQ message its failure record, even if the worker died on its last attempt.

        Peeks with a zero visibility timeout, so the messages stay where they are.
        """
        fixed = 0
        seen: set[str] = set()
        for _ in range(10):
            batch = [m for m in self.dlq.receive(10, 0, 0) if m["id"] not in seen]
            if not batch:
                break
            for message in batch:
                seen.add(message["id"])
                order_id = str(message["body"].get("orderId", ""))
                if order_id and self.failures.get(order_id) is None:
                    confirmed = self.finisher.finish_dead_letter(order_id)
                    fixed += 1
                    if confirmed:
                        self.dlq.delete([message["receipt"]])
        return fixed

    def list(self, limit: int, next_token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        self.reconcile()
        records, token = self.failures.page(limit, next_token)
        return [r.to_public() for r in records], token

    def stats(self) -> dict[str, Any]:
        self.reconcile()
        records = self.failures.all()
        by_reason = Counter(r.failure_reason for r in records)
        oldest = min((r.failed_at for r in records), default=None)
        return {
            "failureRecords": len(records),
            "messagesInDlq": self.dlq.depth(),
            "byReason": dict(by_reason),
            "oldestFailure": oldest,
        }

    def clear(self, *, keep_records: bool) -> dict[str, int]:
        purged = self._drain(lambda _message: None)
        cleared = 0 if keep_records else self.failures.clear()
        logger.info("dlq cleared", extra={"messagesPurged": purged, "recordsCleared": cleared})
        return {"messagesPurged": purged, "recordsCleared": cleared}

    def redrive(self) -> dict[str, Any]:
        """Move every DLQ message back to the order queue, for a new round of attempts.

        Done by receive/send/delete rather than StartMessageMoveTask: each message is
        re-sent stamped with the order's next round, which is how the worker tells a
        redrive from a duplicate delivery (see docs/decisions/002).
        """
        moved: list[str] = []

        def send_back(message: dict[str, Any]) -> None:
            body = message["body"]
            order_id = str(body.get("orderId", ""))
            self.orders_queue.send({"orderId": order_id, "round": int(body.get("round", 1)) + 1, "redrive": True})
            self.failures.mark_redriven(order_id)
            moved.append(order_id)

        self._drain(send_back)
        logger.info("dlq redriven", extra={"orders": moved})
        return {"redriven": len(moved), "orderIds": moved}

    def _drain(self, each: Any) -> int:
        count = 0
        while count < _MAX_MESSAGES_PER_CALL:
            batch = self.dlq.receive(10, 0, 30)
            if not batch:
                break
            for message in batch:
                each(message)
            self.dlq.delete([m["receipt"] for m in batch])
            count += len(batch)
        return count
