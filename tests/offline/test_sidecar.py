"""Sidecars: a service started before the app whose ready line sets the handlers' environment."""

from __future__ import annotations

import os
import shlex
import sys

import pytest

from offline.sidecar import Sidecar, SidecarError

READY = (
    "import json, time; print('starting'); "
    "print(json.dumps({'event': 'ready', 'name': 'Thing', 'url': 'http://x', 'env': {'THING_URL': 'http://x'}}), "
    "flush=True); time.sleep(60)"
)


def _cmd(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def test_ready_line_gives_env_and_stop_ends_it():
    car = Sidecar(_cmd(READY))
    assert car.start() is True
    assert car.env == {"THING_URL": "http://x"} and car.name == "Thing"
    proc = car.process
    assert proc is not None and proc.poll() is None
    car.stop()
    assert proc.poll() is not None


def test_optional_sidecar_that_gives_up_is_skipped():
    car = Sidecar(_cmd("import sys; sys.exit(3)"), optional=True)
    assert car.start() is False and car.env == {}


def test_required_sidecar_that_gives_up_fails_the_start():
    with pytest.raises(SidecarError):
        Sidecar(_cmd("import sys; sys.exit(3)")).start()


def test_runtime_sets_sidecar_env_for_the_app(monkeypatch):
    from offline.emulator import start_moto
    from offline.runtime import LocalRuntime

    sample = os.path.join(os.path.dirname(__file__), "sample_app")
    monkeypatch.delenv("THING_URL", raising=False)
    for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    emulator = start_moto()
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint)
    runtime = LocalRuntime(sample, template="template.json", rest_port=0, ws_port=0, sidecars=(Sidecar(_cmd(READY)),))
    try:
        runtime.start()
        assert os.environ["THING_URL"] == "http://x"
        car = runtime.sidecars[0]
        assert car.process is not None
    finally:
        runtime.stop()
        emulator.stop()
    assert "THING_URL" not in os.environ
    assert car.process is None
