"""API Gateway REST's front door in front of the ``api_handler`` function.

``chalice.local`` matches routes, runs authorizers and builds the proxy
event; :class:`LambdaProxyApp` takes the place of the app object there, so
what reaches the function is what API Gateway would send, and what comes
back is what API Gateway would answer:

* a method not defined on a known path is refused before any function runs
  with 403 ``Missing Authentication Token`` (Chalice's app would say 405),
  https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html;
* the proxy event carries the whole ``requestContext`` (account, API id,
  stage, request id and time, protocol, identity),
  https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html;
* the function runs in its own worker processes (:mod:`offline.lambdas`);
  API Gateway stops waiting after the 29 s integration timeout and answers
  504 ``Endpoint request timed out``; a function error, a timeout, a
  response over Lambda's 6 MB or one that is not a proxy response answers
  502 ``Internal server error``; an invocation Lambda refuses (throttled, or a
  request over its 6 MB payload, which API Gateway's 10 MB lets through) 500,
  https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html;
* a request body over 10 MB is refused with 413 ``Request Too Long``,
  https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html.

Errors API Gateway generates itself go through the template's gateway
responses, like the 403s Chalice's gateway raises.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from chalice.app import Chalice
from chalice.local import LocalGatewayException

from .lambdas import ACCOUNT_ID, Invoker, Outcome
from .logs import log

__all__ = [
    "INTEGRATION_TIMEOUT_S",
    "MAX_REQUEST_BYTES",
    "GatewayError",
    "LambdaProxyApp",
    "request_too_large",
]

INTEGRATION_TIMEOUT_S = 29.0
MAX_REQUEST_BYTES = 10 * 1024 * 1024
API_ID = "local"


class GatewayError(LocalGatewayException):
    """An error API Gateway answers itself, with its status and body."""

    def __init__(self, code: int, message: str, error_type: str = "") -> None:
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if error_type:
            headers["x-amzn-ErrorType"] = error_type
        super().__init__(headers, (f'{{"message": "{message}"}}').encode())
        self.CODE = code


def request_too_large() -> GatewayError:
    return GatewayError(413, "Request Too Long")


def _request_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


class LambdaProxyApp:
    """Stands in for the app object in ``chalice.local.LocalGateway``: routes from the app, calls to the function."""

    def __init__(
        self,
        app_obj: Chalice,
        function: Invoker,
        stage: str = "api",
        integration_timeout_s: float = INTEGRATION_TIMEOUT_S,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._app = app_obj
        self.function = function
        self.stage = stage
        self.integration_timeout_s = integration_timeout_s
        self.domain = f"{host}:{port}"

    def __getattr__(self, name: str) -> Any:  # routes, api.binary_types, ... come from the app
        return getattr(self._app, name)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        ctx = event["requestContext"]
        methods = self._app.routes.get(ctx["resourcePath"], {})
        if ctx["httpMethod"] not in methods:
            raise GatewayError(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        self._complete(event)
        outcome = self.function.invoke(event, wait_s=self.integration_timeout_s)
        return self._response(outcome, event)

    def _complete(self, event: dict[str, Any]) -> None:
        """Fill in the proxy event as API Gateway sends it (Chalice builds a subset)."""
        now = time.time()
        ctx = event["requestContext"]
        headers = event.get("headers") or {}
        query = event.get("multiValueQueryStringParameters")
        request_id = str(uuid.uuid4())
        identity = {
            "cognitoIdentityPoolId": None,
            "accountId": None,
            "cognitoIdentityId": None,
            "caller": None,
            "accessKey": None,
            "sourceIp": ctx.get("identity", {}).get("sourceIp", "127.0.0.1"),
            "principalOrgId": None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": None,
            "userAgent": headers.get("user-agent"),
            "user": None,
        }
        ctx.update(
            {
                "accountId": ACCOUNT_ID,
                "apiId": API_ID,
                "domainName": self.domain,
                "domainPrefix": self.domain.split(".", 1)[0],
                "extendedRequestId": request_id,
                "identity": {**identity, **ctx.get("identity", {})},
                "path": f"/{self.stage}{ctx['path']}",
                "protocol": "HTTP/1.1",
                "requestId": request_id,
                "requestTime": _request_time(now),
                "requestTimeEpoch": int(now * 1000),
                "resourceId": uuid.uuid5(uuid.NAMESPACE_URL, ctx["resourcePath"]).hex[:6],
                "stage": self.stage,
            }
        )
        event.update(
            {
                "resource": ctx["resourcePath"],
                "path": ctx["path"].removeprefix(f"/{self.stage}"),
                "httpMethod": ctx["httpMethod"],
                "multiValueHeaders": {k: [v] for k, v in headers.items()},
                "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
                "isBase64Encoded": bool(event.get("isBase64Encoded", False)),
            }
        )
        if isinstance(event.get("body"), bytes):
            event["body"] = event["body"].decode("utf-8", "replace")

    def _response(self, outcome: Outcome, event: dict[str, Any]) -> dict[str, Any]:
        ctx = event["requestContext"]
        if outcome.status == "gave_up":
            log("http_integration_timeout", level="warning", path=ctx["path"], requestId=ctx["requestId"])
            raise GatewayError(504, "Endpoint request timed out")
        if not outcome.ok:
            # Lambda refused the invocation (throttled, a request over 6 MB): 500; the function failed: 502.
            log(
                "http_invoke_rejected" if outcome.rejected else "http_function_error",
                level="error",
                path=ctx["path"],
                requestId=ctx["requestId"],
                errorType=outcome.error_type,
                error=outcome.error_message,
                traceback="".join(outcome.trace),
            )
            raise GatewayError(500 if outcome.rejected else 502, "Internal server error")
        result = outcome.result
        if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
            log("http_malformed_proxy_response", level="error", path=ctx["path"], requestId=ctx["requestId"])
            raise GatewayError(502, "Internal server error")
        return {
            "statusCode": result["statusCode"],
            "headers": dict(result.get("headers") or {}),
            "multiValueHeaders": dict(result.get("multiValueHeaders") or {}),
            "body": result.get("body"),
            "isBase64Encoded": bool(result.get("isBase64Encoded", False)),
        }
