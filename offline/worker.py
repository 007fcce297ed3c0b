"""One Lambda execution environment: a child process that runs one function.

:func:`run` is the target of a process forked from the runtime's fork server
(:mod:`offline.lambdas`): it takes the function's environment (its own
variables and Lambda's reserved ones), imports the app, finds the function's
entry point and then invokes it for one event at a time, for as long as the
parent keeps it warm. Requests and results are JSON messages on a
``multiprocessing`` connection (Lambda payloads are JSON too: a result that is
not JSON fails here as it fails on AWS); the handler's own ``print`` goes to
stderr with the logs.

The parent enforces the timeout by killing this process, as Lambda resets an
execution environment whose invocation timed out.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["MAX_RESPONSE_BYTES", "LambdaContext", "run", "snapshot"]

MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response limit


class LambdaContext:
    """The context object of Lambda's Python runtime (same attributes and method).

    https://docs.aws.amazon.com/lambda/latest/dg/python-context.html
    """

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name: str = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version: str = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn: str = str(request.get("functionArn", ""))
        self.memory_limit_in_mb: int = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id: str = str(request["requestId"])
        self.log_group_name: str = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name: str = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline_ms = int(request["deadlineMs"])

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the timeout; never negative."""
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _watch_parent(parent: int) -> None:
    """Exit when the runtime that started us is gone (it may have been SIGKILLed)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def _entry_point(app_dir: str, app_ref: str, function: str) -> Any:
    from chalice.app import BuiltinAuthConfig, LambdaFunction, WebsocketEvent, WebsocketEventSourceHandler

    from . import project

    module, app = project.load_app(app_dir, app_ref)
    endpoint = os.environ.get("OFFLINE_WEBSOCKET_ENDPOINT")
    if endpoint and getattr(app.websocket_api, "_endpoint", None) is None:
        app.websocket_api._endpoint = endpoint  # see LocalRuntime._point_websocket_api
    if function == "api_handler":
        return app
    for cfg in app.websocket_handlers.values():
        if cfg.name == function:
            fn = project.entry_point(app, module, cfg.name, cfg.handler_string)
            if not isinstance(fn, WebsocketEventSourceHandler):
                fn = WebsocketEventSourceHandler(cfg.handler_function, WebsocketEvent, app.websocket_api)
            return fn
    for source in app.event_sources:
        if source.name == function:
            return project.entry_point(app, module, source.name, source.handler_string)
    # Authorizers and plain @app.lambda_function functions (a $connect authorizer) are
    # Lambda functions of their own too.
    others: list[BuiltinAuthConfig | LambdaFunction] = [*app.builtin_auth_handlers, *app.pure_lambda_functions]
    for other in others:
        if other.name == function:
            return project.entry_point(app, module, other.name, other.handler_string)
    raise LookupError(f"no function {function!r} in {app_ref}")


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "ok": False,
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__),
    }


def _reply(result: Any) -> bytes:
    try:
        data = json.dumps({"ok": True, "result": result}, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        return json.dumps(_error(exc, "Runtime.MarshalError")).encode()
    if len(data) > MAX_RESPONSE_BYTES:
        message = (
            f"Response payload size ({len(data)} bytes) exceeded maximum allowed payload size "
            f"({MAX_RESPONSE_BYTES} bytes)."
        )
        return json.dumps({"ok": False, "errorType": "Function.ResponseSizeTooLarge", "errorMessage": message}).encode()
    return data


def _name_process(function: str) -> None:
    """Name this process `fn:<function>` (ps, top, py-spy and the bench's CPU count per function)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(15, f"fn:{function}"[:15].encode(), 0, 0, 0)  # PR_SET_NAME; forks inherit it
    except (OSError, AttributeError):
        pass  # not Linux: the name is cosmetic


def _become(app_dir: str, env: Mapping[str, str], function: str) -> None:
    """Take the function's environment, directory and module path; print() joins the logs."""
    _name_process(function)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    os.chdir(app_dir)
    sys.path.insert(0, app_dir)  # the app's modules first, whatever the parent's main module added
    os.dup2(2, 1)  # never into the runtime's stdout
    # A terminal's Ctrl-C reaches the whole process group; the runtime stops its
    # environments itself (as Lambda does: a function never sees the operator's SIGINT).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), name="offline-parent-watch", daemon=True).start()


def _init(conn: Connection, app_dir: str, app_ref: str, function: str) -> tuple[Any, bool] | None:
    """Import the app and find the function (Lambda's init phase); None if that failed (reported)."""
    from . import awscalls

    counting = awscalls.enabled() and awscalls.install(caller=os.environ.get("OFFLINE_CALLER", "lambda:" + function))
    started = time.perf_counter()
    try:
        handler = _entry_point(app_dir, app_ref, function)
    except BaseException as exc:  # noqa: BLE001 - reported as Runtime.ImportModuleError, like Lambda
        conn.send_bytes(json.dumps({"ready": False, **_error(exc, "Runtime.ImportModuleError")}).encode())
        return None
    conn.send_bytes(json.dumps({"ready": True, "initMs": round((time.perf_counter() - started) * 1000, 1)}).encode())
    return handler, counting


def _serve(conn: Connection, handler: Any, counting: bool) -> None:
    """Invoke the function for each request, one at a time, until the parent hangs up."""
    from . import awscalls

    while True:
        try:
            request = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            data = _reply(handler(request["event"], LambdaContext(request)))
        except Exception as exc:  # noqa: BLE001 - an unhandled error is the invocation's result
            data = json.dumps(_error(exc)).encode()
        if counting:
            calls = awscalls.COUNTER.drain()
            if calls:
                data = data[:-1] + b',"awsCalls":' + json.dumps(calls).encode() + b"}"
        conn.send_bytes(data)


def run(conn: Connection, app_dir: str, app_ref: str, function: str, env: Mapping[str, str]) -> None:
    """Become one execution environment: init, then serve invocations."""
    from .heap import freeze_during_warmup

    _become(app_dir, env, function)
    initialised = _init(conn, app_dir, app_ref, function)
    if initialised is None:
        return
    freeze_during_warmup()
    _serve(conn, *initialised)


SDK_SERVICES = ("dynamodb", "sqs", "apigatewaymanagementapi")  # what this runtime serves


def _share_sdk_models() -> None:
    """Parse botocore's JSON (service models, endpoints) once, in the snapshot, for every environment.

    Each new botocore session parses its models again (~0.5-0.9 s per client on this
    shared machine under load, and every environment makes its own clients): with the
    parsed files cached in the snapshot and inherited by each fork, a client costs a
    fraction of that. Lambda parses per environment, on a CPU of its own.
    """
    import boto3
    import botocore.loaders

    original = botocore.loaders.JSONFileLoader.load_file
    parsed: dict[str, Any] = {}

    def load_file(self: Any, file_path: str, *args: Any, **kwargs: Any) -> Any:
        key = f"{file_path}|{args}|{sorted(kwargs.items())}"
        if key not in parsed:
            parsed[key] = original(self, file_path, *args, **kwargs)
        return parsed[key]

    botocore.loaders.JSONFileLoader.load_file = load_file  # type: ignore[method-assign]
    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or "us-east-1")
    for service in SDK_SERVICES:
        try:
            session.client(service, endpoint_url="http://127.0.0.1:1")  # type: ignore[call-overload]
        except Exception:  # noqa: BLE001 - an optimisation only
            continue


