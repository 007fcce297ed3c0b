"""Load a Chalice project the way ``chalice local`` does, minus its env rules.

Chalice's own loader pushes ``config.json`` environment variables over
``os.environ``; this runtime needs the opposite (the runtime's explicit
environment wins, so tests can override a value), and it needs the app's
module object to find the wrapped handlers, so the loading is done here
with Chalice's :class:`~chalice.config.Config` for the stage merging rules.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from chalice.app import Chalice
from chalice.config import Config
from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT
from chalice.local import LambdaContext

from .logs import log

DEFAULT_API_GATEWAY_STAGE = "api"


def read_config_file(app_dir: str | Path) -> dict[str, Any]:
    """``.chalice/config.json`` of the project, or ``{}`` when absent."""
    path = Path(app_dir) / ".chalice" / "config.json"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return data if isinstance(data, dict) else {}


def stage_config(app_dir: str | Path, stage: str, app_obj: Chalice | None = None) -> Config:
    """A Chalice ``Config`` for ``stage``, built as ``chalice local`` builds it."""
    app_dir = str(Path(app_dir).resolve())
    disk = read_config_file(app_dir)
    user: dict[str, Any] = {"project_dir": app_dir}
    if app_obj is not None:
        user["chalice_app"] = app_obj
    return Config(
        chalice_stage=stage,
        user_provided_params=user,
        config_from_disk=disk,
        default_params={
            "project_dir": app_dir,
            "api_gateway_stage": DEFAULT_API_GATEWAY_STAGE,
            "api_gateway_endpoint_type": "EDGE",
            "autogen_policy": True,
        },
    )


def stage_environment(app_dir: str | Path, stage: str) -> dict[str, str]:
    """Environment variables ``config.json`` gives every function of the stage (top and stage level)."""
    config = stage_config(app_dir, stage)
    return {k: str(v) for k, v in config.environment_variables.items()}


def function_environment(app_dir: str | Path, stage: str, name: str) -> dict[str, str]:
    """Environment variables ``config.json`` gives function ``name``: the stage's and its own block."""
    config = stage_config(app_dir, stage)
    return {k: str(v) for k, v in config.scope(stage, name).environment_variables.items()}


def config_environment(app_dir: str | Path, stage: str) -> dict[str, str]:
    """Environment variables ``config.json`` gives the stage's functions, all merged.

    Top-level, stage-level and every ``lambda_functions.<name>`` block are
    merged (a conflict between two functions is logged). The runtime itself
    no longer uses this: each function's workers get ``function_environment``.
    """
    config = stage_config(app_dir, stage)
    env = {k: str(v) for k, v in config.environment_variables.items()}
    disk = read_config_file(app_dir)
    names = set(disk.get("lambda_functions", {}) or {})
    names |= set(disk.get("stages", {}).get(stage, {}).get("lambda_functions", {}) or {})
    for name in sorted(names):
        for key, value in config.scope(stage, name).environment_variables.items():
            if key in env and env[key] != str(value):
                log("config_env_conflict", variable=key, function=name)
            env[key] = str(value)
    return env


def _getter(config: Config, attr: str) -> Any:
    try:
        return getattr(config, attr)
    except (KeyError, AttributeError):
        return None


@dataclass
class FunctionSettings:
    """What ``config.json`` says about one Lambda function of the app."""

    name: str
    deployed_name: str
    timeout_s: int
    memory_mb: int
    reserved_concurrency: int | None

    def context(self) -> LambdaContext:
        """A fresh Lambda context object, as Chalice local builds them."""
        return LambdaContext(
            function_name=self.deployed_name,
            memory_size=self.memory_mb,
            max_runtime_ms=self.timeout_s * 1000,
        )


def function_settings(config: Config, stage: str, name: str) -> FunctionSettings:
    """Timeout, memory and reserved concurrency of function ``name``."""
    scoped = config.scope(stage, name)
    app_name = _getter(scoped, "app_name") or "app"
    reserved = _getter(scoped, "reserved_concurrency")
    return FunctionSettings(
        name=name,
        deployed_name=f"{app_name}-{stage}-{name}",
        timeout_s=int(_getter(scoped, "lambda_timeout") or DEFAULT_LAMBDA_TIMEOUT),
        memory_mb=int(_getter(scoped, "lambda_memory_size") or DEFAULT_LAMBDA_MEMORY_SIZE),
        reserved_concurrency=int(reserved) if reserved is not None else None,
    )


def load_app(app_dir: str | Path, app_ref: str = "app:app") -> tuple[ModuleType, Chalice]:
    """Import ``module:attribute`` from ``app_dir`` and return both.

    The module is needed as well as the app: Chalice's decorators leave the
    Lambda entry points (with middleware and the websocket/SQS event
    wrappers) as module attributes named by each config's ``handler_string``.
    A module of the same name imported from another directory is dropped from
    ``sys.modules`` first, so two projects can be run one after the other.
    """
    module_name, _, attr = app_ref.partition(":")
    attr = attr or "app"
    app_dir = str(Path(app_dir).resolve())
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    existing = sys.modules.get(module_name)
    existing_file = getattr(existing, "__file__", None) or ""
    if existing is not None and not os.path.abspath(existing_file).startswith(app_dir):
        del sys.modules[module_name]
    module = importlib.import_module(module_name)
    app_obj = getattr(module, attr)
    if not isinstance(app_obj, Chalice):
        raise TypeError(f"{app_ref} is {type(app_obj).__name__}, not a Chalice app")
    return module, app_obj


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple({str(Path(paths[k]).resolve()) + os.sep for k in ("purelib", "platlib", "stdlib")})


def _is_own(module: ModuleType | None, root: str, libraries: tuple[str, ...]) -> bool:
    """A module of the project's own code (a virtualenv inside the project is still libraries)."""
    file = getattr(module, "__file__", None)
    if not file:
        return False
    path = os.path.abspath(file)
    return path.startswith(root) and not path.startswith(libraries)


def library_modules(names: set[str], app_dir: str | Path) -> list[str]:
    """The modules among ``names`` that are libraries, not the project's own code."""
    root = str(Path(app_dir).resolve()) + os.sep
    libraries = _library_roots()
    found: list[str] = []
    for name in sorted(names):
        module = sys.modules.get(name)
        if not getattr(module, "__file__", None) or name.startswith("_") or name == "__main__":
            continue
        if not _is_own(module, root, libraries):
            found.append(name)
    return found


def own_modules(names: set[str], app_dir: str | Path) -> list[str]:
    """The modules among ``names`` that are the project's own code (its files, not its virtualenv's)."""
    root = str(Path(app_dir).resolve()) + os.sep
    libraries = _library_roots()
    return sorted(name for name in names if name != "__main__" and _is_own(sys.modules.get(name), root, libraries))


def entry_point(app_obj: Chalice, module: ModuleType | None, name: str, handler_string: str) -> Any:
    """The callable Lambda would invoke for the function ``name``.

    Chalice keeps every wrapped entry point (middleware, websocket/SQS event
    classes) in ``app.handler_map`` by function name, which also covers
    blueprints, whose ``handler_string`` names another module. The module
    attribute named by ``handler_string`` is the fallback.
    """
    handler = app_obj.handler_map.get(name)
    if handler is None and module is not None:
        handler = getattr(module, handler_string.rsplit(".", 1)[-1], None)
    return handler
