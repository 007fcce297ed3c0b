"""The service layer and executor against the in-memory twins: no I/O, real market maths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.bootstrap import build_engine
from chalicelib.config import Settings
from chalicelib.failures import MemoryFailureStore
from chalicelib.market import Market, MarketConfig
from chalicelib.memory import MemoryNotifier, MemoryOrderStore, MemoryQueue
from chalicelib.orders import OrderRequest, Status, SubscriberMode
from chalicelib.records import as_created

LIFECYCLE = ["pending", "routing", "building", "submitted", "confirmed"]


def _memory_engine(settings: Settings, store: MemoryOrderStore | None = None):
    return build_engine(
        settings,
        store=store or MemoryOrderStore(),
        orders_queue=MemoryQueue(),
        replay_queue=MemoryQueue(),
        notifier=MemoryNotifier(),
        market=Market(MarketConfig(seed=1, quote_delay_ms=(0, 0))),
        failures=MemoryFailureStore(),
        dlq=MemoryQueue(),
    )


@pytest.fixture
def eng():
    return _memory_engine(Settings(submit_delay_ms=(0, 0), quote_delay_ms=(0, 0), retry_delays_s=(2, 4, 8)))


def _request(amount: str = "1.5") -> OrderRequest:
    return OrderRequest("SOL", "USDC", Decimal(amount), int(Decimal(amount) * 10**9), Decimal("0.01"))


def test_submit_stores_then_queues(eng):
    submission = eng.orders.submit(_request())
    assert submission.created
    assert eng.store.get(submission.record.order_id).status is Status.PENDING
    # AND the message carries the order as created, so the worker need not read it first
    [message] = eng.orders_queue.sent
    assert message["orderId"] == submission.record.order_id and message["round"] == 1
    stored = eng.store.get(message["orderId"])
    carried = as_created(message["orderId"], message["order"])
    assert carried.with_(history=stored.history, fingerprint=stored.fingerprint) == stored


class _CountingReads(MemoryOrderStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, order_id):
        self.reads += 1
        return super().get(order_id)


def _counting_engine():
    store = _CountingReads()
    settings = Settings(submit_delay_ms=(0, 0), quote_delay_ms=(0, 0), retry_delays_s=(2, 4, 8))
    return store, _memory_engine(settings, store)


def test_a_first_delivery_executes_from_the_message_without_reading_the_order():
    store, eng = _counting_engine()
    order_id = eng.orders.submit(_request()).record.order_id
    [message] = eng.orders_queue.sent
    store.reads = 0
    # WHEN the first delivery carries the order as created
    outcome = eng.executor.run(order_id, 1, 1, created=as_created(order_id, message["order"]))
    # THEN it confirms with no read of the item
    assert outcome.done and store.reads == 0
    assert [e["status"] for e in eng.store.get(order_id).history] == LIFECYCLE


def test_a_message_whose_order_moved_since_falls_back_to_reading_it():
    _, eng = _counting_engine()
    order_id = eng.orders.submit(_request()).record.order_id
    [message] = eng.orders_queue.sent
    # GIVEN another delivery (a stranded-order re-queue) executed the order already
    assert eng.executor.run(order_id, 1).done
    done = eng.store.get(order_id)
    # WHEN the original message is delivered afterwards, still carrying the order as created
    outcome = eng.executor.run(order_id, 1, 1, created=as_created(order_id, message["order"]))
    # THEN its conditional write fails, it reads the order, finds it terminal and leaves it alone
    assert outcome.done and outcome.reason == "already_terminal"
    after = eng.store.get(order_id)
    assert after.history == done.history and after.details["txHash"] == done.details["txHash"]


def test_same_idempotency_key_returns_the_first_order_and_different_body_conflicts(eng):
    first = eng.orders.submit(_request(), "key-1")
    again = eng.orders.submit(_request(), "key-1")
    assert not again.created and again.record.order_id == first.record.order_id
    from chalicelib.errors import IdempotencyConflict

    with pytest.raises(IdempotencyConflict):
        eng.orders.submit(_request("2"), "key-1")


def test_a_subscriber_sees_every_status_and_the_open_connection_is_closed(eng):
    order_id = eng.orders.submit(_request()).record.order_id
    # GIVEN a ?orderId= connection whose replay ran before the worker
    eng.subscriptions.connect("c-1", order_id)
    assert eng.replay_queue.sent == [{"orderId": order_id, "connectionId": "c-1"}]
    eng.subscriptions.replay(order_id, "c-1")
    # WHEN the worker executes the order
    outcome = eng.executor.run(order_id, receive_count=1)
    # THEN the connection received pending..confirmed once each and was closed after it
    assert outcome.done
    seen = eng.notifier.messages["c-1"]
    assert [m["status"] for m in seen] == LIFECYCLE
    assert [m["seq"] for m in seen] == [1, 2, 3, 4, 5]
    assert {m["type"] for m in seen} == {"status"}
    assert eng.notifier.closed == ["c-1"]
    assert seen[-1]["txHash"] and Decimal(seen[-1]["executedPrice"]) > 0


def test_no_push_while_the_connection_is_pending_and_replay_catches_up(eng):
    order_id = eng.orders.submit(_request()).record.order_id
    # GIVEN the connection is registered but its replay has not run (still in $connect on AWS)
    eng.subscriptions.connect("c-1", order_id)
    eng.executor.run(order_id, receive_count=1)
    assert "c-1" not in eng.notifier.messages  # nothing was posted during $connect
    # WHEN the replay runs afterwards
    eng.subscriptions.replay(order_id, "c-1")
    # THEN it delivers the full history and closes, since the order is terminal
    assert [m["status"] for m in eng.notifier.messages["c-1"]] == LIFECYCLE
    assert eng.notifier.closed == ["c-1"]


class _WorkerDuringReplay(MemoryNotifier):
    """A notifier whose first post to `connection` runs `during` first: the worker writing statuses mid-replay."""

    def __init__(self, connection: str) -> None:
        super().__init__()
        self.connection = connection
        self.during: list = []
        self.log: list[tuple[str, object]] = []

    def post(self, connection_id, message):
        while connection_id == self.connection and self.during:
            self.during.pop(0)()
        delivered = super().post(connection_id, message)
        if delivered and connection_id == self.connection:
            self.log.append(("post", message.get("seq")))
        return delivered

    def close(self, connection_id):
        super().close(connection_id)
        self.log.append(("close", connection_id))


def _engine_with(notifier):
    return build_engine(
        Settings(submit_delay_ms=(0, 0), quote_delay_ms=(0, 0), retry_delays_s=(2, 4, 8)),
        store=MemoryOrderStore(),
        orders_queue=MemoryQueue(),
        replay_queue=MemoryQueue(),
        notifier=notifier,
        market=Market(MarketConfig(seed=1, quote_delay_ms=(0, 0))),
        failures=MemoryFailureStore(),
        dlq=MemoryQueue(),
    )


class _PutRetriedAfterATimeout(MemoryOrderStore):
    """The SDK retried the conditional put after a timeout; the first try had landed."""

    def create(self, record):
        super().create(record)
        return False


def test_a_put_retried_by_the_sdk_is_still_a_creation_and_is_queued_once():
    eng = _memory_engine(Settings(submit_delay_ms=(0, 0), quote_delay_ms=(0, 0)), store=_PutRetriedAfterATimeout())
    submission = eng.orders.submit(_request())
    assert submission.created  # 201, not 200: no Idempotency-Key was sent, this request made it
    assert [m["orderId"] for m in eng.orders_queue.sent] == [submission.record.order_id]


def test_statuses_written_while_the_replay_sends_come_after_it_in_order_then_the_close():
    notifier = _WorkerDuringReplay("c-1")
    eng = _engine_with(notifier)
    order_id = eng.orders.submit(_request()).record.order_id
    eng.subscriptions.connect("c-1", order_id)
    # GIVEN the worker executes the whole order while the replay is posting `pending`
    notifier.during.append(lambda: eng.executor.run(order_id, receive_count=1))
    # WHEN the replay runs
    eng.subscriptions.replay(order_id, "c-1")
    # THEN the connection got 1..5 once each, in order, and the close came last
    assert notifier.log == [("post", 1), ("post", 2), ("post", 3), ("post", 4), ("post", 5), ("close", "c-1")]
    assert "c-1" not in eng.store.get(order_id).subscribers  # closed, so forgotten


def test_a_status_written_during_the_hand_over_is_replayed_then_the_worker_pushes_the_rest():
    notifier = _WorkerDuringReplay("c-1")
    eng = _engine_with(notifier)
    order_id = eng.orders.submit(_request()).record.order_id
    eng.subscriptions.connect("c-1", order_id)
    # GIVEN `routing` is written (not pushed: the connection is replaying) while `pending` is posted
    record = eng.store.get(order_id)
    notifier.during.append(lambda: eng.executor._write(record, Status.ROUTING, {"attempt": 1}, {}, attempts=1))
    eng.subscriptions.replay(order_id, "c-1")
    # THEN the replay sent it and handed over at seq 2: the connection is live
    assert notifier.log == [("post", 1), ("post", 2)]
    assert eng.store.get(order_id).subscribers == {"c-1": SubscriberMode.OPEN}
    # AND the worker's next statuses are pushed after it (a redelivery now: routing again, attempt 2)
    eng.executor.run(order_id, receive_count=2)
    last = eng.store.get(order_id).seq
    assert last == 6 and notifier.log == [*(("post", seq) for seq in range(1, last + 1)), ("close", "c-1")]


def test_the_subscribe_action_sends_the_history_then_live_statuses_never_interleaved():
    notifier = _WorkerDuringReplay("c-1")
    eng = _engine_with(notifier)
    order_id = eng.orders.submit(_request()).record.order_id
    # GIVEN the worker writes every status while the history is being sent
    notifier.during.append(lambda: eng.executor.run(order_id, receive_count=1))
    eng.subscriptions.subscribe("c-1", order_id)
    # THEN each status once, in seq order, and the connection stays open (it may follow more orders)
    assert notifier.log == [("post", 1), ("post", 2), ("post", 3), ("post", 4), ("post", 5)]
    assert eng.store.get(order_id).subscribers == {"c-1": SubscriberMode.SUBSCRIBED}


def test_a_duplicate_replay_message_sends_nothing_and_a_redelivery_takes_over_a_dead_replay(eng):
    order_id = eng.orders.submit(_request()).record.order_id
    eng.subscriptions.connect("c-1", order_id)
    eng.subscriptions.replay(order_id, "c-1")
    eng.subscriptions.replay(order_id, "c-1")  # the same message delivered twice
    assert [m["seq"] for m in eng.notifier.messages["c-1"]] == [1]
    # GIVEN a replay that died after claiming the connection
    eng.subscriptions.connect("c-2", order_id)
    eng.store.set_subscriber_mode(order_id, "c-2", SubscriberMode.REPLAYING)
    eng.subscriptions.replay(order_id, "c-2")  # a concurrent duplicate: leaves it alone
    assert "c-2" not in eng.notifier.messages
    # WHEN the message comes back after its visibility timeout
    eng.subscriptions.replay(order_id, "c-2", redelivered=True)
    assert [m["seq"] for m in eng.notifier.messages["c-2"]] == [1]
    assert eng.store.get(order_id).subscribers["c-2"] is SubscriberMode.OPEN


def test_a_gone_subscriber_is_forgotten(eng):
    order_id = eng.orders.submit(_request()).record.order_id
    eng.subscriptions.subscribe("c-1", order_id)
    eng.notifier.gone.add("c-1")
    eng.executor.run(order_id, receive_count=1)
    assert eng.store.get(order_id).subscribers == {}


def test_a_redelivered_submitted_order_confirms_the_same_transaction(eng, monkeypatch):
    order_id = eng.orders.submit(_request()).record.order_id
    chain = eng.executor.chain
    original = chain.confirm

    def crash(*args, **kwargs):
        raise SystemExit("worker died mid-confirmation")

    # GIVEN a worker that dies after the transaction was submitted
    monkeypatch.setattr(chain, "confirm", crash)
    with pytest.raises(SystemExit):
        eng.executor.run(order_id, receive_count=1)
    submitted = eng.store.get(order_id)
    assert submitted.status is Status.SUBMITTED
    # WHEN the message is delivered again, within the first attempt's lease: it waits
    monkeypatch.setattr(chain, "confirm", original)
    early = eng.executor.run(order_id, receive_count=2)
    assert not early.done and early.reason == "leased" and 0 < early.retry_in_s <= 30
    # AND once the lease (the function timeout) has run out
    clock = eng.executor.clock_ms
    monkeypatch.setattr(eng.executor, "clock_ms", lambda: clock() + 31_000)
    eng.executor.run(order_id, receive_count=3)
    # THEN the order confirms with the transaction it already had: no second swap
    done = eng.store.get(order_id)
    assert done.status is Status.CONFIRMED
    assert done.details["txHash"] == submitted.details["txHash"]
    assert [e["status"] for e in done.history] == LIFECYCLE


def test_a_terminal_order_is_left_alone(eng):
    order_id = eng.orders.submit(_request()).record.order_id
    eng.executor.run(order_id, receive_count=1)
    before = eng.store.get(order_id)
    outcome = eng.executor.run(order_id, receive_count=2)
    assert outcome.done and eng.store.get(order_id).seq == before.seq


def test_retryable_failures_back_off_then_fail_once(eng):
    order_id = eng.orders.submit(_request(), test_failure=True).record.order_id
    eng.subscriptions.subscribe("c-1", order_id)
    delays = []
    for receive in (1, 2, 3, 4):
        outcome = eng.executor.run(order_id, receive_count=receive)
        assert not outcome.done
        delays.append(outcome.retry_in_s)
    assert delays == [2, 4, 8, 0]
    final = eng.store.get(order_id)
    assert final.status is Status.FAILED and final.attempts == 4
    assert len(final.details["errors"]) == 4
    failed = [m for m in eng.notifier.messages["c-1"] if m["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["attempts"] == 4
    routing_attempts = [m.get("attempt") for m in eng.notifier.messages["c-1"] if m["status"] == "routing"]
    assert routing_attempts == [1, 2, 3, 4]
    retries = [m for m in eng.notifier.messages["c-1"] if m["status"] == "routing" and m["attempt"] > 1]
    assert all(m["error"] for m in retries)


def test_subscribe_mode_is_kept_on_the_order_and_unsubscribe_removes_it(eng):
    order_id = eng.orders.submit(_request()).record.order_id
    eng.subscriptions.subscribe("c-9", order_id)
    assert eng.store.get(order_id).subscribers == {"c-9": SubscriberMode.SUBSCRIBED}
    eng.subscriptions.unsubscribe("c-9", order_id)
    assert eng.store.get(order_id).subscribers == {}


def test_a_connection_that_went_away_is_forgotten_by_the_next_push(eng):
    # GIVEN a subscriber that disconnected while the order was queued (no $disconnect clean-up)
    order_id = eng.orders.submit(_request()).record.order_id
    eng.subscriptions.subscribe("c-9", order_id)
    eng.subscriptions.subscribe("c-10", order_id)
    eng.notifier.gone.add("c-9")
    # WHEN the order executes
    eng.executor.run(order_id, receive_count=1)
    # THEN the gone one was dropped at the first push (410), the live one saw everything
    assert "c-9" not in eng.store.get(order_id).subscribers
    assert [m["status"] for m in eng.notifier.messages["c-10"]] == LIFECYCLE


def test_stranded_pending_orders_are_queued_again(eng):
    # GIVEN an order stored but never queued (the process died in between)
    record = eng.orders.submit(_request()).record
    eng.orders_queue.sent.clear()
    eng.orders_queue.delete(list(eng.orders_queue._live))
    # WHEN the sweeper runs with a zero age threshold
    requeued = eng.orders.requeue_stranded(older_than_s=0)
    # THEN the order is queued again, once
    assert requeued == [record.order_id]
    assert eng.orders_queue.sent == [{"orderId": record.order_id, "round": 1}]


def test_while_the_queue_has_a_backlog_a_pending_order_is_not_queued_twice(eng):
    # GIVEN an order accepted a minute ago, still pending because it waits in a queue with a backlog
    record = eng.orders.submit(_request()).record
    eng.orders_queue.sent.clear()
    minute_ago = (datetime.now(UTC) - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    eng.store._items[record.order_id] = record.with_(created_at=minute_ago)
    # WHEN the sweeper runs (stranded after 30 s)
    requeued = eng.orders.requeue_stranded(older_than_s=30)
    # THEN nothing is sent: with messages waiting it only re-queues orders pending 10 times as long
    assert requeued == [] and eng.orders_queue.sent == []
    assert eng.orders.requeue_stranded(older_than_s=5) == [record.order_id]


def test_dead_letters_get_records_and_redrive_starts_a_new_round(eng):
    order_id = eng.orders.submit(_request(), test_failure=True).record.order_id
    for receive in (1, 2, 3, 4):
        eng.executor.run(order_id, receive_count=receive)
    eng.dead_letters.dlq.send({"orderId": order_id, "round": 1})  # what the redrive policy does
    stats = eng.dead_letters.stats()
    assert stats["failureRecords"] == 1 and stats["messagesInDlq"] == 1
    items, _ = eng.dead_letters.list(10, None)
    assert items[0]["orderId"] == order_id and items[0]["attemptsMade"] == 4
    assert items[0]["originalOrder"]["tokenIn"] == "SOL" and len(items[0]["errors"]) == 4
    moved = eng.dead_letters.redrive()
    assert moved["orderIds"] == [order_id]
    assert eng.orders_queue.sent[-1] == {"orderId": order_id, "round": 2, "redrive": True}
    outcome = eng.executor.run(order_id, receive_count=1, round_=2)
    assert not outcome.done  # still failing, but a fresh round: attempt 1 again
    again = eng.store.get(order_id)
    assert again.round == 2 and again.attempts == 1
    routing = [e for e in again.history if e["status"] == "routing"]
    assert routing[-1]["attempt"] == 1 and routing[-1]["round"] == 2
    assert eng.dead_letters.clear(keep_records=False) == {"messagesPurged": 0, "recordsCleared": 1}


def test_a_redrive_by_message_move_task_starts_a_new_round_from_the_unchanged_message(eng):
    # GIVEN a failed order whose message is in a DLQ that serves message move tasks (LocalStack, AWS)
    eng.dead_letters.dlq.move_tasks = True
    eng.dead_letters.move_task = True  # DLQ_MOVE_TASK=on (auto: on AWS itself)
    order_id = eng.orders.submit(_request(), test_failure=True).record.order_id
    for receive in (1, 2, 3, 4):
        eng.executor.run(order_id, receive_count=receive)
    eng.dead_letters.dlq.send({"orderId": order_id, "round": 1})
    # WHEN it is redriven
    assert eng.dead_letters.redrive() == {"redriven": 1, "orderIds": [order_id]}
    # THEN the message arrives unchanged, still naming round 1, and nothing was re-sent
    assert eng.orders_queue.sent[-1] == {"orderId": order_id, "round": 1}
    assert eng.dead_letters.dlq.depth() == 0
    # AND its delivery starts round 2 (kept on the order), attempt 1, not a dropped duplicate
    outcome = eng.executor.run(order_id, receive_count=1, round_=1)
    assert outcome.reason != "already_terminal" and not outcome.done
    again = eng.store.get(order_id)
    assert again.round == 2 and again.attempts == 1
    assert [e.get("round") for e in again.history if e["status"] == "routing"][-1] == 2
    # AND a second copy of that round-1 message is a duplicate now
    assert eng.executor.run(order_id, receive_count=1, round_=1).reason == "already_terminal"
    assert eng.failures.get(order_id).redriven == 1


def test_dlq_move_task_is_on_against_aws_and_off_against_an_emulator_unless_told():
    from chalicelib.config import load_settings

    assert load_settings({}).dlq_move_task is True
    assert load_settings({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}).dlq_move_task is False
    assert load_settings({"AWS_ENDPOINT_URL": "http://x", "DLQ_MOVE_TASK": "on"}).dlq_move_task is True
    assert load_settings({"DLQ_MOVE_TASK": "off"}).dlq_move_task is False


def test_a_crash_on_the_last_attempt_is_reconciled_from_the_dlq(eng):
    # GIVEN an order that died mid-attempt and whose message reached the DLQ without a record
    order_id = eng.orders.submit(_request(), test_failure=True).record.order_id
    eng.executor.run(order_id, receive_count=1)
    assert eng.failures.get(order_id) is None
    eng.dead_letters.dlq.send({"orderId": order_id, "round": 1})
    # WHEN anyone looks at the DLQ (or the sweeper runs)
    eng.dead_letters.reconcile()
    # THEN the order is failed, pushed, and has its record
    assert eng.store.get(order_id).status is Status.FAILED
    assert eng.failures.get(order_id).failure_reason == "dead_lettered"


def test_a_slippage_breach_is_retried_with_a_fresh_quote_and_a_new_transaction(eng, monkeypatch):
    from chalicelib.market import SlippageExceeded

    order_id = eng.orders.submit(_request()).record.order_id
    market = eng.executor.chain.market
    real_execute = market.execute
    calls = []

    def breach_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise SlippageExceeded("filled below the floor")
        return real_execute(*args, **kwargs)

    monkeypatch.setattr(market, "execute", breach_once)
    # GIVEN the first execution lands below the slippage floor
    first = eng.executor.run(order_id, receive_count=1)
    assert not first.done and first.retry_in_s == 2 and first.reason == "slippage_exceeded"
    failed_tx = eng.store.get(order_id).details["failedTransactions"]
    # WHEN the retry comes, 2 s later (a new slot, so a new recent blockhash)
    chain = eng.executor.chain
    clock = chain.clock_ms
    monkeypatch.setattr(chain, "clock_ms", lambda: clock() + 2_000)
    assert eng.executor.run(order_id, receive_count=2).done
    # THEN it re-quotes and confirms with a new transaction, not the failed one
    done = eng.store.get(order_id)
    assert done.status is Status.CONFIRMED and done.details["txHash"] not in failed_tx
    retry = [e for e in done.history if e["status"] == "routing"][-1]
    assert retry["attempt"] == 2 and "floor" in retry["error"]


def test_replay_waits_out_a_410_while_the_handshake_completes(eng):
    order_id = eng.orders.submit(_request()).record.order_id
    eng.subscriptions.connect("c-1", order_id)
    # GIVEN the connection still answers 410 (its $connect has not returned yet)
    eng.notifier.gone.add("c-1")
    naps = []

    def nap(seconds):
        naps.append(seconds)
        if len(naps) == 2:
            eng.notifier.gone.discard("c-1")  # the handshake completed meanwhile

    eng.subscriptions.sleep = nap
    # WHEN the replay runs
    eng.subscriptions.replay(order_id, "c-1")
    # THEN it retried briefly and delivered the history, and the connection is now live
    assert naps == [0.05, 0.1]
    assert [m["status"] for m in eng.notifier.messages["c-1"]] == ["pending"]
    assert eng.store.get(order_id).subscribers == {"c-1": SubscriberMode.OPEN}


def test_replay_gives_up_on_a_connection_that_never_opens(eng):
    from chalicelib.service import ConnectionNotReady

    order_id = eng.orders.submit(_request()).record.order_id
    eng.subscriptions.connect("c-1", order_id)
    eng.notifier.gone.add("c-1")
    eng.subscriptions.sleep = lambda _s: None
    with pytest.raises(ConnectionNotReady):
        eng.subscriptions.replay(order_id, "c-1")
    # the next delivery of the message may claim it again
    assert eng.store.get(order_id).subscribers == {"c-1": SubscriberMode.PENDING}
    eng.subscriptions.give_up_replay(order_id, "c-1")
    assert eng.store.get(order_id).subscribers == {}


def test_a_dropped_transaction_is_retried_with_a_new_one():
    eng = _memory_engine(Settings(submit_delay_ms=(0, 0), quote_delay_ms=(0, 0), chain_drop_ppm=1_000_000))
    order_id = eng.orders.submit(_request()).record.order_id
    outcome = eng.executor.run(order_id, receive_count=1)
    assert not outcome.done and outcome.reason == "transaction_dropped" and outcome.retry_in_s == 2
    record = eng.store.get(order_id)
    assert record.details["failedTransactions"] and not record.details.get("txHash")
