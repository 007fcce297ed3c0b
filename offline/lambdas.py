"""Lambda's execution model: each function in worker processes of its own.

A :class:`FunctionPool` per function keeps warm execution environments
(:mod:`offline.worker` child processes) and gives each invocation one of
them, one event at a time, starting a new one (a cold start) when all are
busy, up to the function's concurrency. Environments are forked from a
snapshot of the function (one process per function that imported the app
with that function's environment); they share its init, as SnapStart restores
environments, or with ``OFFLINE_INIT=environment`` each runs the function's init
again, importing the project's own modules anew (decision 015). What AWS
documents and this keeps:

* each function has its own environment variables (its own
  ``lambda_functions`` block, not another function's) and the reserved
  ``AWS_LAMBDA_*`` ones; module state is per execution environment
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html,
  https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html);
* an invocation that runs past the function's timeout is stopped and its
  environment is reset (here: the process is killed, the next invocation
  starts a new one); the invocation fails with ``Task timed out``;
* with reserved concurrency, an invocation beyond it is throttled
  (``TooManyRequestsException``) instead of waiting
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html);
* a synchronous invocation's response is at most 6 MB
  (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).

* without reserved concurrency a function draws on the account's unreserved
  concurrency (the account limit, 1000 by default, minus every function's
  reserved concurrency), shared by all such functions; an invocation beyond
  it is throttled too (:class:`AccountConcurrency`).

Apart from AWS's limits, a function gets at most ``OFFLINE_MAX_CONCURRENCY``
(default 10) processes on this machine; an invocation beyond that (and within
the account's concurrency) waits for one to free up instead of starting more.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import reduction
from pathlib import Path
from typing import Any, Protocol, cast

from . import awscalls
from .logs import log, log_error

__all__ = [
    "ACCOUNT_CONCURRENCY_ENV",
    "ACCOUNT_ID",
    "MAX_CONCURRENCY_ENV",
    "MAX_SYNC_PAYLOAD_BYTES",
    "AccountConcurrency",
    "FunctionPool",
    "FunctionSpec",
    "InProcessFunction",
    "Invoker",
    "Outcome",
    "as_invoker",
    "default_max_concurrency",
    "function_environment",
    "set_preload",
]

ACCOUNT_ID = "123456789012"
MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
MAX_CONCURRENCY_ENV = "OFFLINE_MAX_CONCURRENCY"
# Errors of Lambda's Invoke API itself (the request is refused before any function runs).
INVOKE_REJECTIONS = frozenset({"RequestEntityTooLargeException", "InvalidRequestContentException"})
ACCOUNT_CONCURRENCY_ENV = "OFFLINE_ACCOUNT_CONCURRENCY"
DEFAULT_ACCOUNT_CONCURRENCY = 1000  # Lambda's default concurrent executions per account and region
INIT_TIMEOUT_S = 10.0  # Lambda's init phase limit for on-demand functions


def default_max_concurrency() -> int:
    value = os.environ.get(MAX_CONCURRENCY_ENV, "").strip()
    return max(1, int(value)) if value else 10


class AccountConcurrency:
    """The account's concurrent executions, as Lambda counts them for functions without a reservation.

    The account limit (``OFFLINE_ACCOUNT_CONCURRENCY``, default 1000) less the reserved
    concurrency of every function is the unreserved pool that all other functions share;
    an invocation that finds it in use is throttled (``TooManyRequestsException``,
    reason ``ConcurrentInvocationLimitExceeded``).
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
    """

    def __init__(self, limit: int | None = None) -> None:
        if limit is None:
            value = os.environ.get(ACCOUNT_CONCURRENCY_ENV, "").strip()
            limit = int(value) if value else DEFAULT_ACCOUNT_CONCURRENCY
        self.limit = max(0, limit)
        self._reserved: dict[str, int] = {}
        self._in_use = 0
        self._lock = threading.Lock()
        self.throttled = 0

    def reserve(self, function: str, count: int) -> None:
        """Function ``function`` holds ``count`` of the account's concurrency for itself."""
        with self._lock:
            self._reserved[function] = count

    @property
    def unreserved(self) -> int:
        return max(0, self.limit - sum(self._reserved.values()))

    @property
    def in_use(self) -> int:
        return self._in_use

    def take(self) -> bool:
        with self._lock:
            if self._in_use >= self.unreserved:
                self.throttled += 1
                return False
            self._in_use += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._in_use = max(0, self._in_use - 1)


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function of the app, as the runtime runs it."""

    name: str  # Chalice's function name: api_handler, websocket_message, order_worker...
    deployed_name: str
    timeout_s: float
    memory_mb: int
    reserved_concurrency: int | None
    env: Mapping[str, str]  # the whole environment of its workers
    region: str = "us-east-1"

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.deployed_name}"


@dataclass
class Outcome:
    """What one invocation came to."""

    status: str  # ok | error | timeout | throttled | gave_up (the caller stopped waiting)
    result: Any = None
    error_type: str = ""
    error_message: str = ""
    request_id: str = ""
    ms: float = 0.0
    cold: bool = False
    trace: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def rejected(self) -> bool:
        """Lambda's Invoke API refused the invocation (throttled, payload too large): the function never ran."""
        return self.status == "throttled" or self.error_type in INVOKE_REJECTIONS


