"""Lambda invocations (count and duration per function) from the local runtime's JSON log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["invocations"]

# The runtime's log events, and the Lambda function Chalice deploys for each.
_FUNCTION_OF_EVENT = {
    "http": "api_handler",
    "ws_connect": "websocket_connect",
    "ws_message": "websocket_message",
    "ws_disconnect": "websocket_disconnect",
}


def invocations(log_path: Path, since: float, until: float) -> dict[str, dict[str, float]]:
    """{function: {"count", "ms"}} for the invocations that ended in [since, until]."""
    result: dict[str, dict[str, float]] = {}
    with log_path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.startswith("{"):
                continue
            try:
                record: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            event, when = record.get("event"), record.get("ts")
            if not isinstance(when, int | float) or not since <= when <= until:
                continue
            if event in ("sqs_invoke", "schedule_invoke"):
                function = str(record.get("function"))
            elif event in _FUNCTION_OF_EVENT:
                if event == "ws_message" and record.get("routeKey") is None:
                    continue  # refused by route selection: no invocation
                function = _FUNCTION_OF_EVENT[str(event)]
            else:
                continue
            tally = result.setdefault(function, {"count": 0, "ms": 0.0})
            tally["count"] += 1
            tally["ms"] += float(record.get("ms") or 0)
    return result
