"""A small Chalice app with authorizers, a usage plan and SigV4 routes, for the runtime's gateway play."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from chalice import Chalice, IAMAuthorizer
from chalice.app import AuthRequest, AuthResponse, WebsocketEvent

app = Chalice(app_name="offline-auth")
app.experimental_feature_flags.update(["WEBSOCKETS"])


def record(kind: str, authorizer: Any) -> None:
    """What a handler saw, as one JSON line in $AUTH_STATE_FILE (handlers run in their own processes)."""
    path = os.environ.get("AUTH_STATE_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"kind": kind, "authorizer": authorizer}) + "\n")


def invoked(authorizer: str, token: Any) -> dict[str, Any]:
    """Record one run of an authorizer (its own Lambda function); what to put in its context."""
    seen = {"fn": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"), "pid": os.getpid()}
    record("authorizer", {"authorizer": authorizer, "token": token, **seen})
    return seen


def revoked(token: str) -> bool:
    path = os.environ.get("AUTH_REVOKED_FILE")
    return bool(path) and os.path.exists(path) and token in open(path, encoding="utf-8").read().split()


@app.authorizer(header="x-token")
def token_auth(request: AuthRequest) -> dict[str, Any]:
    """No ttl_seconds: API Gateway's default TTL of 300 s."""
    seen = invoked("token_auth", request.token)
    if request.token == "boom":
        raise ValueError("the authorizer crashed")
    if request.token not in ("user", "admin", "cached"):
        raise Exception("Unauthorized")
    routes: list[Any] = ["*"] if request.token == "admin" else ["/whoami"]
    context = {"tier": request.token, **({"fn": seen["fn"]} if request.token == "cached" else {})}
    response = AuthResponse(routes=routes, principal_id=request.token, context=context).to_dict(request)
    response["usageIdentifierKey"] = f"usage-{request.token}"
    return response


@app.authorizer(header="x-token", ttl_seconds=2)
def short_auth(request: AuthRequest) -> dict[str, Any]:
    """A 2 s TTL; a token listed in $AUTH_REVOKED_FILE is refused; `slow` outlives the 1 s timeout."""
    invoked("short_auth", request.token)
    if request.token == "slow":
        time.sleep(3)
    if revoked(request.token):
        raise Exception("Unauthorized")
    return AuthResponse(routes=["*"], principal_id=request.token).to_dict(request)


@app.authorizer(header="x-token", ttl_seconds=300)
def template_auth(request: AuthRequest) -> dict[str, Any]:
    """300 s here, but the template's authorizerResultTtlInSeconds (0: no cache) wins."""
    invoked("template_auth", request.token)
    return AuthResponse(routes=["*"], principal_id=request.token).to_dict(request)


@app.lambda_function(name="ws_auth")
def ws_auth(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token") or (event.get("headers") or {}).get("x-token")
    seen = invoked("ws_auth", token)
    if token not in ("user", "whoami"):
        raise Exception("Unauthorized")
    statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [event["methodArn"]]}
    extra = {"fn": seen["fn"]} if token == "whoami" else {}
    return {"principalId": "user", "context": {"tier": "ws", **extra}, "policyDocument": {"Statement": [statement]}}


@app.route("/whoami", authorizer=token_auth)
def whoami() -> dict[str, Any]:
    return dict(app.current_request.context.get("authorizer") or {})


@app.route("/admin", authorizer=token_auth)
def admin() -> dict[str, str]:
    return {"admin": "yes"}


@app.route("/short", authorizer=short_auth)
def short() -> dict[str, Any]:
    return dict(app.current_request.context.get("authorizer") or {})


@app.route("/uncached", authorizer=template_auth)
def uncached() -> dict[str, str]:
    return {"uncached": "yes"}


@app.route("/signed", methods=["GET", "POST"])
def signed() -> dict[str, str]:
    return {"signed": "yes"}


@app.route("/iam", authorizer=IAMAuthorizer())
def iam() -> dict[str, str]:
    return {"iam": "yes"}


@app.route("/open")
def open_route() -> dict[str, str]:
    return {"open": "yes"}


@app.on_ws_connect()
def connect(event: WebsocketEvent) -> None:
    record("connect", event.to_dict()["requestContext"].get("authorizer"))


@app.on_ws_message()
def message(event: WebsocketEvent) -> None:
    record("messages", event.to_dict()["requestContext"].get("authorizer"))
