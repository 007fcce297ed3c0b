"""The service layer: what the REST and WebSocket entrypoints ask of the engine."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.errors import EngineError, IdempotencyConflict, InvalidOrder, OrderNotFound
from chalicelib.faults import crash_point
from chalicelib.logs import logger
from chalicelib.orders import OrderRecord, OrderRequest, Status, SubscriberMode, status_event, utc_now_iso
from chalicelib.ports import MessageQueue, OrderStore, StatusNotifier
from chalicelib.publisher import StatusPublisher
from chalicelib.records import snapshot

__all__ = ["ConnectionNotReady", "OrderService", "Submission", "SubscriptionService"]

_IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c1d1e-8f0a-4a3b-9a57-5c0e2b9d7a10")


@dataclass(frozen=True)
class Submission:
    record: OrderRecord
    created: bool


class OrderService:
    def __init__(self, store: OrderStore, queue: MessageQueue) -> None:
        self.store = store
        self.queue = queue

    def submit(
        self,
        request: OrderRequest,
        idempotency_key: str | None = None,
        *,
        test_failure: bool = False,
        client: str = "",
    ) -> Submission:
        """Store the order, then queue it; the 201 goes out only after both.

        With an Idempotency-Key the order id is derived from the key, so a retried POST
        finds the first order (one conditional put, no lock) and re-queues it if it is
        still pending: a crash between the put and the send strands nothing. The key is
        the client's own: the id is derived from the client and the key together.
        """
        fingerprint = request.fingerprint()
        if idempotency_key is not None:
            if not 1 <= len(idempotency_key) <= 255:
                raise InvalidOrder("Idempotency-Key must be 1 to 255 characters", field="Idempotency-Key")
            scoped = f"{client}\n{idempotency_key}" if client else idempotency_key
            order_id = str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, scoped))
        else:
            order_id = str(uuid.uuid4())
        now = utc_now_iso()
        details: dict[str, Any] = {"testFailure": True} if test_failure else {}
        if idempotency_key is not None:
            details["idempotencyKeyHash"] = hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        record = OrderRecord(
            order_id=order_id,
            request=request,
            status=Status.PENDING,
            seq=1,
            created_at=now,
            history=(status_event(order_id, Status.PENDING, 1, **_order_fields(request)),),
            details=details,
            fingerprint=fingerprint,
            client=client,
        )
        if self.store.create(record):
            crash_point("after_order_write")
            # The message carries the order as created: the worker's first write checks it
            # (conditional on its version) instead of reading the item first.
            self.queue.send({"orderId": order_id, "round": 1, "order": snapshot(record)})
            logger.info("order accepted", extra={"orderId": order_id, "client": client, **request.to_public()})
            return Submission(record, created=True)
        existing = self.store.get(order_id)
        if existing is None:  # deleted in between: treat as a conflict rather than guess
            raise IdempotencyConflict("that Idempotency-Key was used for an order that no longer exists")
        if existing.client != client:  # a uuid5 collision across clients: never hand over the order
            raise IdempotencyConflict("that Idempotency-Key was already used with a different body")
        if existing.fingerprint != fingerprint:
            raise IdempotencyConflict("that Idempotency-Key was already used with a different body")
        if existing.status is Status.PENDING:
            self.queue.send({"orderId": order_id, "round": existing.round})
        # Without a key the id is new (uuid4): the item can only be this very put, retried by
        # the SDK after a timeout whose first try had landed. It was created by this request.
        return Submission(existing, created=idempotency_key is None)

    def requeue_stranded(self, older_than_s: float, window_s: float = 3600, backlog_factor: int = 10) -> list[str]:
        """Queue again every order still `pending` well after it was accepted.

        The POST stores the order, then queues it; a process that dies in between leaves
        an order no worker will see. A worker ignores a duplicate, so re-sending is safe,
        but not free: while messages wait in the queue, a `pending` order is most likely
        one of them, and re-queueing every order of a backlog older than `older_than_s`
        would double the backlog (each duplicate is received, read and deleted). So while
        the queue is not empty, only orders pending `backlog_factor` times longer are sent.
        """
        now = time.time()
        waiting, _ = self.queue.counts()
        cutoff = _iso(now - older_than_s * (backlog_factor if waiting else 1))
        since = _iso(now - window_s)
        stranded = self.store.pending_between(since, cutoff)
        for record in stranded:
            self.queue.send({"orderId": record.order_id, "round": record.round})
            logger.warning("stranded order re-queued", extra={"orderId": record.order_id})
        return [r.order_id for r in stranded]

    def get(self, order_id: str, client: str | None = None) -> OrderRecord:
        """The order; another client's order is as unknown as one that does not exist."""
        record = self.store.get(order_id) if _plausible_id(order_id) else None
        if record is None or (client is not None and record.client != client):
            raise OrderNotFound(f"no order {order_id[:64]!r}")
        return record

    def list_recent(
        self, limit: int, status: str | None, next_token: str | None, client: str | None = None
    ) -> tuple[list[OrderRecord], str | None]:
        try:
            wanted = Status(status) if status else None
        except ValueError:
            raise InvalidOrder(
                f"status must be one of {', '.join(s.value for s in Status)}", field="status", code="invalid_request"
            ) from None
        try:
            return self.store.list_recent(limit, wanted, next_token, client)
        except (ValueError, TypeError, KeyError):
            raise InvalidOrder(
                "nextToken is not one this API returned", field="nextToken", code="invalid_request"
            ) from None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _order_fields(request: OrderRequest) -> dict[str, Any]:
    """The request as the `pending` event carries it (its `type` is the message type)."""
    fields = request.to_public()
    fields["orderType"] = fields.pop("type")
    return fields


