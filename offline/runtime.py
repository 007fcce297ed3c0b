"""``LocalRuntime``: the whole local stack for one Chalice app, start to stop.

Order matters and mirrors a deployment: find or start the emulator, create
the template's resources, put the resolved environment in place, *then*
import the app (it may read the environment at import time), then serve
REST, WebSocket + ``@connections``, and start the SQS pollers.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import boto3
from chalice.app import Chalice, ScheduledEventConfig, SQSEventConfig
from chalice.config import Config

from . import awscalls, project
from .authorizers import ConnectAuthorizer
from .emulator import Emulator, free_port, resolve_emulator
from .gateway_responses import GatewayResponses
from .logs import log, log_error
from .provision import load_template, provision
from .rest import RestServer
from .schedules import ScheduleRunner
from .sidecar import Sidecar
from .sigv4 import SigV4Routes
from .sqs import SqsPoller
from .throttle import UsagePlan
from .websocket import WebSocketGateway

DEFAULT_TEMPLATE = "infra/resources.json"
MANAGEMENT_ENDPOINT_ENV = "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"


@dataclass
class Urls:
    """Where everything listens once the runtime is ready."""

    rest: str
    websocket: str
    connections: str
    aws: str

    def as_dict(self) -> dict[str, str]:
        return {
            "rest": self.rest,
            "websocket": self.websocket,
            "connections": self.connections,
            "aws": self.aws,
        }


def _default_port(env_var: str, fallback: int) -> int:
    value = os.environ.get(env_var)
    return int(value) if value else fallback


class LocalRuntime:
    """Run a Chalice app locally: REST, WebSocket API, @connections, SQS ESM.

    Usable as a context manager; ``start()`` returns when everything answers.
    Environment variables the runtime sets are restored on ``stop()`` so
    several runtimes can run one after another in one test process.
    """

    def __init__(
        self,
        app_dir: str | Path = ".",
        app_ref: str = "app:app",
        stage: str = "dev",
        rest_port: int | None = None,
        ws_port: int | None = None,
        template: str | Path | None = DEFAULT_TEMPLATE,
        host: str = "127.0.0.1",
        poll_wait_seconds: int = 2,
        shutdown_grace_seconds: float = 5.0,
        sidecars: tuple[Sidecar, ...] = (),
    ) -> None:
        self.app_dir = Path(app_dir).resolve()
        self.app_ref = app_ref
        self.stage = stage
        self.host = host
        self.rest_port = _default_port("REST_PORT", 8000) if rest_port is None else rest_port
        self.ws_port = _default_port("WS_PORT", 8001) if ws_port is None else ws_port
        self.template = template
        self.poll_wait_seconds = poll_wait_seconds
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self.sidecars = list(sidecars)  # offline/sidecar.py: started before the app, env set for it

        self.emulator: Emulator | None = None
        self.module: ModuleType | None = None
        self.app: Chalice | None = None
        self.config: Config | None = None
        self.rest: RestServer | None = None
        self.websocket: WebSocketGateway | None = None
        self.pollers: list[SqsPoller] = []
        self.schedules: list[ScheduleRunner] = []
        self.env: dict[str, str] = {}  # what the runtime put into os.environ
        self.urls: Urls | None = None
        self._saved_env: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._started = False
        self._prev_module: tuple[str, ModuleType | None] | None = None
        self._added_path = False
        self._counting_aws_calls = False

    # ---------------------------------------------------------- environment
    def _setenv(self, key: str, value: str, override: bool = True) -> None:
        if not override and key in os.environ:
            return
        if key not in self._saved_env:
            self._saved_env[key] = os.environ.get(key)
        os.environ[key] = value
        self.env[key] = value

    def _restore_env(self) -> None:
        for key, old in self._saved_env.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        self._saved_env.clear()

    def _template_path(self) -> Path | None:
        if not self.template:
            return None
        path = Path(self.template)
        if not path.is_absolute():
            path = self.app_dir / path
        if not path.is_file():
            log("template_missing", level="warning", template=str(path))
            return None
        return path

    # ------------------------------------------------------------ lifecycle
    def start(self) -> Urls:
        """Bring everything up; returns the URLs once they answer."""
        with self._lock:
            if self._started:
                assert self.urls is not None
                return self.urls
            try:
                self._start()
            except BaseException:
                self._stop()
                raise
            self._started = True
            assert self.urls is not None
            return self.urls

    def _start(self) -> None:
        if awscalls.enabled():
            self._counting_aws_calls = awscalls.install()
        explicit = set(os.environ)  # the caller's environment wins over config.json
        before = dict(os.environ)
        self.emulator = resolve_emulator()
        for key, value in os.environ.items():  # remember what resolve_emulator set
            if before.get(key) != value:
                self._saved_env.setdefault(key, before.get(key))
                self.env[key] = value

        self.sidecars = [car for car in self.sidecars if car.start()]
        for key, value in (item for car in self.sidecars for item in car.env.items()):
            if key not in explicit:
                self._setenv(key, value)

        disk = project.read_config_file(self.app_dir)
        app_name = str(disk.get("app_name") or self.app_dir.name)
        template = self._template_path()
        if template is not None:
            resolved = provision(template, boto3.session.Session(), f"{app_name}-{self.stage}")
            for key, value in resolved.items():
                if key not in explicit:
                    self._setenv(key, value)
        for key, value in project.config_environment(self.app_dir, self.stage).items():
            if key not in explicit:
                self._setenv(key, value)

        if self.ws_port == 0:
            self.ws_port = free_port(self.host)
        self._setenv(MANAGEMENT_ENDPOINT_ENV, f"http://{self._client_host}:{self.ws_port}")

        module_name = self.app_ref.partition(":")[0]
        self._prev_module = (module_name, sys.modules.get(module_name))
        self._added_path = str(self.app_dir) not in sys.path
        self.module, self.app = project.load_app(self.app_dir, self.app_ref)
        self.config = project.stage_config(self.app_dir, self.stage, self.app)
        ws_stage = str(disk.get("stages", {}).get(self.stage, {}).get("websocket_api_stage", "api"))
        self._point_websocket_api(ws_stage)

        loaded = load_template(template) if template is not None else {}
        responses = GatewayResponses.from_template(loaded) if template is not None else None
        usage_plan = UsagePlan.from_template(loaded, os.environ)
        sigv4 = SigV4Routes.from_template(loaded, self.app)
        self.rest = RestServer(self.app, self.config, self.host, self.rest_port, responses, usage_plan, sigv4)
        self.rest.start()
        self.rest_port = self.rest.port
        self.websocket = WebSocketGateway(
            self.app,
            self.module,
            self.settings,
            host=self.host,
            port=self.ws_port,
            stage=ws_stage,
            aws_calls=awscalls.COUNTER if awscalls.enabled() else None,
            connect_authorizer=ConnectAuthorizer.from_template(
                loaded,
                self.app,
                lambda name, handler: project.entry_point(self.app, self.module, name, handler),  # type: ignore[arg-type]
                lambda name: self.settings(name).context,
            ),
        )
        self.websocket.start()
        self._start_pollers()
        self.urls = Urls(
            rest=self.rest.url,
            websocket=self.websocket.url,
            connections=f"{self.websocket.management_url}/@connections/{{connectionId}}",
            aws=self.emulator.endpoint,
        )
        log(
            "ready",
            **self.urls.as_dict(),
            emulator=self.emulator.source,
            sqsHandlers=[p.cfg.name for p in self.pollers],
            wsRoutes=sorted(self.app.websocket_handlers),
        )

    def _point_websocket_api(self, ws_stage: str) -> None:
        """Make ``app.websocket_api.send()`` reach the local @connections.

        Chalice builds ``https://{apiId}.execute-api.{region}.amazonaws.com/
        {stage}`` on the first websocket event and passes it as an explicit
        ``endpoint_url``, which beats ``AWS_ENDPOINT_URL_*``. Its
        ``configure()`` keeps the first endpoint it is given but forces
        https, so the (private) endpoint is set directly, once, here.
        """
        assert self.app is not None
        ws_api = self.app.websocket_api
        if getattr(ws_api, "_endpoint", None) is None:
            ws_api._endpoint = f"http://{self._client_host}:{self.ws_port}/{ws_stage}"

    @property
    def _client_host(self) -> str:
        """Where handlers reach our servers (a wildcard bind is not an address)."""
        return "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host

    def settings(self, function_name: str) -> project.FunctionSettings:
        """Lambda settings (timeout, memory, reserved concurrency) of a function."""
        assert self.config is not None
        return project.function_settings(self.config, self.stage, function_name)

    def _start_pollers(self) -> None:
        assert self.app is not None and self.module is not None
        session = boto3.session.Session()
        for source in self.app.event_sources:
            if isinstance(source, ScheduledEventConfig):
                self._start_schedule(source)
                continue
            if not isinstance(source, SQSEventConfig):
                continue
            handler = project.entry_point(self.app, self.module, source.name, source.handler_string)
            if handler is None:
                log("sqs_handler_missing", level="error", function=source.name)
                continue
            poller = SqsPoller(
                source,
                handler,
                self.settings(source.name),
                session=session,
                poll_wait_s=self.poll_wait_seconds,
            )
            poller.start()
            self.pollers.append(poller)

    def _start_schedule(self, source: ScheduledEventConfig) -> None:
        assert self.app is not None and self.module is not None
        handler = project.entry_point(self.app, self.module, source.name, source.handler_string)
        if handler is None:
            log("schedule_handler_missing", level="error", function=source.name)
            return
        region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        runner = ScheduleRunner(source, handler, self.settings(source.name), region)
        runner.start()
        self.schedules.append(runner)

    def stop(self) -> None:
        """Stop pollers, servers and (if ours) the emulator; restore the env."""
        with self._lock:
            self._stop()
            self._started = False

    def _stop(self) -> None:
        start = time.monotonic()
        for runner in self.schedules:
            runner.stop()
        self.schedules = []
        for poller in self.pollers:
            poller.stop_polling()
        if self.websocket is not None:
            self.websocket.stop(timeout=self.shutdown_grace_seconds)
            self.websocket = None
        if self.rest is not None:
            self.rest.stop()
            self.rest = None
        for poller in self.pollers:
            remaining = self.shutdown_grace_seconds - (time.monotonic() - start)
            poller.join(timeout=max(0.5, remaining))
        self.pollers = []
        if self.emulator is not None:
            try:
                self.emulator.stop()
            except Exception as exc:  # noqa: BLE001 - keep shutting down
                log_error("emulator_stop_error", exc)
            self.emulator = None
        for car in self.sidecars:
            car.stop()
        self._restore_env()
        self._unload()
        if self._counting_aws_calls:
            awscalls.uninstall()
            self._counting_aws_calls = False
        log("stopped", ms=round((time.monotonic() - start) * 1000, 1))

    def _unload(self) -> None:
        """Give ``sys.modules`` / ``sys.path`` back as they were before ``start``.

        Keeps a sample app imported as ``app`` from shadowing the project's
        own ``app`` module in later tests of the same process.
        """
        if self._prev_module is not None:
            name, previous = self._prev_module
            if self.module is not None and sys.modules.get(name) is self.module:
                if previous is None:
                    del sys.modules[name]
                else:
                    sys.modules[name] = previous
            self._prev_module = None
        if self._added_path and str(self.app_dir) in sys.path:
            sys.path.remove(str(self.app_dir))
            self._added_path = False

    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (URLs, handlers), e.g. for the ready banner."""
        return {
            **(self.urls.as_dict() if self.urls else {}),
            "sqsHandlers": [p.cfg.name for p in self.pollers],
        }