INIT_ENV = "OFFLINE_INIT"
INIT_PER_ENVIRONMENT = "environment"  # each environment runs the handler module's init, as on Lambda
INIT_SNAPSHOT = "snapshot"  # environments share the snapshot's init, as SnapStart restores them (the default)


def init_mode(env: Mapping[str, str]) -> str:
    value = env.get(INIT_ENV, "").strip().lower()
    return INIT_PER_ENVIRONMENT if value == INIT_PER_ENVIRONMENT else INIT_SNAPSHOT


def _reinit(
    conn: Connection, app_dir: str, app_ref: str, function: str, own: list[str], counting: bool
) -> tuple[Any, bool] | None:
    """Run the function's init again in this environment: the project's modules are imported anew.

    Libraries stay imported from the snapshot (their import is not the app's init code);
    the handler module and the project's own modules run their module-level code here,
    so what init computes (random values, the time, clients and connections made at
    import) is this environment's own, as on Lambda without SnapStart.
    """
    for name in own:
        sys.modules.pop(name, None)
    initialised = _init(conn, app_dir, app_ref, function)
    return None if initialised is None else (initialised[0], counting)


def snapshot(control: Connection, app_dir: str, app_ref: str, function: str, env: Mapping[str, str]) -> None:
    """Init the function once, then fork an execution environment from it per request.

    Each environment starts from this initialised process, with the libraries imported
    and the SDK's models parsed, and keeps this one's init (as Lambda SnapStart resumes
    from a snapshot taken after init: a cold start costs a fork) or, with
    ``OFFLINE_INIT=environment``, runs the function's init again (:func:`_reinit`).
    A request is a JSON object with the environment's own variables, followed by the
    connection (a file descriptor) the new environment serves; the reply is its pid.
    """
    import gc
    from multiprocessing import reduction

    from . import awscalls, project
    from .heap import freeze_during_warmup

    _become(app_dir, env, function)
    before = set(sys.modules)
    initialised = _init(control, app_dir, app_ref, function)
    if initialised is None:
        return
    # The project's own modules that init imported: each environment imports them again.
    runtime = __name__.partition(".")[0]  # this runtime's own package stays as it is
    own = [m for m in project.own_modules(set(sys.modules) - before, app_dir) if m.partition(".")[0] != runtime]
    per_environment = init_mode(env) == INIT_PER_ENVIRONMENT
    awscalls.COUNTER.drain()  # calls made by init are this process's, not each environment's
    _share_sdk_models()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # environments are reaped by the kernel
    gc.freeze()  # the initialised heap stays shared with every environment
    while True:
        try:
            extra = json.loads(control.recv_bytes())
            fd = reduction.recv_handle(control)
        except (EOFError, OSError):
            return
        pid = os.fork()
        if pid == 0:  # the new execution environment
            try:
                control.close()
                os.environ.update(extra)
                threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
                conn = Connection(fd)
                if per_environment:
                    initialised = _reinit(conn, app_dir, app_ref, function, own, initialised[1])
                    if initialised is None:
                        return
                else:
                    conn.send_bytes(b'{"ready": true, "initMs": 0}')
                freeze_during_warmup()
                _serve(conn, *initialised)
            finally:
                os._exit(0)
        os.close(fd)
        control.send_bytes(json.dumps({"pid": pid}).encode())