def _plausible_id(order_id: str) -> bool:
    return 0 < len(order_id) <= 64


class ConnectionNotReady(Exception):
    """The connection cannot be posted to yet (its $connect has not completed) or is gone."""


class SubscriptionService:
    """WebSocket subscriptions with no status lost to a race.

    The subscriber list lives on the order item: a status write returns it, a subscribe
    returns the history. Both serialise on the item, so whichever is second sees the other.
    Nothing is kept per connection: one that went away is dropped by the first push that
    gets a 410 (docs/decisions/005).
    """

    replay_retry_delays_s = (0.05, 0.1, 0.2, 0.4, 0.8)

    def __init__(
        self,
        store: OrderStore,
        notifier: StatusNotifier,
        replay_queue: MessageQueue,
        sleep: Any = time.sleep,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.publisher = StatusPublisher(store, notifier)
        self.replay_queue = replay_queue
        self.sleep = sleep

    def connect(self, connection_id: str, order_id: str | None, client: str | None = None) -> None:
        """$connect: register, and queue the replay (nothing may be posted during $connect)."""
        if order_id is None:
            return
        record = (
            self.store.add_subscriber(order_id, connection_id, SubscriberMode.PENDING, client)
            if _plausible_id(order_id)
            else None
        )
        if record is None:
            raise OrderNotFound(f"no order {order_id[:64]!r}")
        self.replay_queue.send({"orderId": order_id, "connectionId": connection_id})

    def replay(self, order_id: str, connection_id: str, *, redelivered: bool = False) -> None:
        """Deliver the history to a ?orderId= connection, then hand it over to live pushes.

        Claiming the connection (PENDING -> REPLAYING) is one conditional write that returns
        the item: a duplicate replay message finds it claimed and does nothing. A
        redelivered message (its first receiver may have died mid-replay) may take over a
        REPLAYING connection. While the replay runs the worker does not push to the
        connection; the hand-over (`_hand_over`) makes it OPEN only once everything up to
        the order's current seq has been sent, and the close after a terminal status is
        sent here, after the last replayed status.
        """
        expect = (SubscriberMode.PENDING, SubscriberMode.REPLAYING) if redelivered else (SubscriberMode.PENDING,)
        record = (
            self.store.set_subscriber_mode(order_id, connection_id, SubscriberMode.REPLAYING, expect=expect)
            if _plausible_id(order_id)
            else None
        )
        if record is None:
            return  # unknown order, disconnected, or a duplicate message: already done
        sent = self._send_with_patience(record, connection_id)
        self._hand_over(record, connection_id, SubscriberMode.REPLAYING, SubscriberMode.OPEN, sent)

    def _send_with_patience(self, record: OrderRecord, connection_id: str) -> int:
        # On AWS the connection becomes postable a moment after $connect returns.
        for delay in (0.0, *self.replay_retry_delays_s):
            if delay:
                self.sleep(delay)
            sent = self.publisher.send_history(record, connection_id)
            if sent:
                return sent
        # Nothing was delivered: give the connection back to the next delivery of the message.
        self.store.set_subscriber_mode(
            record.order_id, connection_id, SubscriberMode.PENDING, expect=(SubscriberMode.REPLAYING,)
        )
        raise ConnectionNotReady(connection_id)

    def _hand_over(
        self, record: OrderRecord, connection_id: str, sending: SubscriberMode, live: SubscriberMode, sent: int
    ) -> None:
        """Switch a connection that has been sent the history up to `sent` to live pushes.

        The switch is conditioned on the order's seq still being `sent`: a status written
        meanwhile (not pushed: the connection was not live) fails it, and the statuses past
        `sent` are posted here before trying again. Once it lands, the worker pushes every
        later status, after everything this replay posted. A ?orderId= connection whose
        order is terminal is closed here instead, after its last status.
        """
        while True:
            if sent < record.seq:  # a post failed: the connection went away
                self._drop(record.order_id, connection_id)
                return
            if live is SubscriberMode.OPEN and record.terminal:
                self.notifier.close(connection_id)
                self._drop(record.order_id, connection_id)
                return
            if self.store.set_subscriber_mode(
                record.order_id, connection_id, live, expect=(sending,), at_seq=record.seq
            ):
                return
            current = self.store.get(record.order_id)
            if current is None or current.subscribers.get(connection_id) is not sending:
                return  # unsubscribed, dropped, or taken over by another replay
            record = current
            sent = self.publisher.send_history(record, connection_id, after_seq=sent)

    def give_up_replay(self, order_id: str, connection_id: str) -> None:
        logger.warning("replay abandoned", extra={"orderId": order_id, "connectionId": connection_id})
        self._drop(order_id, connection_id)

    def subscribe(self, connection_id: str, order_id: str, client: str | None = None) -> None:
        """The `subscribe` action: the history, then live statuses, never interleaved."""
        record = (
            self.store.add_subscriber(order_id, connection_id, SubscriberMode.JOINING, client)
            if _plausible_id(order_id)
            else None
        )
        if record is None:
            raise OrderNotFound(f"no order {order_id[:64]!r}")
        sent = self.publisher.send_history(record, connection_id)
        self._hand_over(record, connection_id, SubscriberMode.JOINING, SubscriberMode.SUBSCRIBED, sent)

    def unsubscribe(self, connection_id: str, order_id: str) -> None:
        if not _plausible_id(order_id):
            raise OrderNotFound(f"no order {order_id[:64]!r}")
        self.store.remove_subscriber(order_id, connection_id)

    def _drop(self, order_id: str, connection_id: str) -> None:
        self.store.remove_subscriber(order_id, connection_id)


def error_body(error: EngineError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error.code, "message": error.message}
    if error.field:
        body["field"] = error.field
    return body
