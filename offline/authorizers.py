"""Lambda authorizers and usage plans, played locally as API Gateway plays them.

REST: a route with a Chalice ``@app.authorizer`` is a TOKEN authorizer whose identity
source is the header the authorizer names (``chalice.local`` always reads
``Authorization``; API Gateway reads the configured header). No header: 401 without
calling the authorizer. The authorizer raising ``Unauthorized``: 401; any other error:
500; a policy that does not allow the method ARN: 403. Its ``usageIdentifierKey`` is the
API key of the template's usage plan: over the plan's rate, 429 before the route runs.

WebSocket: an ``AWS::ApiGatewayV2::Authorizer`` (``REQUEST``) on the ``$connect`` route
of the template's WebSocket API is called before ``$connect`` with the request's headers
and query; its principal and context are on every later event of the connection
(``requestContext.authorizer``), as API Gateway does.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from chalice.app import Chalice, ChaliceAuthorizer
from chalice.local import (
    ARNMatcher,
    ForbiddenError,
    InvalidAuthorizerError,
    LocalGateway,
    LocalGatewayAuthorizer,
    LocalGatewayException,
    NotAuthorizedError,
)
from chalice.utils import to_cfn_resource_name

from .logs import log_error
from .sigv4 import SigV4Routes, signature_error
from .throttle import UsagePlan

__all__ = ["ConnectAuthorizer", "TemplateAuthorizer", "ThrottledError", "allows", "install"]


class ThrottledError(LocalGatewayException):
    CODE = 429


def _unauthorized(request_id: str) -> NotAuthorizedError:
    return NotAuthorizedError(
        {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": "UnauthorizedException"}, b'{"message":"Unauthorized"}'
    )


class TemplateAuthorizer(LocalGatewayAuthorizer):
    """Chalice's local authorizer with API Gateway's identity source, errors and usage plan."""

    def __init__(self, app_object: Chalice, usage_plan: UsagePlan | None, sigv4: SigV4Routes | None = None) -> None:
        super().__init__(app_object)
        self.usage_plan = usage_plan
        self.sigv4 = sigv4

    def authorize(self, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
        route = self._route_for_event(lambda_event)
        context = lambda_event["requestContext"]
        if self.sigv4 is not None and (context.get("resourcePath"), context.get("httpMethod")) in self.sigv4:
            self._check_signature(raw_path, lambda_event, lambda_context.aws_request_id)
            return lambda_event, lambda_context
        authorizer = route.authorizer if route is not None else None
        if not isinstance(authorizer, ChaliceAuthorizer):
            return super().authorize(raw_path, lambda_event, lambda_context)
        request_id = lambda_context.aws_request_id
        header = (authorizer.config.header if authorizer.config else None) or "Authorization"
        token = (lambda_event.get("headers") or {}).get(header.lower())
        if not token:
            raise _unauthorized(request_id)
        arn = self._arn_builder.build_arn(lambda_event["requestContext"]["httpMethod"], raw_path)
        try:
            result = authorizer({"type": "TOKEN", "authorizationToken": token, "methodArn": arn}, lambda_context)
        except Exception as exc:  # noqa: BLE001 - API Gateway's mapping of an authorizer's failure
            if str(exc) == "Unauthorized":
                raise _unauthorized(request_id) from None
            log_error("authorizer_error", exc, authorizer=authorizer.name)
            raise InvalidAuthorizerError(
                {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": "AuthorizerConfigurationException"},
                b'{"message":null}',
            ) from None
        if not isinstance(result, dict) or "principalId" not in result:
            raise InvalidAuthorizerError(
                {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": "AuthorizerConfigurationException"},
                b'{"message":null}',
            )
        if not allows(result.get("policyDocument"), arn):
            raise ForbiddenError(
                {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": "AccessDeniedException"},
                b'{"Message": "User is not authorized to access this resource"}',
            )
        usage_key = result.get("usageIdentifierKey")
        if self.usage_plan is not None and usage_key and not self.usage_plan.allow(str(usage_key)):
            raise ThrottledError(
                {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": "TooManyRequestsException"},
                b'{"message":"Too Many Requests"}',
            )
        principal = {str(k): v for k, v in (result.get("context") or {}).items()}
        principal["principalId"] = result["principalId"]
        lambda_event["requestContext"]["authorizer"] = principal
        return lambda_event, lambda_context

    @staticmethod
    def _check_signature(raw_path: str, lambda_event: Any, request_id: str) -> None:
        headers = lambda_event.get("headers") or {}
        body = lambda_event.get("body")
        if lambda_event.get("isBase64Encoded") and body:
            payload: bytes | None = base64.b64decode(body)
        else:
            payload = body.encode() if isinstance(body, str) else body
        url = f"http://{headers.get('host', 'localhost')}{raw_path}"
        error = signature_error(context_method(lambda_event), url, headers, payload)
        if error is None:
            return
        kind = (
            "MissingAuthenticationTokenException"
            if error == "Missing Authentication Token"
            else "InvalidSignatureException"
        )
        raise ForbiddenError(
            {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": kind}, json.dumps({"message": error}).encode()
        )


def context_method(lambda_event: Any) -> str:
    return str(lambda_event["requestContext"]["httpMethod"])


def allows(policy: Any, arn: str) -> bool:
    """An IAM policy allows execute-api:Invoke on `arn` (an explicit Deny wins)."""
    matcher = ARNMatcher(arn)
    allowed = False
    for statement in (policy or {}).get("Statement", []) if isinstance(policy, dict) else []:
        actions = _as_list(statement.get("Action"))
        if not any(a in ("execute-api:Invoke", "execute-api:*", "*") for a in actions):
            continue
        if matcher.does_any_resource_match(_as_list(statement.get("Resource"))):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def install(gateway: LocalGateway, usage_plan: UsagePlan | None, sigv4: SigV4Routes | None = None) -> None:
    """Put the template-faithful authorizer into one request's ``LocalGateway``."""
    gateway._authorizer = TemplateAuthorizer(gateway._app_object, usage_plan, sigv4)


