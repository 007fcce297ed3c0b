"""The runtime plays API Gateway's authorizers, usage plan and SigV4 from a template (auth_app).

The app here is not the engine: the runtime learns everything from the app object and
tests/offline/auth_app/template.json, as it would for any Chalice project.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from offline import LocalRuntime, start_moto
from tests.support import wait_until

AUTH_APP = Path(__file__).parent / "auth_app"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith(("AWS_ENDPOINT_URL", "RATE_LIMIT")):
            del os.environ[key]
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="secret", AWS_DEFAULT_REGION="us-east-1")
    emulator = start_moto()
    os.environ["AWS_ENDPOINT_URL"] = emulator.endpoint
    os.environ["AUTH_STATE_FILE"] = str(tmp_path_factory.mktemp("auth") / "state.jsonl")
    runtime = LocalRuntime(AUTH_APP, template="template.json", rest_port=0, ws_port=0)
    try:
        runtime.start()
        yield runtime
    finally:
        runtime.stop()
        emulator.stop()
        os.environ.clear()
        os.environ.update(saved)


def _get(rt: LocalRuntime, path: str, **headers: str) -> requests.Response:
    assert rt.urls is not None
    return requests.get(rt.urls.rest + path, headers=headers, timeout=5)


def _signed(rt: LocalRuntime, method: str, path: str, secret: str, body: bytes = b"") -> requests.Response:
    assert rt.urls is not None
    request = AWSRequest(
        method=method, url=rt.urls.rest + path, data=body, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials("testing", secret), "execute-api", "us-east-1").add_auth(request)
    return requests.request(method, request.url, headers=dict(request.headers), data=body, timeout=5)


def test_the_identity_source_is_the_header_the_authorizer_names(rt):
    assert _get(rt, "/whoami").status_code == 401  # no header: refused before the authorizer runs
    assert _get(rt, "/whoami", Authorization="user").status_code == 401  # not the configured header
    assert _get(rt, "/whoami", **{"x-token": "nobody"}).status_code == 401  # raised Unauthorized
    assert _get(rt, "/whoami", **{"x-token": "boom"}).status_code == 500  # any other failure
    answer = _get(rt, "/whoami", **{"x-token": "user"})
    assert answer.status_code == 200 and answer.json() == {"tier": "user", "principalId": "user"}
    assert _get(rt, "/open").status_code == 200  # a route without an authorizer is open


def test_a_route_the_policy_does_not_allow_is_403(rt):
    assert _get(rt, "/admin", **{"x-token": "user"}).status_code == 403
    assert _get(rt, "/admin", **{"x-token": "admin"}).json() == {"admin": "yes"}


def test_the_usage_plan_throttles_each_usage_key(rt):
    time.sleep(3)  # earlier tests used some of the 3-request burst
    codes = [_get(rt, "/whoami", **{"x-token": "user"}).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429], codes
    assert _get(rt, "/admin", **{"x-token": "admin"}).status_code == 200  # another key, its own bucket
    time.sleep(1.1)  # RateLimit 1/s: one more token
    assert _get(rt, "/whoami", **{"x-token": "user"}).status_code == 200


def test_sigv4_routes_need_a_valid_signature(rt):
    # marked awsSigv4 in the template's DefinitionBody, or an IAMAuthorizer in app.py
    for path in ("/signed", "/iam"):
        refused = _get(rt, path)
        assert refused.status_code == 403 and refused.json()["message"] == "Missing Authentication Token"
        assert _signed(rt, "GET", path, "secret").status_code == 200
        wrong = _signed(rt, "GET", path, "not-the-secret")
        assert wrong.status_code == 403 and "signature" in wrong.json()["message"]
    assert _signed(rt, "POST", "/signed?x=1", "secret", b"{}").json() == {"signed": "yes"}


def handler_state() -> dict[str, list[Any]]:
    """What the app's WebSocket handlers saw (they run in processes of their own)."""
    seen: dict[str, list[Any]] = {"connect": [], "messages": []}
    path = Path(os.environ["AUTH_STATE_FILE"])
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        row = json.loads(line)
        seen[row["kind"]].append(row["authorizer"])
    return seen


def test_the_connect_authorizer_runs_first_and_its_context_stays_with_the_connection(rt):
    assert rt.websocket is not None
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(rt.websocket.url + "/", timeout=5)
    assert refused.value.status_code == 401
    assert handler_state()["connect"] == []  # $connect never ran for the refused one
    ws = websocket.create_connection(rt.websocket.url + "/?token=user", timeout=5)
    try:
        ws.send("hello")
        wait_until(lambda: handler_state()["messages"], 10, "the message handler")
    finally:
        ws.close()
    expected = {"tier": "ws", "principalId": "user"}
    assert handler_state()["connect"] == [expected] and handler_state()["messages"] == [expected]
