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
    scratch = tmp_path_factory.mktemp("auth")
    os.environ["AUTH_STATE_FILE"] = str(scratch / "state.jsonl")
    os.environ["AUTH_REVOKED_FILE"] = str(scratch / "revoked.txt")
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
    return requests.get(rt.urls.rest + path, headers=headers, timeout=20)


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
    """What the app's handlers and authorizers saw (they run in processes of their own)."""
    seen: dict[str, list[Any]] = {"connect": [], "messages": [], "authorizer": []}
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


def runs(authorizer: str, token: str) -> list[dict[str, Any]]:
    """The invocations of one authorizer function for one token."""
    return [r for r in handler_state()["authorizer"] if r["authorizer"] == authorizer and r["token"] == token]


# ------------------------------------------------ authorizers as Lambda functions, and API Gateway's cache
def test_each_authorizer_runs_in_a_lambda_function_of_its_own(rt):
    """A Lambda authorizer is a Lambda function: its own environment, not the gateway's process.

    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html
    """
    answer = _get(rt, "/whoami", **{"x-token": "cached"})
    assert answer.status_code == 200
    # THEN the REST authorizer ran as the function Chalice deploys for it, in another process
    assert answer.json()["fn"] == "offline-auth-dev-token_auth"
    (run,) = runs("token_auth", "cached")
    assert run["fn"] == "offline-auth-dev-token_auth" and run["pid"] != os.getpid()
    assert run["pid"] in rt.functions["token_auth"].pids
    # AND so did the WebSocket $connect authorizer (an @app.lambda_function)
    assert rt.websocket is not None
    for _ in range(2):
        websocket.create_connection(rt.websocket.url + "/?token=whoami", timeout=5).close()
    connects = runs("ws_auth", "whoami")
    assert [r["fn"] for r in connects] == ["offline-auth-dev-ws_auth"] * 2  # WebSocket APIs cache nothing
    assert connects[0]["pid"] in rt.functions["ws_auth"].pids


def test_a_valid_policy_is_cached_for_the_default_ttl_and_applies_to_every_method(rt):
    """With no TTL set, API Gateway caches the policy 300 s per token, and evaluates the cached
    policy for every method the token calls: a method it does not allow is 403 without a call.

    https://docs.aws.amazon.com/apigateway/latest/developerguide/configure-api-gateway-lambda-authorization.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-apigateway-authorizer.html
    """
    before = len(runs("token_auth", "cached"))
    for _ in range(3):
        assert _get(rt, "/whoami", **{"x-token": "cached"}).status_code in (200, 429)
    assert _get(rt, "/admin", **{"x-token": "cached"}).status_code == 403  # the cached policy names /whoami only
    assert len(runs("token_auth", "cached")) == before  # answered from the cache, without invoking it
    # A failure is not cached: the authorizer runs for each such request
    failed = len(runs("token_auth", "boom"))
    assert [_get(rt, "/whoami", **{"x-token": "boom"}).status_code for _ in range(2)] == [500, 500]
    assert len(runs("token_auth", "boom")) == failed + 2


def test_a_revoked_token_works_until_its_cached_policy_expires(rt):
    """The cache's TTL is the authorizer's (2 s here): a token the authorizer would now refuse
    keeps its cached policy until then; an Unauthorized answer is not cached.

    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html
    """
    revoked = Path(os.environ["AUTH_REVOKED_FILE"])
    assert _get(rt, "/short", **{"x-token": "temp"}).json() == {"principalId": "temp"}
    revoked.write_text("temp\n")
    try:
        assert _get(rt, "/short", **{"x-token": "temp"}).status_code == 200  # still cached
        assert len(runs("short_auth", "temp")) == 1
        time.sleep(2.2)
        assert _get(rt, "/short", **{"x-token": "temp"}).status_code == 401  # expired: asked again, refused
        assert len(runs("short_auth", "temp")) == 2
    finally:
        revoked.write_text("")
    assert _get(rt, "/short", **{"x-token": "temp"}).status_code == 200  # the 401 was not cached


def test_the_templates_ttl_wins_and_zero_turns_the_cache_off(rt):
    """``authorizerResultTtlInSeconds`` 0 in the template: the authorizer runs for every request.

    https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions-authorizer.html
    """
    for _ in range(3):
        assert _get(rt, "/uncached", **{"x-token": "anyone"}).status_code == 200
    assert len(runs("template_auth", "anyone")) == 3


def test_an_authorizer_that_times_out_is_500(rt):
    """The authorizer's own function timeout (1 s in config.json) applies; API Gateway answers 500
    (AUTHORIZER_CONFIGURATION_ERROR / AUTHORIZER_FAILURE).

    https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html
    """
    started = time.monotonic()
    answer = _get(rt, "/short", **{"x-token": "slow"})
    assert answer.status_code == 500 and answer.headers["x-amzn-ErrorType"] == "AuthorizerConfigurationException"
    assert time.monotonic() - started < 2.5  # stopped at the authorizer's 1 s, not its 3 s sleep
    assert rt.functions["short_auth"].timeouts == 1
