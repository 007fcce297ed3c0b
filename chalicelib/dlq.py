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

    def release(self, receipts: list[str]) -> None:
        """Make received messages visible again at once."""

    def move_to(self, destination: Any) -> bool:
        """Move the visible messages to ``destination`` unchanged (StartMessageMoveTask); False if unsupported."""


class DeadLetterFinisher(Protocol):
    def finish_dead_letter(self, order_id: str) -> bool:
        """Make sure a dead-lettered order is terminal with a failure record; True if it confirmed instead."""

    def advance_round(self, order_id: str) -> int | None:
        """Keep the failed order's next round on the order; that round, or None if it is not failed."""


class DeadLetterService:
    def __init__(
        self,
        failures: FailureStore,
        dlq: DeadLetterQueue,
        orders_queue: MessageQueue,
        finisher: DeadLetterFinisher,
        move_task: bool = True,
    ) -> None:
        """``move_task``: redrive by StartMessageMoveTask where the queue serves it (Settings.dlq_move_task)."""
        self.move_task = move_task
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

        The round lives on the order: each message's order gets its next round first
        (``advance_round``), then SQS moves the messages itself with StartMessageMoveTask,
        unchanged; the worker starts that round for a message of an older one (decision
        013). Where the endpoint has no move tasks (moto), or the DLQ holds more than one
        call's worth, each message is received, re-sent stamped with the new round and
        deleted instead (decision 002).
        """
        held: dict[str, dict[str, Any]] = {}
        while len(held) < _MAX_MESSAGES_PER_CALL:
            batch = [m for m in self.dlq.receive(10, 0, 30) if m["id"] not in held]
            if not batch:
                break
            held.update((m["id"], m) for m in batch)
        moved = [str(m["body"].get("orderId", "")) for m in held.values()]
        for order_id in moved:
            self.finisher.advance_round(order_id)
            self.failures.mark_redriven(order_id)
        self.dlq.release([m["receipt"] for m in held.values()])
        by_task = self.move_task and moved and len(held) < _MAX_MESSAGES_PER_CALL
        if by_task and self.dlq.move_to(self.orders_queue):
            logger.info("dlq redriven", extra={"orders": moved, "by": "StartMessageMoveTask"})
            return {"redriven": len(moved), "orderIds": moved}
        marked = set(moved)
        resent: list[str] = []

        def send_back(message: dict[str, Any]) -> None:
            body = message["body"]
            order_id = str(body.get("orderId", ""))
            next_round = self.finisher.advance_round(order_id)
            if order_id not in marked:
                self.failures.mark_redriven(order_id)
            self.orders_queue.send(
                {"orderId": order_id, "round": next_round or int(body.get("round", 1)) + 1, "redrive": True}
            )
            resent.append(order_id)

        self._drain(send_back)
        logger.info("dlq redriven", extra={"orders": resent, "by": "receive/send/delete"})
        return {"redriven": len(resent), "orderIds": resent}

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
