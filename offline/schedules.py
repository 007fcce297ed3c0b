"""EventBridge schedules for ``@app.schedule`` handlers: ``rate(...)`` expressions.

``OFFLINE_SCHEDULE_SCALE`` (default 1) multiplies every period, so a test can run a
once-a-minute job every few seconds without the app changing its expression.
Cron expressions are logged and skipped: their wall-clock semantics rarely matter
on a laptop, and a wrong emulation would mislead more than none.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from chalice.app import ScheduledEventConfig

from .logs import log, log_error
from .project import FunctionSettings

__all__ = ["ScheduleRunner", "rate_seconds"]

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """Seconds between runs of a ``rate(N unit)`` expression; None for anything else."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


class ScheduleRunner(threading.Thread):
    """Invokes one scheduled handler at its rate, never two runs at once (like one rule)."""

    def __init__(self, cfg: ScheduledEventConfig, handler: Any, function: FunctionSettings, region: str) -> None:
        super().__init__(name=f"schedule-{cfg.name}", daemon=True)
        expression = cfg.schedule_expression
        self.expression = expression if isinstance(expression, str) else expression.to_string()
        self.cfg = cfg
        self.handler = handler
        self.function = function
        self.region = region
        scale = float(os.environ.get("OFFLINE_SCHEDULE_SCALE", "1") or 1)
        base = rate_seconds(self.expression)
        self.period_s = None if base is None else max(0.1, base * scale)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        if self.period_s is None:
            log("schedule_skipped", level="warning", function=self.cfg.name, expression=self.expression)
            return
        log("schedule", function=self.cfg.name, expression=self.expression, everySeconds=self.period_s)
        while not self._stop.wait(self.period_s):
            self._invoke()

    def _invoke(self) -> None:
        started = time.perf_counter()
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:events:{self.region}:123456789012:rule/{self.cfg.name}"],
            "detail": {},
        }
        try:
            self.handler(event, self.function.context())
            log("schedule_invoke", function=self.cfg.name, ms=round((time.perf_counter() - started) * 1000, 1))
        except Exception as exc:  # noqa: BLE001 - a failed run must not stop the schedule
            log_error("schedule_error", exc, function=self.cfg.name)
