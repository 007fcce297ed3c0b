"""Lambda's SQS event source mapping, for every ``@app.on_sqs_message``.

One poller thread per handler long-polls its queue, receives only as many
messages as it can dispatch at once (a message received but waiting for a
free slot would burn its visibility timeout), groups them into batches and
invokes the function (its own worker processes, see :mod:`offline.lambdas`).
Results are applied like Lambda: a normal return deletes the batch; with
``ReportBatchItemFailures`` declared in the template, ``batchItemFailures``
keeps the listed messages (without it, the whole batch is deleted whatever
the function returns); an error, a timeout or a throttle keeps all.
The mapping scales up to its maximum concurrency (default 10 here), not to
the function's reserved concurrency: invocations beyond that are throttled
and their messages come back after the visibility timeout, as on AWS
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html).
Kept messages reappear after their visibility timeout and the queue's own
redrive policy moves them to the DLQ: nothing here re-implements retries.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
from chalice.app import SQSEventConfig

from .esm import check_maximum_concurrency, check_visibility
from .lambdas import InProcessFunction, Invoker, as_invoker
from .logs import log, log_error
from .project import FunctionSettings

DEFAULT_CONCURRENCY = 10
MAX_RECEIVE = 10  # SQS ReceiveMessage limit


@dataclass
class MappingSettings:
    """The event source mapping of one handler, resolved from the app."""

    function: str
    queue: str | None
    queue_arn: str | None
    batch_size: int
    batching_window_s: float
    concurrency: int


def concurrency_limit(cfg: SQSEventConfig, reserved: int | None) -> int:
    """min(maximum_concurrency, reserved_concurrency), 10 if neither is set (the old, lenient rule)."""
    limits = [v for v in (cfg.maximum_concurrency, reserved) if v]
    return max(1, min(limits)) if limits else DEFAULT_CONCURRENCY


def mapping_concurrency(maximum_concurrency: int | None) -> int:
    """How many batches the mapping invokes at once: its MaximumConcurrency, else 10 here.

    Reserved concurrency does not limit the mapping (Lambda throttles the invocations
    above it instead).
    """
    return int(maximum_concurrency) if maximum_concurrency else DEFAULT_CONCURRENCY


def to_lambda_record(message: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
    """Translate an SQS ``ReceiveMessage`` entry into a Lambda SQS record."""
    attrs: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        item: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            item["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
        attrs[name] = item
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attrs,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_ids(result: Any, batch_ids: list[str]) -> set[str]:
    """Message ids to keep, from a handler's return value.

    Mirrors Lambda: no ``batchItemFailures`` (or an empty list) means all
    succeeded; an identifier that is empty or not in the batch, or a
    malformed list, fails the whole batch.
    """
    if not isinstance(result, dict) or result.get("batchItemFailures") is None:
        return set()
    failures = result["batchItemFailures"]
    if not isinstance(failures, list):
        return set(batch_ids)
    ids: set[str] = set()
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not ident or ident not in batch_ids:
            return set(batch_ids)
        ids.add(str(ident))
    return ids


class SqsPoller:
    """The event source mapping for one SQS handler (one thread + a pool)."""

    def __init__(
        self,
        cfg: SQSEventConfig,
        handler: Invoker | Callable[[dict[str, Any], Any], Any],
        settings: FunctionSettings,
        session: boto3.session.Session | None = None,
        poll_wait_s: int = 2,
        report_batch_item_failures: bool = True,
        maximum_concurrency: int | None = None,
    ) -> None:
        """``handler``: the function's pool (or a plain handler, called in-process without
        the reserved concurrency throttle); ``maximum_concurrency`` from the template wins
        over Chalice's ``maximum_concurrency``."""
        self.cfg = cfg
        self.function = settings
        self.handler: Invoker = as_invoker(cfg.name, handler, settings.context)
        maximum = maximum_concurrency if maximum_concurrency is not None else cfg.maximum_concurrency
        check_maximum_concurrency(cfg.name, maximum)
        in_process = isinstance(self.handler, InProcessFunction)
        self.mapping = MappingSettings(
            function=cfg.name,
            queue=cfg.queue,
            queue_arn=cfg.queue_arn,
            batch_size=max(1, int(cfg.batch_size or 1)),
            batching_window_s=float(cfg.maximum_batching_window_in_seconds or 0),
            concurrency=concurrency_limit(cfg, settings.reserved_concurrency)
            if in_process
            else mapping_concurrency(maximum),
        )
        self.poll_wait_s = max(0, min(20, poll_wait_s))
        self.report_batch_item_failures = report_batch_item_failures
        self._session = session or boto3.session.Session()
        self._sqs: Any = None
        self._queue_url: str | None = None
        self._queue_arn: str = ""
        self._stop = threading.Event()
        self._slots = threading.Condition()
        self._in_flight = 0
        self.max_in_flight_seen = 0
        # Twice the slots: a thread still deleting its batch must not delay the next invocation.
        self._pool = ThreadPoolExecutor(
            max_workers=2 * self.mapping.concurrency, thread_name_prefix=f"offline-sqs-{cfg.name}"
        )
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"offline-poller-{self.cfg.name}", daemon=True)
        self._thread.start()

    def stop_polling(self) -> None:
        """Stop receiving (in-flight invocations keep running)."""
        self._stop.set()
        with self._slots:
            self._slots.notify_all()

    def join(self, timeout: float = 5.0) -> bool:
        """Wait for the poller and in-flight invocations; True if all done."""
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._slots:
            while self._in_flight and time.monotonic() < deadline:
                self._slots.wait(timeout=max(0.01, deadline - time.monotonic()))
            done = self._in_flight == 0
        self._pool.shutdown(wait=done, cancel_futures=True)
        if not done:
            log("sqs_stop_timeout", function=self.cfg.name, in_flight=self._in_flight)
        return done

    # -------------------------------------------------------------- polling
    def _resolve_queue(self) -> None:
        if self._sqs is None:
            self._sqs = self._session.client("sqs")
        if self.mapping.queue:
            url = self._sqs.get_queue_url(QueueName=self.mapping.queue)["QueueUrl"]
        else:
            arn = str(self.mapping.queue_arn)
            parts = arn.split(":")
            url = self._sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
        attrs = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "VisibilityTimeout"])
        self._queue_arn = attrs["Attributes"]["QueueArn"]
        self.visibility_timeout_s = int(attrs["Attributes"].get("VisibilityTimeout", 30))
        self._queue_url = url
        log(
            "sqs_mapping",
            function=self.cfg.name,
            queue=url,
            batchSize=self.mapping.batch_size,
            concurrency=self.mapping.concurrency,
        )

    def validate(self, declared_visibility_s: int | None = None) -> None:
        """Resolve the queue and check it as Lambda does when the mapping is created.

        Raises :class:`offline.esm.MappingError` if the queue's visibility timeout (the
        template's, when it declares the queue, else the live queue's) is shorter than
        the function's timeout.
        """
        self._resolve_queue()
        visibility = self.visibility_timeout_s if declared_visibility_s is None else declared_visibility_s
        check_visibility(self.cfg.name, str(self._queue_url), visibility, self.function.timeout_s)

    def _free_slots(self) -> int:
        """Block until at least one invocation slot is free (or stopping)."""
        with self._slots:
            while self._in_flight >= self.mapping.concurrency and not self._stop.is_set():
                self._slots.wait(timeout=0.5)
            return self.mapping.concurrency - self._in_flight

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if self._queue_url is None:
                    self._resolve_queue()
                self._poll_once()
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - a poller never dies
                log_error("sqs_poll_error", exc, function=self.cfg.name)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _receive(self, count: int, wait_s: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=max(1, min(MAX_RECEIVE, count)),
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", []) or []
        return messages

    def _poll_once(self) -> None:
        slots = self._free_slots()
        if self._stop.is_set() or slots <= 0:
            return
        batch_size = self.mapping.batch_size
        capacity = slots * batch_size
        window = self.mapping.batching_window_s
        messages: list[dict[str, Any]] = []
        seen: set[str] = set()
        deadline = time.monotonic() + window
        while len(messages) < capacity and not self._stop.is_set():
            if messages:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait_s = min(self.poll_wait_s, max(0, int(remaining)))
            else:
                wait_s = self.poll_wait_s
            for msg in self._receive(capacity - len(messages), wait_s):
                if msg["MessageId"] not in seen:
                    seen.add(msg["MessageId"])
                    messages.append(msg)
            if not messages:
                return  # empty long poll: re-check slots and the stop flag
            if window <= 0 or len(messages) >= batch_size:
                break
        for i in range(0, len(messages), batch_size):
            self._dispatch(messages[i : i + batch_size])

    def _dispatch(self, batch: list[dict[str, Any]]) -> None:
        with self._slots:
            self._in_flight += 1
            self.max_in_flight_seen = max(self.max_in_flight_seen, self._in_flight)
        try:
            self._pool.submit(self._invoke, batch)
        except RuntimeError:  # pool shut down while stopping: leave them queued
            self._release()

    def _release(self) -> None:
        with self._slots:
            self._in_flight -= 1
            self._slots.notify_all()

    # ----------------------------------------------------------- invocation
    def _invoke(self, batch: list[dict[str, Any]]) -> None:
        start = time.perf_counter()
        region = str(self._sqs.meta.region_name)
        records = [to_lambda_record(m, self._queue_arn, region) for m in batch]
        ids = [r["messageId"] for r in records]
        keep: set[str]
        outcome = self.handler.invoke({"Records": records})
        if outcome.ok:
            keep = failed_ids(outcome.result, ids) if self.report_batch_item_failures else set()
            status = ("partial" if len(keep) < len(ids) else "failed") if keep else "ok"
        else:  # an error, a timeout or a throttle: the whole batch comes back after its visibility timeout
            keep, status = set(ids), outcome.status
            log(
                "sqs_handler_error" if outcome.status != "throttled" else "sqs_throttled",
                level="error" if outcome.status != "throttled" else "warning",
                function=self.cfg.name,
                records=len(ids),
                outcome=outcome.status,
                errorType=outcome.error_type,
                error=outcome.error_message,
                traceback="".join(outcome.trace),
            )
        # The function is free once it returns (as on Lambda, where the mapping deletes the
        # messages afterwards): free the slot first so the next receive overlaps the delete.
        ms = round((time.perf_counter() - start) * 1000, 1)
        self._release()
        try:
            self._delete([m for m in batch if m["MessageId"] not in keep])
        except Exception as exc:  # noqa: BLE001 - they will just be redelivered
            log_error("sqs_delete_error", exc, function=self.cfg.name)
        log("sqs_invoke", function=self.cfg.name, records=len(ids), failed=len(keep), outcome=status, ms=ms)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for i in range(0, len(messages), MAX_RECEIVE):
            chunk = messages[i : i + MAX_RECEIVE]
            response = self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
            )
            for failure in response.get("Failed", []) or []:
                log("sqs_delete_failed", level="warning", function=self.cfg.name, **failure)