class Invoker(Protocol):
    """Anything that runs a function for one event (a pool, or a plain callable)."""

    name: str
    timeout_s: float

    def invoke(self, event: dict[str, Any], wait_s: float | None = None) -> Outcome: ...


def function_environment(
    base: Mapping[str, str],
    function_vars: Mapping[str, str],
    explicit: set[str],
    deployed_name: str,
    memory_mb: int,
    app_dir: str | Path,
    handler: str,
) -> dict[str, str]:
    """A function's environment: the runtime's, its own config variables, Lambda's reserved ones.

    The caller's explicit environment wins over config.json (as everywhere in the
    runtime); the reserved variables win over both, as Lambda does not let a
    function configure them.
    """
    env = dict(base)
    for key, value in function_vars.items():
        if key not in explicit:
            env[key] = str(value)
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": deployed_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{deployed_name}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "LAMBDA_TASK_ROOT": str(app_dir),
            "LAMBDA_RUNTIME_DIR": str(Path(sys.executable).parent),
            "_HANDLER": handler,
            "TZ": ":UTC",
            "OFFLINE_RUNTIME": "1",  # this is the local runtime (as SAM local sets AWS_SAM_LOCAL)
        }
    )
    return env


_FORKSERVER = multiprocessing.get_context("forkserver")
_BASE_PRELOAD = ["offline.worker", "offline.project", "offline.awscalls", "chalice.app", "boto3", "botocore.session"]
_preload_lock = threading.Lock()
_preload_set = False


def set_preload(modules: list[str]) -> None:
    """Modules the fork server imports once, so each environment's cold start only runs the app's own code.

    Only libraries belong here (never the app's module: its import-time code must
    run in each environment, with that function's environment variables). Takes
    effect for the first fork server of the process.
    """
    global _preload_set
    with _preload_lock:
        if _preload_set:
            return
        _FORKSERVER.set_forkserver_preload(list(dict.fromkeys(_BASE_PRELOAD + modules)))
        _preload_set = True


class _Worker:
    """One execution environment: a process forked from the function's snapshot, and its connection."""

    def __init__(self, pid: int, conn: Any) -> None:
        self.pid = pid
        self.conn = conn
        self._dead = False

    @property
    def alive(self) -> bool:
        if self._dead:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            self._dead = True
        return not self._dead

    def send(self, data: bytes) -> None:
        self.conn.send_bytes(data)

    def receive(self, deadline: float) -> dict[str, Any] | None:
        """The next message; None on timeout; ``{"exited": True}`` if the process died."""
        return _receive(self.conn, deadline)

    def kill(self) -> None:
        self._dead = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.conn.close()


def _receive(conn: Any, deadline: float) -> dict[str, Any] | None:
    try:
        if not conn.poll(max(0.0, deadline - time.monotonic())):
            return None
        frame: dict[str, Any] = json.loads(conn.recv_bytes())
    except (EOFError, OSError):
        return {"exited": True}
    return frame


