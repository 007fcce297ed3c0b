"""EventBridge schedules for ``@app.schedule`` handlers: ``rate(...)`` expressions.

As EventBridge does, a ``rate()`` takes a positive whole number and a unit that is
singular for 1 and plural otherwise (``rate(1 minutes)`` is refused at start),
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html.
EventBridge invokes the function asynchronously, so a run does not wait for the
previous one (runs overlap if a run outlasts the period), and Lambda retries a
failed asynchronous invocation twice, one minute and then two minutes later,
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html.

``OFFLINE_SCHEDULE_SCALE`` (default 1) multiplies every period and retry delay, so a
test can run a once-a-minute job every few seconds without the app changing its
expression. Cron expressions are logged and skipped: their wall-clock semantics
rarely matter on a laptop, and a wrong emulation would mislead more than none.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalice.app import ScheduledEventConfig

from .lambdas import Invoker, as_invoker
from .logs import log, log_error
from .project import FunctionSettings

__all__ = ["ASYNC_RETRY_DELAYS_S", "ScheduleError", "ScheduleRunner", "rate_seconds"]

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
ASYNC_RETRY_DELAYS_S = (60.0, 120.0)


class ScheduleError(ValueError):
    """A schedule expression EventBridge would refuse."""


def rate_seconds(expression: str) -> float | None:
    """Seconds between runs of a ``rate(N unit)`` expression; None for anything else.

    Raises :class:`ScheduleError` for a ``rate()`` EventBridge refuses (zero, or a
    unit whose number does not agree with the value).
    """
    text = expression.strip()
    match = _RATE.match(text)
    if match is None:
        if text.startswith("rate("):
            raise ScheduleError(f"invalid schedule expression {text!r}: expected rate(value unit)")
        return None
    value, unit = int(match.group(1)), match.group(2)
    if value < 1:
        raise ScheduleError(f"invalid schedule expression {text!r}: the value must be a positive number")
    if (value == 1) != (not unit.endswith("s")):
        fixed = unit.rstrip("s") if value == 1 else unit + "s"
        raise ScheduleError(
            f"invalid schedule expression {text!r}: EventBridge wants a singular unit for 1 and a plural one "
            f"otherwise (rate({value} {fixed}))"
        )
    return value * _UNIT_SECONDS[unit.rstrip("s")]


class ScheduleRunner(threading.Thread):
    """Invokes one scheduled function at its rate, asynchronously (runs may overlap), with retries."""

    def __init__(
        self,
        cfg: ScheduledEventConfig,
        handler: Any,
        function: FunctionSettings,
        region: str,
        account: Callable[[], str],
    ) -> None:
        """``account``: the emulator's account id (asked once, at the first run), as EventBridge names it."""
        super().__init__(name=f"schedule-{cfg.name}", daemon=True)
        expression = cfg.schedule_expression
        self.expression = expression if isinstance(expression, str) else expression.to_string()
        self.cfg = cfg
        self.handler: Invoker = as_invoker(cfg.name, handler, function.context)
        self.function = function
        self.region = region
        self.account = account
        scale = float(os.environ.get("OFFLINE_SCHEDULE_SCALE", "1") or 1)
        base = rate_seconds(self.expression)
        self.period_s = None if base is None else max(0.1, base * scale)
        self.retry_delays_s = tuple(d * scale for d in ASYNC_RETRY_DELAYS_S)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        if self.period_s is None:
            log("schedule_skipped", level="warning", function=self.cfg.name, expression=self.expression)
            return
        log("schedule", function=self.cfg.name, expression=self.expression, everySeconds=self.period_s)
        while not self._stop.wait(self.period_s):
            # An asynchronous invocation: the schedule does not wait for it.
            threading.Thread(target=self._invoke, name=f"schedule-{self.cfg.name}_run", daemon=True).start()

    def _event(self) -> dict[str, Any]:
        account = self.account()
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:events:{self.region}:{account}:rule/{self.cfg.name}"],
            "detail": {},
        }

    def _invoke(self) -> None:
        event = self._event()  # retries get the same event, as Lambda's async queue keeps it
        for attempt in range(len(self.retry_delays_s) + 1):
            if attempt and self._stop.wait(self.retry_delays_s[attempt - 1]):
                return
            started = time.perf_counter()
            try:
                outcome = self.handler.invoke(event)
            except Exception as exc:  # noqa: BLE001 - a failed run must not stop the schedule
                log_error("schedule_error", exc, function=self.cfg.name)
                return
            ms = round((time.perf_counter() - started) * 1000, 1)
            if outcome.ok:
                log("schedule_invoke", function=self.cfg.name, attempt=attempt + 1, ms=ms)
                return
            log(
                "schedule_error",
                level="error",
                function=self.cfg.name,
                attempt=attempt + 1,
                outcome=outcome.status,
                errorType=outcome.error_type,
                error=outcome.error_message,
                traceback="".join(outcome.trace),
            )
        log("schedule_gave_up", level="error", function=self.cfg.name, eventId=event["id"])
