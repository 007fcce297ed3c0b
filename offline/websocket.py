"""API Gateway WebSocket API and its ``@connections`` management API.

One aiohttp server on one port plays both halves, as the contract asks:

* WebSocket upgrades on ``/`` and ``/{stage}`` run the app's ``$connect``
  handler *before* the handshake completes (a non-2xx answer refuses it),
  route each text frame on ``$request.body.action`` (Chalice's route
  selection expression) with ``$default`` as fallback, and run
  ``$disconnect`` when the socket closes.
* ``POST/GET/DELETE /@connections/{id}`` (also under ``/{stage}``) answer
  exactly what botocore's ``apigatewaymanagementapi`` model expects,
  including ``410 GoneException`` for a connection whose ``$connect`` is still
  running: on AWS nothing can be posted before the handshake completes, and
  emulating that keeps the race visible locally.

Each route's function runs in its own worker processes (``functions``, see
:mod:`offline.lambdas`), waited for from a thread pool. As on AWS, the
messages of one connection are separate invocations that may run at the same
time, frames over 32 KB close the connection with 1009 and binary frames with
1003 (this API's routes take text), and a connection is closed after 10
minutes without a message or 2 hours in all (both configurable for tests):
https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html
"""

from __future__ import annotations

import asyncio
import enum
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from aiohttp import WSMsgType, web
from chalice.app import Chalice, WebsocketEvent, WebsocketEventSourceHandler

from .authorizers import ConnectAuthorizer
from .awscalls import PATH as AWS_CALLS_PATH
from .awscalls import AwsCallCounter
from .lambdas import InProcessFunction, Invoker
from .logs import log, log_error
from .project import FunctionSettings, entry_point
from .redact import redacted_query

CONNECT = "$connect"
DISCONNECT = "$disconnect"
DEFAULT = "$default"
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket message limit (@connections posts)
MAX_FRAME_BYTES = 32 * 1024  # API Gateway's WebSocket frame limit: larger closes 1009
IDLE_TIMEOUT_S = 10 * 60.0
MAX_DURATION_S = 2 * 3600.0
INTEGRATION_TIMEOUT_S = 29.0
API_ID = "local"


class State(enum.Enum):
    """Life cycle of a connection, as the management API sees it."""

    CONNECTING = "connecting"  # $connect running: not postable yet (410)
    OPEN = "open"
    CLOSED = "closed"


@dataclass
class Connection:
    """One client socket and what API Gateway remembers about it."""

    id: str
    source_ip: str
    user_agent: str
    connected_at: float
    headers: dict[str, str]
    state: State = State.CONNECTING
    last_active_at: float = 0.0
    ws: web.WebSocketResponse | None = None
    inbox: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    disconnect_status: int = 1005
    authorizer: dict[str, Any] | None = None  # the $connect authorizer's principal and context
    disconnect_reason: str = ""


def new_connection_id() -> str:
    """An id shaped like API Gateway's (12 random bytes, base64, ending in '=')."""
    return secrets.token_urlsafe(12)[:15] + "="