class _Snapshot:
    """The function initialised once (:func:`offline.worker.snapshot`); environments are forked from it."""

    def __init__(self, spec: FunctionSpec, app_dir: str, app_ref: str) -> None:
        from .worker import snapshot

        set_preload([])
        started = time.perf_counter()
        self.conn, child = _FORKSERVER.Pipe(duplex=True)
        self.proc = _FORKSERVER.Process(
            target=snapshot, args=(child, app_dir, app_ref, spec.name, dict(spec.env)), name=f"lambda-{spec.name}"
        )
        self.proc.start()
        child.close()
        self._lock = threading.Lock()
        ready = _receive(self.conn, time.monotonic() + max(INIT_TIMEOUT_S, spec.timeout_s))
        if not ready or not ready.get("ready"):
            self.kill()
            message = (ready or {}).get("errorMessage") or "init did not finish"
            raise _InitError(str((ready or {}).get("errorType") or "Runtime.InitError"), str(message))
        log("lambda_snapshot", function=spec.name, initMs=ready.get("initMs"), ms=_ms(started), pid=self.proc.pid)

    @property
    def alive(self) -> bool:
        return self.proc.is_alive()

    def fork(self) -> _Worker:
        parent_end, child_end = _FORKSERVER.Pipe(duplex=True)
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        try:
            with self._lock:
                self.conn.send_bytes(json.dumps({"AWS_LAMBDA_LOG_STREAM_NAME": stream}).encode())
                reduction.send_handle(self.conn, child_end.fileno(), self.proc.pid)
                reply = _receive(self.conn, time.monotonic() + INIT_TIMEOUT_S)
        finally:
            child_end.close()
        if not reply or "pid" not in reply:
            parent_end.close()
            raise _InitError("Runtime.Unknown", "the function's snapshot did not fork an environment")
        return _Worker(int(reply["pid"]), parent_end)

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join(timeout=5)
        with contextlib.suppress(OSError):
            self.conn.close()


