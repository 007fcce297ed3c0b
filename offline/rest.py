"""The REST API, served by Chalice's own local gateway in a background thread.

Reusing ``chalice.local`` (route matching, authorizers, CORS, binary types,
the Lambda proxy event) keeps REST behaviour identical to ``chalice local``;
this module only adds JSON request logs and start/stop from a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from chalice.app import Chalice
from chalice.config import Config
from chalice.deploy.validate import validate_routes
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LocalChalice,
    LocalDevServer,
    LocalGatewayException,
    ThreadedHTTPServer,
)

from . import authorizers
from .apigateway import INTEGRATION_TIMEOUT_S, MAX_REQUEST_BYTES, LambdaProxyApp, request_too_large
from .gateway_responses import GatewayResponses
from .lambdas import Invoker
from .logs import log, log_error
from .redact import redacted_path
from .sigv4 import SigV4Routes
from .throttle import UsagePlan


class LoggingRequestHandler(ChaliceRequestHandler):
    """Chalice's request handler with one JSON log line per request.

    Nagle's algorithm is off: the handler writes the headers and the body in two
    sends on a keep-alive connection, and with Nagle on the body waits for the
    client's delayed ACK (40 ms on Linux) whenever the first segment is unacked.
    """

    _status: int = 0
    disable_nagle_algorithm = True
    gateway_responses = GatewayResponses()  # set per server from the template
    usage_plan: UsagePlan | None = None  # the template's usage plan (throttling per API key)
    sigv4_routes: SigV4Routes | None = None  # the routes the template marks awsSigv4 (IAM)
    authorizer_functions: Callable[[str], Invoker] | None = None  # each authorizer's own Lambda function
    authorizer_cache: authorizers.AuthorizerCache | None = None  # shared by every request, as API Gateway's

    def _logged_handle(self) -> None:
        start = time.perf_counter()
        self._status = 0
        authorizers.install(
            self.local_gateway, self.usage_plan, self.sigv4_routes, self.authorizer_functions, self.authorizer_cache
        )
        try:
            if int(self.headers.get("content-length") or 0) > MAX_REQUEST_BYTES:
                self.close_connection = True  # the body stays unread
                self._send_error_response(request_too_large())
                return
            self._generic_handle()
        except Exception as exc:  # log it with a traceback, then let the server answer
            log_error("http_error", exc, method=self.command, path=redacted_path(self.path))
            raise
        finally:
            log(
                "http",
                method=self.command,
                path=redacted_path(self.path),
                status=self._status,
                ms=round((time.perf_counter() - start) * 1000, 1),
            )

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _logged_handle

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, QUERY, ...) is routed like these, never http.server's 501."""
        if name.startswith("do_"):
            return self._logged_handle
        raise AttributeError(name)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        """Remember the status for our log line instead of printing Apache-style."""
        try:
            self._status = int(code)
        except (TypeError, ValueError):
            self._status = 0

    def log_message(self, format: str, *args: Any) -> None:
        """Silence BaseHTTPRequestHandler's own stderr lines."""

    def _send_error_response(self, error: LocalGatewayException) -> None:
        """An error API Gateway itself answers (no route, no signature): as the template customises it."""
        rendered = self.gateway_responses.render(
            error.CODE, error.body, str(error.headers.get("x-amzn-ErrorType", "")), self.command, self.path
        )
        if rendered is None:
            super()._send_error_response(error)
            return
        status, headers, body = rendered
        self._send_http_response(status, {**error.headers, **headers}, body)


class BackloggedHTTPServer(ThreadedHTTPServer):
    """Chalice's threaded server with a listen backlog fit for bursts.

    socketserver's default backlog of 5 resets connections when a client opens
    dozens at once (a batch of orders), which API Gateway would never do.
    """

    request_queue_size = 256
    daemon_threads = True


class RestServer:
    """Chalice's ``LocalDevServer`` running ``serve_forever`` in a daemon thread."""

    def __init__(
        self,
        app_obj: Chalice,
        config: Config,
        host: str,
        port: int,
        gateway_responses: GatewayResponses | None = None,
        usage_plan: UsagePlan | None = None,
        sigv4_routes: SigV4Routes | None = None,
        function: Invoker | None = None,
        stage: str = "api",
        integration_timeout_s: float = INTEGRATION_TIMEOUT_S,
        authorizer_functions: Callable[[str], Invoker] | None = None,
        authorizer_cache: authorizers.AuthorizerCache | None = None,
    ) -> None:
        """With ``function`` (the app's ``api_handler`` pool), requests run there, behind
        API Gateway's front door (:mod:`offline.apigateway`); without it, in this process.
        ``authorizer_functions`` gives each authorizer's own function (without it they run
        in this process too)."""
        validate_routes(app_obj.routes)
        # What chalice.local.create_local_server does: make
        # ``app.current_request`` thread-local so concurrent requests on the
        # threaded server do not see each other's request object.
        if not isinstance(app_obj, LocalChalice):
            CustomLocalChalice.__bases__ = (LocalChalice, app_obj.__class__)
            app_obj.__class__ = CustomLocalChalice
        handler = type(
            "TemplateRequestHandler",
            (LoggingRequestHandler,),
            {
                "gateway_responses": gateway_responses or GatewayResponses(),
                "usage_plan": usage_plan,
                "sigv4_routes": sigv4_routes,
                "authorizer_functions": staticmethod(authorizer_functions) if authorizer_functions else None,
                "authorizer_cache": authorizer_cache or authorizers.AuthorizerCache(),
            },
        )
        target: Any = app_obj
        if function is not None:
            self.proxy = target = LambdaProxyApp(app_obj, function, stage, integration_timeout_s, host, port)
        self._dev = LocalDevServer(target, config, host, port, handler_cls=handler, server_cls=BackloggedHTTPServer)
        self.host = host
        self.port = int(self._dev.server.server_address[1])
        if function is not None:
            self.proxy.domain = f"{host}:{self.port}"
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Serve in a background thread (the socket is already bound)."""
        self._thread = threading.Thread(
            target=self._dev.server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="offline-rest",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting requests and release the port."""
        if self._thread is not None:
            self._dev.server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._dev.server.server_close()
