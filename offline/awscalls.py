"""Opt-in count of the AWS API calls the handlers (and the runtime itself) make.

With ``OFFLINE_COUNT_AWS_CALLS=1`` the runtime wraps
``botocore.client.BaseClient._make_api_call``, the one method every botocore
client goes through: boto3 clients, and pynamodb, whose ``Connection`` calls
``self.client._make_api_call`` on a botocore client. Each call is counted by

* ``caller``: who made it, from the thread name (``api`` for REST handlers,
  ``websocket`` for WebSocket handlers, ``lambda:<fn>`` for an SQS handler,
  ``esm:<fn>`` for the event source mapping's own polling, ``schedule:<fn>``),
* ``service`` and ``operation`` (botocore's names: ``dynamodb``/``UpdateItem``,
  ``sqs``/``ReceiveMessage``, ``apigatewaymanagementapi``/``PostToConnection``),
* ``resource``: the table or queue name when the call names one,

with the number of calls, how many raised, and the time they took. The
counts are served as JSON at ``GET /_offline/aws-calls`` on the WebSocket
port and reset with ``DELETE``. Retries that botocore makes inside one call
count once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.client import BaseClient

__all__ = ["COUNTER", "ENV_VAR", "PATH", "AwsCallCounter", "caller_of", "enabled", "install", "uninstall"]

ENV_VAR = "OFFLINE_COUNT_AWS_CALLS"
PATH = "/_offline/aws-calls"


def enabled(env: dict[str, str] | os._Environ[str] | None = None) -> bool:
    value = (env if env is not None else os.environ).get(ENV_VAR, "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def caller_of(thread_name: str) -> str:
    """Which part of the runtime a thread belongs to (see the module docstring)."""
    for prefix, role in (("offline-sqs-", "lambda:"), ("offline-poller-", "esm:"), ("schedule-", "schedule:")):
        if thread_name.startswith(prefix):
            name, _, suffix = thread_name[len(prefix) :].rpartition("_")
            return role + (name if suffix.isdigit() and name else thread_name[len(prefix) :])
    if thread_name.startswith("offline-ws"):
        return "websocket"
    if "process_request_thread" in thread_name:
        return "api"
    return "other"


def _resource(params: dict[str, Any]) -> str:
    table = params.get("TableName")
    if isinstance(table, str):
        return table
    queue = params.get("QueueUrl")
    if isinstance(queue, str):
        return queue.rstrip("/").rsplit("/", 1)[-1]
    return ""


@dataclass
class _Tally:
    count: int = 0
    errors: int = 0
    ms: float = 0.0


class AwsCallCounter:
    """Thread-safe tallies of AWS calls, keyed by (caller, service, operation, resource)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[tuple[str, str, str, str], _Tally] = {}
        self._since = time.time()

    def record(self, caller: str, service: str, operation: str, resource: str, ms: float, error: bool) -> None:
        key = (caller, service, operation, resource)
        with self._lock:
            tally = self._tallies.get(key)
            if tally is None:
                tally = self._tallies[key] = _Tally()
            tally.count += 1
            tally.errors += int(error)
            tally.ms += ms

    def reset(self) -> None:
        with self._lock:
            self._tallies.clear()
            self._since = time.time()

    def drain(self) -> list[list[Any]]:
        """Rows counted since the last drain, then forgotten (a worker reports them to the runtime)."""
        with self._lock:
            rows = [[*key, t.count, t.errors, round(t.ms, 3)] for key, t in self._tallies.items()]
            self._tallies.clear()
        return rows

    def merge(self, rows: list[list[Any]]) -> None:
        """Add rows a worker process drained (see ``drain``)."""
        with self._lock:
            for caller, service, operation, resource, count, errors, ms in rows:
                key = (str(caller), str(service), str(operation), str(resource))
                tally = self._tallies.get(key)
                if tally is None:
                    tally = self._tallies[key] = _Tally()
                tally.count += int(count)
                tally.errors += int(errors)
                tally.ms += float(ms)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            rows = [
                {
                    "caller": caller,
                    "service": service,
                    "operation": operation,
                    "resource": resource,
                    "count": t.count,
                    "errors": t.errors,
                    "ms": round(t.ms, 1),
                }
                for (caller, service, operation, resource), t in sorted(self._tallies.items())
            ]
            since = self._since
        return {
            "enabled": _original is not None,
            "since": round(since, 3),
            "now": round(time.time(), 3),
            "total": sum(r["count"] for r in rows),
            "calls": rows,
        }


COUNTER = AwsCallCounter()
_original: Callable[..., Any] | None = None
_install_lock = threading.Lock()


def install(counter: AwsCallCounter = COUNTER, caller: str | None = None) -> bool:
    """Wrap ``BaseClient._make_api_call`` (once per process); True if this call installed it.

    ``caller`` names every call of the process (a Lambda worker runs one function);
    without it the caller comes from the thread's name.
    """
    global _original
    with _install_lock:
        if _original is not None:
            return False
        original: Callable[..., Any] = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private, untyped

        def counted(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            start = time.perf_counter()
            failed = True
            try:
                result = original(self, operation_name, api_params)
                failed = False
                return result
            finally:
                counter.record(
                    caller or caller_of(threading.current_thread().name),
                    self.meta.service_model.service_name,
                    operation_name,
                    _resource(api_params),
                    (time.perf_counter() - start) * 1000,
                    failed,
                )

        setattr(BaseClient, "_make_api_call", counted)  # noqa: B010
        _original = original
        return True


def uninstall() -> None:
    """Put the original method back (a later runtime in the same process starts clean)."""
    global _original
    with _install_lock:
        if _original is not None:
            setattr(BaseClient, "_make_api_call", _original)  # noqa: B010
            _original = None
