"""The edge of access control: API Gateway authorizers, and the client an event carries.

API Gateway calls the authorizers before any route runs (the local runtime plays the same
calls from the same template): the REST one with the `x-api-key` header as its token, the
WebSocket one on `$connect` with the whole request. Each answers with an IAM policy, the
client as principal and context, and (REST) the usage plan key that sets the client's rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalice.app import AuthRequest, AuthResponse

from chalicelib.bootstrap import engine
from chalicelib.clients import Client, Forbidden, Unauthorized, client_from_context, hash_key, key_from_request
from chalicelib.logs import logger

__all__ = ["CLIENT_ROUTES", "authorize_rest", "authorize_ws", "connection_client", "request_client", "require_admin"]

# What every client may call; an admin key may call every route ("*"): /api/dlq/*, /api/stats, /test/*.
CLIENT_ROUTES = ["/order", "/order/*", "/orders", "/tokens"]


def _find(key: str | None) -> Client:
    if not key or len(key) > 256:
        raise Unauthorized("a valid x-api-key is required")
    client = engine().clients.find(hash_key(key))
    if client is None:
        raise Unauthorized("a valid x-api-key is required")
    return client


def authorize_rest(auth_request: AuthRequest) -> dict[str, Any]:
    """The REST TOKEN authorizer: a policy for the routes this key may call (cached by API Gateway)."""
    try:
        client = _find(auth_request.token)
    except Unauthorized:
        logger.info("key refused", extra={"methodArn": auth_request.method_arn})
        # API Gateway answers 401 (UNAUTHORIZED) when an authorizer fails with exactly this message.
        raise Exception("Unauthorized") from None
    routes: list[Any] = ["*"] if client.admin else list(CLIENT_ROUTES)
    response = AuthResponse(routes=routes, principal_id=client.name, context=client.context()).to_dict(auth_request)
    response["usageIdentifierKey"] = client.usage_key or client.name
    return response


def authorize_ws(event: Mapping[str, Any]) -> dict[str, Any]:
    """The WebSocket $connect REQUEST authorizer: `?apiKey=` or the `x-api-key` header."""
    try:
        client = _find(key_from_request(event.get("headers"), event.get("queryStringParameters")))
    except Unauthorized:
        logger.info("key refused", extra={"methodArn": event.get("methodArn")})
        raise Exception("Unauthorized") from None
    return {
        "principalId": client.name,
        "context": client.context(),
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [event.get("methodArn")]}],
        },
    }


def connection_client(event: Mapping[str, Any]) -> str:
    """A $connect's client: the authorizer's; where a stack has none, the key the connect carries."""
    client = client_from_context(event.get("requestContext"))
    if client is not None:
        return client.name
    return _find(key_from_request(event.get("headers"), event.get("queryStringParameters"))).name


def request_client(request_context: Mapping[str, Any] | None) -> Client:
    """The client API Gateway's authorizer put on the event; none means the route was not authorized."""
    client = client_from_context(request_context)
    if client is None:
        raise Unauthorized("a valid x-api-key is required")
    return client


def require_admin(request_context: Mapping[str, Any] | None) -> Client:
    """Admin routes check again in the handler: a gateway misconfiguration must not open them."""
    client = request_client(request_context)
    if not client.admin:
        raise Forbidden("this route needs an admin key")
    return client
