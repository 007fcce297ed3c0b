"""The published OpenAPI document names exactly the app's routes, with the right security."""

from __future__ import annotations

import importlib.util
import sys

from chalicelib.openapi import load
from tests.support import ROOT

PUBLIC = {("/", "get"), ("/console/{name}", "get"), ("/health", "get"), ("/openapi.json", "get")}


def _app():
    name = "_solana_exec_app_under_openapi_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].app


def _documented() -> dict[tuple[str, str], dict]:
    doc = load()
    return {(path, method): op for path, ops in doc["paths"].items() for method, op in ops.items()}


def test_every_route_is_documented_and_nothing_else():
    routes = {(path, method.lower()) for path, methods in _app().routes.items() for method in methods}
    assert set(_documented()) == routes


def test_security_matches_the_authorizer_on_each_route():
    doc = load()
    assert doc["components"]["securitySchemes"]["apiKey"] == {
        **doc["components"]["securitySchemes"]["apiKey"],
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }
    for (path, method), op in _documented().items():
        entry = _app().routes[path][method.upper()]
        security = op.get("security", doc["security"])
        if (path, method) in PUBLIC:
            assert security == [] and entry.authorizer is None, (path, method)
        else:
            assert security == [{"apiKey": []}] and entry.authorizer is not None, (path, method)
            assert "401" in op["responses"] and "429" in op["responses"], (path, method)


def test_path_parameters_match_the_routes():
    for (path, _), op in _documented().items():
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == {part[1:-1] for part in path.split("/") if part.startswith("{")}, path
