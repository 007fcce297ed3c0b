"""``LocalRuntime``: the whole local stack for one Chalice app, start to stop.

Order matters and mirrors a deployment: find or start the emulator, create
the template's resources, put the resolved environment in place, *then*
import the app (it may read the environment at import time), then serve
REST, WebSocket + ``@connections``, and start the SQS pollers.

The app is imported here only to discover its routes and handlers: every
function runs in worker processes of its own (``offline.lambdas``), with its
own environment, as Lambda runs it.
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
from .apigateway import INTEGRATION_TIMEOUT_S
from .authorizers import AuthorizerCache, ConnectAuthorizer, template_ttls
from .emulator import Emulator, free_port, resolve_emulator
from .esm import declared_visibility, template_mapping
from .gateway_responses import GatewayResponses
from .lambdas import AccountConcurrency, FunctionPool, FunctionSpec, function_environment, set_preload
from .logs import log, log_error
from .provision import caller_account, load_template, provision
from .rest import RestServer
from .schedules import ScheduleRunner
from .sidecar import Sidecar
from .sigv4 import SigV4Routes
from .sqs import SqsPoller
from .throttle import UsagePlan
from .websocket import IDLE_TIMEOUT_S, MAX_DURATION_S, WebSocketGateway

DEFAULT_TEMPLATE = "infra/resources.json"
MANAGEMENT_ENDPOINT_ENV = "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"
REST_FUNCTION = "api_handler"  # Chalice's one function for every REST route
PREWARM_ENV = "OFFLINE_PREWARM"  # "0": start every execution environment on demand


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


def _seconds(env_var: str, given: float | None, fallback: float) -> float:
    if given is not None:
        return given
    value = os.environ.get(env_var, "").strip()
    return float(value) if value else fallback


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
        integration_timeout_s: float = INTEGRATION_TIMEOUT_S,
        ws_idle_timeout_s: float | None = None,
        ws_max_duration_s: float | None = None,
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
        self.integration_timeout_s = integration_timeout_s
        self.ws_idle_timeout_s = _seconds("OFFLINE_WS_IDLE_TIMEOUT_S", ws_idle_timeout_s, IDLE_TIMEOUT_S)
        self.ws_max_duration_s = _seconds("OFFLINE_WS_MAX_DURATION_S", ws_max_duration_s, MAX_DURATION_S)
        self.functions: dict[str, FunctionPool] = {}  # each function's execution environments
        self.account = AccountConcurrency()  # the account's unreserved concurrency (OFFLINE_ACCOUNT_CONCURRENCY)
        self.authorizer_cache = AuthorizerCache()  # API Gateway's cache of REST authorizer results
        self._functions_lock = threading.Lock()
        self._explicit: set[str] = set()
        self._ws_stage = "api"
        self._template: dict[str, Any] | None = None

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
        self._account_id: str | None = None

    def _account(self) -> str:
        """The emulator's account id, asked through STS once (what EventBridge puts in its events)."""
        if self._account_id is None:
            self._account_id = caller_account(boto3.session.Session(), os.environ.get("AWS_ENDPOINT_URL"))
        return self._account_id

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
        explicit = self._explicit = set(os.environ)  # the caller's environment wins over config.json
        before = dict(os.environ)
        self.emulator = resolve_emulator(self.app_dir)
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
        # Stage-wide variables only: a function's own block goes to its workers alone.
        for key, value in project.stage_environment(self.app_dir, self.stage).items():
            if key not in explicit:
                self._setenv(key, value)

        if self.ws_port == 0:
            self.ws_port = free_port(self.host)
        self._setenv(MANAGEMENT_ENDPOINT_ENV, f"http://{self._client_host}:{self.ws_port}")

        module_name = self.app_ref.partition(":")[0]
        self._prev_module = (module_name, sys.modules.get(module_name))
        self._added_path = str(self.app_dir) not in sys.path
        imported = set(sys.modules)
        self.module, self.app = project.load_app(self.app_dir, self.app_ref)
        set_preload(project.library_modules(set(sys.modules) - imported, self.app_dir))
        self.config = project.stage_config(self.app_dir, self.stage, self.app)
        ws_stage = self._ws_stage = str(disk.get("stages", {}).get(self.stage, {}).get("websocket_api_stage", "api"))
        self._point_websocket_api(ws_stage)

        self._template = load_template(template) if template is not None else None
        loaded = self._template or {}
        responses = GatewayResponses.from_template(loaded) if template is not None else None
        usage_plan = UsagePlan.from_template(loaded, os.environ)
        self.authorizer_cache = AuthorizerCache(template_ttls(loaded))
        self.account = AccountConcurrency()
        for name in self._function_names():  # every reservation counts against the account, used or not
            reserved = self.settings(name).reserved_concurrency
            if reserved is not None:
                self.account.reserve(name, reserved)
        sigv4 = SigV4Routes.from_template(loaded, self.app)
        rest_stage = str(disk.get("stages", {}).get(self.stage, {}).get("api_gateway_stage", "api"))
        self.rest = RestServer(
            self.app,
            self.config,
            self.host,
            self.rest_port,
            responses,
            usage_plan,
            sigv4,
            function=self.function(REST_FUNCTION) if self.app.routes else None,
            stage=rest_stage,
            integration_timeout_s=self.integration_timeout_s,
            authorizer_functions=self.function,
            authorizer_cache=self.authorizer_cache,
        )
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
            connect_authorizer=ConnectAuthorizer.from_template(loaded, self.app, self.function),
            functions=self.function,
            idle_timeout_s=self.ws_idle_timeout_s,
            max_duration_s=self.ws_max_duration_s,
            integration_timeout_s=self.integration_timeout_s,
        )
        self.websocket.start()
        self._start_pollers()
        self._prewarm()
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

    # ------------------------------------------------------------ functions
    def _function_kind(self, name: str) -> tuple[str, str]:
        """(caller label for AWS call counts, Lambda handler string) of function ``name``."""
        assert self.app is not None
        module = self.app_ref.partition(":")[0]
        if name == REST_FUNCTION:
            return "api", f"{module}.{self.app_ref.partition(':')[2] or 'app'}"
        for cfg in self.app.websocket_handlers.values():
            if cfg.name == name:
                return "websocket", cfg.handler_string
        for source in self.app.event_sources:
            if source.name == name:
                role = "schedule" if isinstance(source, ScheduledEventConfig) else "lambda"
                return f"{role}:{name}", source.handler_string
        for auth in self.app.builtin_auth_handlers:
            if auth.name == name:
                return f"authorizer:{name}", auth.handler_string
        for plain in self.app.pure_lambda_functions:
            if plain.name == name:
                return f"lambda:{name}", plain.handler_string
        raise LookupError(f"no function {name!r} in the app")

    def _function_names(self) -> list[str]:
        """Every Lambda function of the app the runtime runs (REST, WebSocket routes, SQS, schedules, authorizers)."""
        assert self.app is not None
        names = [REST_FUNCTION] if self.app.routes else []
        names += [cfg.name for cfg in self.app.websocket_handlers.values()]
        names += [s.name for s in self.app.event_sources if isinstance(s, (SQSEventConfig, ScheduledEventConfig))]
        names += [auth.name for auth in self.app.builtin_auth_handlers]
        if self.websocket is not None and self.websocket.connect_authorizer is not None:
            names.append(self.websocket.connect_authorizer.function.name)
        return list(dict.fromkeys(names))

    def function(self, name: str) -> FunctionPool:
        """The execution environments of function ``name`` (created on first use)."""
        with self._functions_lock:
            pool = self.functions.get(name)
            if pool is not None:
                return pool
            settings = self.settings(name)
            caller, handler = self._function_kind(name)
            base = dict(os.environ)
            base["OFFLINE_CALLER"] = caller
            base["OFFLINE_WEBSOCKET_ENDPOINT"] = f"http://{self._client_host}:{self.ws_port}/{self._ws_stage}"
            env = function_environment(
                base,
                project.function_environment(self.app_dir, self.stage, name),
                self._explicit,
                settings.deployed_name,
                settings.memory_mb,
                self.app_dir,
                handler,
            )
            spec = FunctionSpec(
                name=name,
                deployed_name=settings.deployed_name,
                timeout_s=float(settings.timeout_s),
                memory_mb=settings.memory_mb,
                reserved_concurrency=settings.reserved_concurrency,
                env=env,
                region=env["AWS_REGION"],
            )
            pool = self.functions[name] = FunctionPool(spec, self.app_dir, self.app_ref, account=self.account)
            return pool

    def _prewarm(self) -> None:
        """Start one environment per function (as many as its mapping runs for an SQS one), in the background."""
        value = os.environ.get(PREWARM_ENV, "").strip()
        if value in ("0", "false", "no"):
            return
        assert self.app is not None
        wanted = {name: 1 for name in self._function_names()}
        for poller in self.pollers:  # as many as the mapping runs at once
            pool = self.function(poller.cfg.name)
            wanted[poller.cfg.name] = min(poller.mapping.concurrency, pool.max_concurrency)
        pools = [(self.function(name), count) for name, count in wanted.items()]

        def warm() -> None:  # one at a time: a burst of forks would slow the first requests down
            for pool, _ in pools:
                pool.prewarm(1, background=False)
            for pool, count in pools:
                pool.prewarm(count, background=False)

        threading.Thread(target=warm, name="offline-prewarm", daemon=True).start()

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
            declared = template_mapping(self._template, source.name)
            poller = SqsPoller(
                source,
                self.function(source.name),
                self.settings(source.name),
                session=session,
                poll_wait_s=self.poll_wait_seconds,
                report_batch_item_failures=declared.report_batch_item_failures,
                maximum_concurrency=declared.maximum_concurrency,
            )
            poller.validate(declared_visibility(self._template, source.queue))  # as CreateEventSourceMapping
            self.pollers.append(poller)
        for poller in self.pollers:
            poller.start()

    def _start_schedule(self, source: ScheduledEventConfig) -> None:
        assert self.app is not None and self.module is not None
        handler = project.entry_point(self.app, self.module, source.name, source.handler_string)
        if handler is None:
            log("schedule_handler_missing", level="error", function=source.name)
            return
        region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        runner = ScheduleRunner(source, self.function(source.name), self.settings(source.name), region, self._account)
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
        with self._functions_lock:
            pools, self.functions = list(self.functions.values()), {}
        for pool in pools:
            pool.stop()
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
