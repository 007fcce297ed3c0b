"""Structured, one-line JSON logging for the local runtime.

Every event the runtime observes (a request, an invocation, an error) is one
compact JSON object on stderr, so a human can tail it and a test or benchmark
can parse it without regexes.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from typing import IO, Any

_lock = threading.Lock()
_stream: IO[str] | None = None


def set_stream(stream: IO[str] | None) -> None:
    """Redirect log lines (``None`` restores stderr); mostly for tests."""
    global _stream
    _stream = stream


def log(event: str, level: str = "info", **fields: Any) -> None:
    """Write one JSON log line ``{"ts", "level", "event", ...fields}``.

    A lock keeps lines from interleaving when many handler threads log at
    once; values that are not JSON-serialisable are rendered with ``str``.
    """
    record: dict[str, Any] = {
        "ts": round(time.time(), 3),
        "level": level,
        "event": event,
    }
    record.update(fields)
    line = json.dumps(record, default=str, separators=(",", ":"))
    stream = _stream if _stream is not None else sys.stderr
    with _lock:
        try:
            stream.write(line + "\n")
            stream.flush()
        except (ValueError, OSError):  # stream closed during shutdown
            pass


def log_error(event: str, exc: BaseException | None = None, **fields: Any) -> None:
    """Log an error with its traceback (as one string field, still one line)."""
    if exc is not None:
        fields["error"] = f"{type(exc).__name__}: {exc}"
        fields["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    log(event, level="error", **fields)