def _iso(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _request_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _json_response(status: int, body: dict[str, Any], error_type: str | None = None) -> web.Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    return web.json_response(body, status=status, headers=headers)


def gone_response(connection_id: str) -> web.Response:
    """410 in restJson error shape, so boto3 raises ``GoneException``."""
    return _json_response(410, {"message": f"Connection {connection_id} is gone"}, error_type="GoneException")


class WebSocketGateway:
    """The WebSocket API + ``@connections`` server, run in its own thread/loop."""

    def __init__(
        self,
        app_obj: Chalice,
        module: ModuleType,
        settings: Callable[[str], FunctionSettings],
        host: str = "127.0.0.1",
        port: int = 8001,
        stage: str = "api",
        max_workers: int = 64,
        aws_calls: AwsCallCounter | None = None,
        connect_authorizer: ConnectAuthorizer | None = None,
        functions: Callable[[str], Invoker] | None = None,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_duration_s: float = MAX_DURATION_S,
        integration_timeout_s: float = INTEGRATION_TIMEOUT_S,
    ) -> None:
        self.app = app_obj
        self.module = module
        self.settings = settings
        self.host = host
        self.port = port
        self.stage = stage
        self.aws_calls = aws_calls  # serve its counts at AWS_CALLS_PATH when given
        self.connect_authorizer = connect_authorizer  # the template's $connect authorizer, if any
        self.functions = functions  # a function's worker pool by name; None: call handlers in-process
        self.idle_timeout_s = idle_timeout_s
        self.max_duration_s = max_duration_s
        self.integration_timeout_s = integration_timeout_s
        self.connections: dict[str, Connection] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="offline-ws")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._sessions: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ URLs
    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def management_url(self) -> str:
        """Endpoint for boto3's ``apigatewaymanagementapi`` client."""
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 10.0) -> None:
        """Start the server thread; return once the port is listening."""
        self._thread = threading.Thread(target=self._run, name="offline-ws-loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("WebSocket server did not start in time")
        if self._start_error is not None:
            raise RuntimeError(f"WebSocket server failed: {self._start_error}") from (self._start_error)

    def stop(self, timeout: float = 5.0) -> None:
        """Close every socket (1001), run their ``$disconnect``, free the port."""
        loop = self._loop
        if loop is None or self._thread is None:
            return
        if loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(timeout), loop)
            try:
                fut.result(timeout + 2)
            except Exception as exc:  # noqa: BLE001 - best effort on the way out
                log_error("ws_shutdown_error", exc)
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=timeout)
        self._thread = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._start_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_MESSAGE_BYTES * 2)
        stage = f"/{self.stage}"
        for path in ("/", stage, stage + "/"):
            app.router.add_get(path, self._ws_handler)
        for prefix in ("", stage):
            path = prefix + "/@connections/{connection_id}"
            app.router.add_post(path, self._post_connection)
            app.router.add_get(path, self._get_connection)
            app.router.add_delete(path, self._delete_connection)
        if self.aws_calls is not None:
            app.router.add_get(AWS_CALLS_PATH, self._get_aws_calls)
            app.router.add_delete(AWS_CALLS_PATH, self._reset_aws_calls)
        return app

    async def _startup(self) -> None:
        self._runner = web.AppRunner(self._build_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()

    async def _shutdown(self, timeout: float) -> None:
        for conn in list(self.connections.values()):
            if conn.ws is not None and conn.state is State.OPEN:
                conn.disconnect_status, conn.disconnect_reason = 1001, "Going away"
                await conn.ws.close(code=1001, message=b"Going away")
        if self._sessions:
            await asyncio.wait(set(self._sessions), timeout=timeout)
        if self._runner is not None:
            await self._runner.cleanup()

    # ----------------------------------------------------------- invocation
    def _handler_for(self, route_key: str) -> Invoker | None:
        cfg = self.app.websocket_handlers.get(route_key)
        if cfg is None:
            return None
        if self.functions is not None:
            return self.functions(cfg.name)
        fn = entry_point(self.app, self.module, cfg.name, cfg.handler_string)
        if not isinstance(fn, WebsocketEventSourceHandler):
            # Not exported under its handler_string name: wrap it the way
            # Chalice's decorator does so the event object is the same.
            fn = WebsocketEventSourceHandler(cfg.handler_function, WebsocketEvent, self.app.websocket_api)
        return InProcessFunction(cfg.name, fn, self.settings(cfg.name).context)

    async def _invoke_logged(
        self, log_event: str, conn: Connection, route_key: str, event: dict[str, Any], **extra: Any
    ) -> tuple[int, Any]:
        """`_invoke`, with one log line carrying the route, the status and the time taken."""
        start = time.perf_counter()
        status, response = await self._invoke(route_key, event)
        ms = round((time.perf_counter() - start) * 1000, 1)
        log(log_event, connectionId=conn.id, routeKey=route_key, status=status, ms=ms, **extra)
        return status, response

    async def _invoke(self, route_key: str, event: dict[str, Any]) -> tuple[int, Any]:
        """Run a route's function: ``(statusCode, response)``.

        A function error or timeout is a 500, as API Gateway reports a failed
        integration; 504 when API Gateway stops waiting (29 s).
        """
        function = self._handler_for(route_key)
        if function is None:
            return 200, None
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(self._pool, function.invoke, event, self.integration_timeout_s)
        if not outcome.ok:
            log(
                "ws_handler_error",
                level="error",
                routeKey=route_key,
                connectionId=event["requestContext"]["connectionId"],
                outcome=outcome.status,
                errorType=outcome.error_type,
                error=outcome.error_message,
                traceback="".join(outcome.trace),
            )
            return (504 if outcome.status == "gave_up" else 500), None
        response = outcome.result
        status = 200
        if isinstance(response, dict):
            try:
                status = int(response.get("statusCode", 200))
            except (TypeError, ValueError):
                status = 502
        return status, response

    def _event(self, conn: Connection, route_key: str, event_type: str, **extra: Any) -> dict[str, Any]:
        now = time.time()
        request_id = str(uuid.uuid4())
        context: dict[str, Any] = {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": _request_time(now),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": int(conn.connected_at * 1000),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
            "requestId": request_id,
            "domainName": f"{self.host}:{self.port}",
            "connectionId": conn.id,
            "apiId": API_ID,
        }
        context.update(extra.pop("request_context", {}))
        if conn.authorizer is not None:
            context["authorizer"] = dict(conn.authorizer)
        event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
        event.update(extra)
        return event

    # ------------------------------------------------------------ websocket
    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        probe = web.WebSocketResponse()
        if not probe.can_prepare(request).ok:
            return web.Response(status=426, text="Upgrade Required")
        now = time.time()
        conn = Connection(
            id=new_connection_id(),
            source_ip=request.remote or "127.0.0.1",
            user_agent=request.headers.get("User-Agent", ""),
            connected_at=now,
            last_active_at=now,
            headers=dict(request.headers),
        )
        self.connections[conn.id] = conn  # visible to @connections, as CONNECTING
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        try:
            return await self._session(request, conn)
        finally:
            conn.state = State.CLOSED
            self.connections.pop(conn.id, None)
            if task is not None:
                self._sessions.discard(task)

    async def _session(self, request: web.Request, conn: Connection) -> web.StreamResponse:
        query = request.rel_url.query
        multi_headers: dict[str, list[str]] = {}
        for key, value in request.headers.items():
            multi_headers.setdefault(key, []).append(value)
        multi_query: dict[str, list[str]] = {}
        for key, value in query.items():
            multi_query.setdefault(key, []).append(value)
        event = self._event(
            conn,
            CONNECT,
            "CONNECT",
            headers=dict(request.headers),
            multiValueHeaders=multi_headers,
            queryStringParameters={k: v[-1] for k, v in multi_query.items()} or None,
            multiValueQueryStringParameters=multi_query or None,
        )
        if self.connect_authorizer is not None:
            loop = asyncio.get_running_loop()
            status, conn.authorizer = await loop.run_in_executor(self._pool, self.connect_authorizer.authorize, event)
            if status != 200:
                log("ws_connect", connectionId=conn.id, routeKey=CONNECT, status=status, authorizer=True)
                message = {401: "Unauthorized", 403: "Forbidden"}.get(status, "Internal server error")
                return web.Response(status=status, text=json.dumps({"message": message}))
            event["requestContext"]["authorizer"] = dict(conn.authorizer or {})
        status, response = await self._invoke_logged(
            "ws_connect", conn, CONNECT, event, query=redacted_query(event["queryStringParameters"])
        )
        if not 200 <= status < 300:
            message = "Internal server error" if status >= 500 else "Forbidden"
            return web.Response(status=status, text=json.dumps({"message": message}))
        protocols: tuple[str, ...] = ()
        if isinstance(response, dict):
            chosen = (response.get("headers") or {}).get("Sec-WebSocket-Protocol")
            if chosen:
                protocols = (str(chosen),)
        # aiohttp checks whole messages: one over a frame's 32 KB closes 1009, as API Gateway does.
        ws = web.WebSocketResponse(protocols=protocols, max_msg_size=MAX_FRAME_BYTES)
        await ws.prepare(request)
        conn.ws = ws
        conn.state = State.OPEN
        conn.last_active_at = time.time()  # idle from the handshake on, not from before $connect ran
        worker = asyncio.create_task(self._message_worker(conn))
        watchdog = asyncio.create_task(self._watch_limits(conn))
        try:
            async for msg in ws:
                conn.last_active_at = time.time()
                if msg.type == WSMsgType.TEXT:
                    conn.inbox.put_nowait(str(msg.data))
                elif msg.type == WSMsgType.BINARY:
                    conn.disconnect_status, conn.disconnect_reason = 1003, "Binary frames are not supported"
                    await ws.close(code=1003, message=b"Unsupported data")
                    break
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            watchdog.cancel()
            if conn.disconnect_status == 1005 and ws.close_code is not None:
                conn.disconnect_status = int(ws.close_code)
            conn.state = State.CLOSED
            conn.inbox.put_nowait(None)
            await worker
            await self._disconnect(conn)
        return ws

    async def _watch_limits(self, conn: Connection) -> None:
        """Close a connection idle too long, or open longer than API Gateway allows (1001)."""
        while conn.state is State.OPEN and conn.ws is not None:
            now = time.time()
            idle_left = conn.last_active_at + self.idle_timeout_s - now
            total_left = conn.connected_at + self.max_duration_s - now
            if min(idle_left, total_left) <= 0:
                reason = "Idle timeout" if idle_left <= 0 else "Maximum connection duration"
                conn.disconnect_status, conn.disconnect_reason = 1001, reason
                log("ws_limit_close", connectionId=conn.id, reason=reason)
                await conn.ws.close(code=1001, message=b"Going away")
                return
            await asyncio.sleep(min(idle_left, total_left, 1.0))

    async def _disconnect(self, conn: Connection) -> None:
        event = self._event(
            conn,
            DISCONNECT,
            "DISCONNECT",
            headers={"Host": f"{self.host}:{self.port}"},
            request_context={
                "disconnectStatusCode": conn.disconnect_status,
                "disconnectReason": conn.disconnect_reason,
            },
        )
        await self._invoke_logged("ws_disconnect", conn, DISCONNECT, event, code=conn.disconnect_status)

    def select_route(self, body: str) -> str | None:
        """``$request.body.action`` route selection, falling back to ``$default``."""
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            action = parsed.get("action")
            routable = action not in (CONNECT, DISCONNECT)
            if isinstance(action, str) and routable and action in self.app.websocket_handlers:
                return action
        return DEFAULT if DEFAULT in self.app.websocket_handlers else None

    async def _message_worker(self, conn: Connection) -> None:
        """Invoke each message's route as it arrives: invocations of one connection may overlap, as on AWS."""
        running: set[asyncio.Task[None]] = set()
        while True:
            body = await conn.inbox.get()
            if body is None:
                break
            task = asyncio.create_task(self._message_logged(conn, body))
            running.add(task)
            task.add_done_callback(running.discard)
        if running:
            await asyncio.wait(set(running))

    async def _message_logged(self, conn: Connection, body: str) -> None:
        try:
            await self._message(conn, body)
        except Exception as exc:  # noqa: BLE001 - keep the connection alive
            log_error("ws_message_error", exc, connectionId=conn.id)

    async def _message(self, conn: Connection, body: str) -> None:
        route_key = self.select_route(body)
        event = self._event(
            conn,
            route_key or DEFAULT,
            "MESSAGE",
            body=body,
            request_context={"messageId": secrets.token_urlsafe(12)[:15] + "="},
        )
        request_id = event["requestContext"]["requestId"]
        if route_key is None:
            log("ws_message", connectionId=conn.id, routeKey=None, status=403, ms=0)
            await self._send_frame(
                conn,
                json.dumps({"message": "Forbidden", "connectionId": conn.id, "requestId": request_id}),
            )
            return
        status, _ = await self._invoke_logged("ws_message", conn, route_key, event)
        if status >= 500:
            await self._send_frame(
                conn,
                json.dumps(
                    {
                        "message": "Endpoint request timed out" if status == 504 else "Internal server error",
                        "connectionId": conn.id,
                        "requestId": request_id,
                    }
                ),
            )

    async def _send_frame(self, conn: Connection, data: str | bytes) -> bool:
        """Send one frame if the connection is open; False if it is gone."""
        ws = conn.ws
        if conn.state is not State.OPEN or ws is None or ws.closed:
            return False
        async with conn.send_lock:
            try:
                if isinstance(data, bytes):
                    try:
                        await ws.send_str(data.decode("utf-8"))
                    except UnicodeDecodeError:
                        await ws.send_bytes(data)
                else:
                    await ws.send_str(data)
            except (ConnectionError, RuntimeError):
                return False
        return True

    # ------------------------------------------------------ @connections API
    def _postable(self, connection_id: str) -> Connection | None:
        conn = self.connections.get(connection_id)
        if conn is None or conn.state is not State.OPEN:
            return None
        return conn

    async def _post_connection(self, request: web.Request) -> web.Response:
        start = time.perf_counter()
        cid = request.match_info["connection_id"]
        data = await request.read()
        conn = self._postable(cid)
        if conn is None:
            response = gone_response(cid)
        elif len(data) > MAX_MESSAGE_BYTES:
            response = _json_response(413, {"message": "Message too long"}, error_type="PayloadTooLargeException")
        elif await self._send_frame(conn, data):
            conn.last_active_at = time.time()
            response = web.Response(status=200)
        else:
            response = gone_response(cid)
        self._log_api("POST", cid, response.status, start, bytes=len(data))
        return response

    async def _get_connection(self, request: web.Request) -> web.Response:
        start = time.perf_counter()
        cid = request.match_info["connection_id"]
        conn = self._postable(cid)
        if conn is None:
            response = gone_response(cid)
        else:
            response = _json_response(
                200,
                {
                    "connectedAt": _iso(conn.connected_at),
                    "lastActiveAt": _iso(conn.last_active_at),
                    "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
                },
            )
        self._log_api("GET", cid, response.status, start)
        return response

    async def _delete_connection(self, request: web.Request) -> web.Response:
        start = time.perf_counter()
        cid = request.match_info["connection_id"]
        conn = self._postable(cid)
        if conn is None or conn.ws is None:
            response = gone_response(cid)
        else:
            conn.disconnect_status, conn.disconnect_reason = 1000, "Deleted by @connections"
            # Close in the background: the close handshake waits for the
            # client, and AWS answers DELETE without waiting for it.
            task = asyncio.create_task(conn.ws.close(code=1000, message=b""))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            response = web.Response(status=204)
        self._log_api("DELETE", cid, response.status, start)
        return response

    async def _get_aws_calls(self, request: web.Request) -> web.Response:
        assert self.aws_calls is not None
        return web.json_response(self.aws_calls.snapshot())

    async def _reset_aws_calls(self, request: web.Request) -> web.Response:
        assert self.aws_calls is not None
        self.aws_calls.reset()
        return web.json_response(self.aws_calls.snapshot())

    @staticmethod
    def _log_api(method: str, cid: str, status: int, start: float, **extra: Any) -> None:
        log(
            "connections_api",
            method=method,
            connectionId=cid,
            status=status,
            ms=round((time.perf_counter() - start) * 1000, 1),
            **extra,
        )

    # ------------------------------------------------- thread-safe helpers
    def post_to_connection(self, connection_id: str, data: str | bytes, timeout: float = 5) -> bool:
        """Send to a connection from any thread; False when it is gone."""
        loop = self._loop
        if loop is None:
            return False

        async def send() -> bool:
            conn = self._postable(connection_id)
            return conn is not None and await self._send_frame(conn, data)

        return asyncio.run_coroutine_threadsafe(send(), loop).result(timeout)
