"""A small Chalice app with authorizers, a usage plan and SigV4 routes, for the runtime's gateway play."""

from __future__ import annotations

import json
import os
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


@app.authorizer(header="x-token")
def token_auth(request: AuthRequest) -> dict[str, Any]:
    if request.token == "boom":
        raise ValueError("the authorizer crashed")
    if request.token not in ("user", "admin"):
        raise Exception("Unauthorized")
    routes: list[Any] = ["*"] if request.token == "admin" else ["/whoami"]
    response = AuthResponse(routes=routes, principal_id=request.token, context={"tier": request.token}).to_dict(request)
    response["usageIdentifierKey"] = f"usage-{request.token}"
    return response


@app.lambda_function(name="ws_auth")
def ws_auth(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token") or (event.get("headers") or {}).get("x-token")
    if token != "user":
        raise Exception("Unauthorized")
    statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [event["methodArn"]]}
    return {"principalId": "user", "context": {"tier": "ws"}, "policyDocument": {"Statement": [statement]}}


@app.route("/whoami", authorizer=token_auth)
def whoami() -> dict[str, Any]:
    return dict(app.current_request.context.get("authorizer") or {})


@app.route("/admin", authorizer=token_auth)
def admin() -> dict[str, str]:
    return {"admin": "yes"}


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