class FunctionPool:
    """The execution environments of one function (see the module docstring)."""

    def __init__(
        self,
        spec: FunctionSpec,
        app_dir: str | Path,
        app_ref: str = "app:app",
        max_concurrency: int | None = None,
        account: AccountConcurrency | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.timeout_s = spec.timeout_s
        self.app_dir = str(app_dir)
        self.app_ref = app_ref
        reserved = spec.reserved_concurrency
        self.throttles = reserved is not None
        self.max_concurrency = reserved if reserved is not None else (max_concurrency or default_max_concurrency())
        # Without a reservation the function shares the account's unreserved concurrency.
        self.account = account if reserved is None else None
        if account is not None and reserved is not None:
            account.reserve(spec.name, reserved)
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._snapshot: _Snapshot | None = None
        self._snapshot_lock = threading.Lock()
        self._starting = 0
        self._waiting = 0  # invocations waiting for an environment
        self._init_error: _InitError | None = None
        self._busy = 0
        self._stopped = False
        self.max_busy_seen = 0
        self.cold_starts = 0
        self.init_ms: list[float] = []  # each cold start, fork and (per environment) init
        self.throttled = 0
        self.timeouts = 0

    # ------------------------------------------------------------ workers
    def _snapshot_ready(self) -> _Snapshot:
        with self._snapshot_lock:
            if self._stopped:
                raise RuntimeError(f"function {self.name} is stopped")
            if self._snapshot is None or not self._snapshot.alive:
                self._snapshot = _Snapshot(self.spec, self.app_dir, self.app_ref)  # may raise _InitError
            return self._snapshot

    def _spawn(self) -> _Worker:
        started = time.perf_counter()
        worker = self._snapshot_ready().fork()
        ready = worker.receive(time.monotonic() + INIT_TIMEOUT_S)
        if not ready or not ready.get("ready"):
            worker.kill()
            message = (ready or {}).get("errorMessage") or "the new environment did not start"
            raise _InitError(str((ready or {}).get("errorType") or "Runtime.InitError"), str(message))
        self.cold_starts += 1
        self.init_ms.append(_ms(started))
        log("lambda_init", function=self.name, ms=_ms(started), initMs=ready.get("initMs"), pid=worker.pid)
        return worker

    def _acquire(self) -> tuple[_Worker | None, bool]:
        """A worker for one invocation; (None, False) when throttled.

        With no idle environment a new one is started (a cold start), in the background:
        whichever comes first, that one or an environment another invocation frees, serves
        this invocation, and the other waits idle. (On AWS the invocation would wait for its
        new environment; here the CPU that starts it is shared, so not waiting keeps bursts
        from stalling behind a row of forks.)
        """
        cold = False
        with self._cond:
            while True:
                if self._stopped:
                    raise RuntimeError(f"function {self.name} is stopped")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        self._take()
                        return worker, cold
                    self._all.discard(worker)
                if self.throttles and self._busy >= self.max_concurrency:
                    self.throttled += 1
                    return None, False
                if self._init_error is not None and not self._starting:
                    error, self._init_error = self._init_error, None
                    raise error
                if len(self._all) + self._starting < self.max_concurrency and self._starting <= self._waiting:
                    self._starting += 1
                    cold = True
                    threading.Thread(target=self._start_one, name=f"offline-spawn-{self.name}", daemon=True).start()
                self._waiting += 1
                try:
                    self._cond.wait(timeout=1.0)
                finally:
                    self._waiting -= 1

    def _start_one(self) -> None:
        """Start an environment and leave it idle for whichever invocation comes for it."""
        try:
            worker = self._spawn()
        except _InitError as exc:
            with self._cond:
                self._starting -= 1
                self._init_error = exc
                self._cond.notify_all()
            return
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting invocation
            with self._cond:
                self._starting -= 1
                self._init_error = _InitError("Runtime.Unknown", str(exc))
                self._cond.notify_all()
            return
        with self._cond:
            self._starting -= 1
            if self._stopped:
                worker.kill()
            else:
                self._all.add(worker)
                self._idle.append(worker)
            self._cond.notify_all()

    def _take(self) -> None:
        self._busy += 1
        self.max_busy_seen = max(self.max_busy_seen, self._busy)

    def _release(self, worker: _Worker, keep: bool) -> None:
        if self.account is not None:
            self.account.give_back()
        with self._cond:
            self._busy -= 1
            if keep and worker.alive and not self._stopped:
                self._idle.append(worker)  # LIFO: the warmest environment is reused first
            else:
                self._all.discard(worker)
                worker.kill()
            self._cond.notify_all()

    @property
    def busy(self) -> int:
        return self._busy

    def prewarm(self, count: int, background: bool = True) -> threading.Thread | None:
        """Start environments until there are ``count`` (they then wait idle), in the background by default."""

        def run() -> None:
            for _ in range(count):
                with self._cond:
                    if self._stopped or len(self._all) + self._starting >= min(count, self.max_concurrency):
                        return
                    self._starting += 1
                try:
                    worker = self._spawn()
                except Exception as exc:  # noqa: BLE001 - the first invocation reports it again
                    log_error("lambda_prewarm_error", exc, function=self.name)
                    with self._cond:
                        self._starting -= 1
                    return
                with self._cond:
                    self._starting -= 1
                    if self._stopped:
                        worker.kill()
                        return
                    self._all.add(worker)
                    self._idle.append(worker)
                    self._cond.notify_all()

        if not background:
            run()
            return None
        thread = threading.Thread(target=run, name=f"offline-prewarm-{self.name}", daemon=True)
        thread.start()
        return thread

    # ---------------------------------------------------------- invocation
    def invoke(self, event: dict[str, Any], wait_s: float | None = None) -> Outcome:
        """Run the function for ``event``; ``wait_s`` stops waiting earlier (API Gateway's 29 s)."""
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        try:
            data = json.dumps(
                {
                    "requestId": request_id,
                    "deadlineMs": 0,
                    "functionArn": self.spec.arn,
                    "event": event,
                },
                separators=(",", ":"),
            ).encode()
        except (TypeError, ValueError) as exc:
            return Outcome("error", error_type="InvalidRequestContentException", error_message=str(exc))
        if len(data) > MAX_SYNC_PAYLOAD_BYTES:
            return Outcome(
                "error",
                error_type="RequestEntityTooLargeException",
                error_message=f"Request must be smaller than {MAX_SYNC_PAYLOAD_BYTES} bytes for the InvokeFunction "
                "operation",
                request_id=request_id,
            )
        if self.account is not None and not self.account.take():
            self.throttled += 1
            return self._throttled(request_id, "ConcurrentInvocationLimitExceeded")
        try:
            worker, cold = self._acquire()
        except _InitError as exc:
            if self.account is not None:
                self.account.give_back()
            return Outcome("error", error_type=exc.error_type, error_message=exc.message, request_id=request_id)
        except BaseException:
            if self.account is not None:
                self.account.give_back()
            raise
        if worker is None:
            return self._throttled(request_id, "ReservedFunctionConcurrentInvocationLimitExceeded")
        # The timeout runs from the handler's start, after any cold start (as Lambda's does).
        deadline_ms = int(time.time() * 1000 + self.timeout_s * 1000)
        data = data.replace(b'"deadlineMs":0', b'"deadlineMs":%d' % deadline_ms, 1)
        deadline = time.monotonic() + self.timeout_s
        give_up = deadline if wait_s is None else min(deadline, time.monotonic() + wait_s)
        try:
            worker.send(data)
        except OSError:
            self._release(worker, keep=False)
            return Outcome(
                "error", error_type="Runtime.ExitError", error_message="worker exited", request_id=request_id
            )
        reply = worker.receive(give_up)
        if reply is None and give_up < deadline:
            threading.Thread(target=self._finish, args=(worker, deadline, request_id), daemon=True).start()
            return Outcome("gave_up", request_id=request_id, ms=_ms(started), cold=cold)
        return self._settle(worker, reply, request_id, started, cold)

    def _throttled(self, request_id: str, reason: str) -> Outcome:
        log("lambda_throttled", level="warning", function=self.name, requestId=request_id, reason=reason)
        return Outcome(
            "throttled",
            error_type="TooManyRequestsException",
            error_message=f"Rate Exceeded. ({reason})",
            request_id=request_id,
        )

    def _finish(self, worker: _Worker, deadline: float, request_id: str) -> None:
        """The caller stopped waiting: let the function run to its own end (or timeout)."""
        self._settle(worker, worker.receive(deadline), request_id, time.perf_counter(), False)

    def _settle(
        self, worker: _Worker, reply: dict[str, Any] | None, request_id: str, started: float, cold: bool
    ) -> Outcome:
        if reply is None:
            self.timeouts += 1
            self._release(worker, keep=False)  # Lambda resets a timed-out environment
            message = (
                f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {request_id} Task timed out after {self.timeout_s:.2f} seconds"
            )
            log("lambda_timeout", level="warning", function=self.name, requestId=request_id, timeoutS=self.timeout_s)
            return Outcome(
                "timeout", error_type="Sandbox.Timedout", error_message=message, request_id=request_id, ms=_ms(started)
            )
        if reply.get("exited"):
            self._release(worker, keep=False)
            return Outcome(
                "error",
                error_type="Runtime.ExitError",
                error_message="RequestId: " + request_id + " Error: Runtime exited without providing a reason",
                request_id=request_id,
                ms=_ms(started),
            )
        calls = reply.get("awsCalls")
        if calls:
            awscalls.COUNTER.merge(calls)
        self._release(worker, keep=True)
        if reply.get("ok"):
            return Outcome("ok", result=reply.get("result"), request_id=request_id, ms=_ms(started), cold=cold)
        return Outcome(
            "error",
            error_type=str(reply.get("errorType", "")),
            error_message=str(reply.get("errorMessage", "")),
            request_id=request_id,
            ms=_ms(started),
            cold=cold,
            trace=list(reply.get("stackTrace") or []),
        )

    def stop(self) -> None:
        """Kill every environment (busy ones too: the runtime is going away)."""
        with self._cond:
            self._stopped = True
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._cond.notify_all()
        for worker in workers:
            try:
                worker.kill()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                log_error("lambda_stop_error", exc, function=self.name)
        with self._snapshot_lock:
            if self._snapshot is not None:
                self._snapshot.kill()
                self._snapshot = None

    @property
    def pids(self) -> list[int]:
        with self._cond:
            return [w.pid for w in self._all]


class InProcessFunction:
    """A plain handler called in the caller's thread (no isolation, no timeout): the old model."""

    def __init__(self, name: str, handler: Callable[[dict[str, Any], Any], Any], context: Callable[[], Any]) -> None:
        self.name = name
        self.handler = handler
        self.context = context
        self.timeout_s = float("inf")

    def invoke(self, event: dict[str, Any], wait_s: float | None = None) -> Outcome:
        started = time.perf_counter()
        try:
            return Outcome("ok", result=self.handler(event, self.context()), ms=_ms(started))
        except Exception as exc:  # noqa: BLE001 - the invocation's result
            import traceback

            return Outcome(
                "error",
                error_type=type(exc).__name__,
                error_message=str(exc),
                ms=_ms(started),
                trace=traceback.format_exception(type(exc), exc, exc.__traceback__),
            )


def as_invoker(name: str, handler: Any, context: Callable[[], Any]) -> Invoker:
    """``handler`` if it is a pool (anything with ``invoke``), else the handler called in-process."""
    if hasattr(handler, "invoke"):
        return cast(Invoker, handler)
    return InProcessFunction(name, handler, context)


class _InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