class ConnectAuthorizer:
    """The WebSocket API's $connect REQUEST authorizer, from the template."""

    def __init__(self, function: Callable[[dict[str, Any], Any], Any], context: Callable[[], Any]) -> None:
        self.function = function
        self.context = context

    def authorize(self, event: Mapping[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """(200, principal and context) to let the connect through; (401/403/500, None) to refuse."""
        context = event.get("requestContext") or {}
        arn = f"arn:aws:execute-api:local:123456789012:{context.get('apiId', 'local')}/{context.get('stage')}/$connect"
        auth_event = {
            "type": "REQUEST",
            "methodArn": arn,
            "headers": dict(event.get("headers") or {}),
            "multiValueHeaders": event.get("multiValueHeaders"),
            "queryStringParameters": event.get("queryStringParameters"),
            "multiValueQueryStringParameters": event.get("multiValueQueryStringParameters"),
            "stageVariables": None,
            "requestContext": dict(context),
        }
        try:
            result = self.function(auth_event, self.context())
        except Exception as exc:  # noqa: BLE001 - API Gateway's mapping of an authorizer's failure
            if str(exc) == "Unauthorized":
                return 401, None
            log_error("authorizer_error", exc, route="$connect")
            return 500, None
        if not isinstance(result, dict) or "principalId" not in result:
            return 500, None
        if not allows(result.get("policyDocument"), arn):
            return 403, None
        principal = {str(k): v for k, v in (result.get("context") or {}).items()}
        principal["principalId"] = result["principalId"]
        return 200, principal

    @classmethod
    def from_template(
        cls,
        template: Mapping[str, Any],
        app_object: Chalice,
        entry_point: Callable[[str, str], Any],
        context: Callable[[str], Callable[[], Any]],
        ws_api: str = "WebsocketAPI",
    ) -> ConnectAuthorizer | None:
        """The authorizer the template's $connect route names, bound to the app's function, or None."""
        resources = template.get("Resources") or {}
        # A full template names the route by RouteKey; a merge template extends Chalice's
        # `WebsocketConnectRoute` by its logical id.
        connect = next(
            (
                r.get("Properties") or {}
                for name, r in resources.items()
                if isinstance(r, dict)
                and ((r.get("Properties") or {}).get("RouteKey") == "$connect" or name == "WebsocketConnectRoute")
                and (r.get("Properties") or {}).get("AuthorizationType") == "CUSTOM"
            ),
            None,
        )
        if connect is None:
            return None
        ref = (connect.get("AuthorizerId") or {}).get("Ref")
        authorizer = (resources.get(ref) or {}).get("Properties") or {}
        if authorizer.get("AuthorizerType") != "REQUEST":
            return None
        uri = authorizer.get("AuthorizerUri")
        text = uri.get("Fn::Sub", "") if isinstance(uri, dict) else str(uri or "")
        found = re.search(r"\$\{(\w+)\.Arn\}", text if isinstance(text, str) else "")
        if found is None:
            return None
        logical_id = found.group(1)
        for function in app_object.pure_lambda_functions:
            if to_cfn_resource_name(function.name) == logical_id:
                handler = entry_point(function.name, function.handler_string)
                if handler is not None:
                    return cls(handler, context(function.name))
        return None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
