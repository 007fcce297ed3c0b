"""Lambda authorizers and usage plans, played locally as API Gateway plays them.

Each authorizer is a Lambda function of its own (Chalice deploys an ``@app.authorizer``
and an ``@app.lambda_function`` as functions of their own): it runs in that function's
execution environments (:mod:`offline.lambdas`), with its own environment variables,
timeout and concurrency, never in the runtime's process.

REST: a route with a Chalice ``@app.authorizer`` is a TOKEN authorizer whose identity
source is the header the authorizer names (``chalice.local`` always reads
``Authorization``; API Gateway reads the configured header). No header: 401 without
calling the authorizer. The authorizer raising ``Unauthorized``: 401; any other error, a
timeout, a throttle or a result without a principal: 500; a policy that does not allow
the method ARN: 403. A valid policy (allowing or denying) is cached per token for the
authorizer's TTL (``ttl_seconds``, else the template's ``authorizerResultTtlInSeconds``,
else 300 s; 0 turns the cache off) and applied to every method the token calls in that
time, so a key revoked in the store keeps working until its cached policy expires, as
on AWS. Its ``usageIdentifierKey`` is the API key of the template's usage plan: over
the plan's rate, 429 before the route runs.
https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html

WebSocket: an ``AWS::ApiGatewayV2::Authorizer`` (``REQUEST``) on the ``$connect`` route
of the template's WebSocket API is called before ``$connect`` with the request's headers
and query, on every connect (WebSocket APIs do not cache authorizer results); its
principal and context are on every later event of the connection
(``requestContext.authorizer``), as API Gateway does.
https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-lambda-auth.html
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
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

from .lambdas import Invoker, Outcome, as_invoker
from .logs import log
from .sigv4 import SigV4Routes, signature_error
from .throttle import UsagePlan

__all__ = [
    "DEFAULT_TTL_S",
    "AuthorizerCache",
    "ConnectAuthorizer",
    "TemplateAuthorizer",
    "ThrottledError",
    "allows",
    "install",
    "template_ttls",
]

DEFAULT_TTL_S = 300  # API Gateway's authorizerResultTtlInSeconds when none is set
MAX_TTL_S = 3600
TTL_SCALE_ENV = "OFFLINE_AUTHORIZER_TTL_SCALE"  # multiplies every TTL (tests); 1 by default


class ThrottledError(LocalGatewayException):
    CODE = 429


def _unauthorized(request_id: str) -> NotAuthorizedError:
    return NotAuthorizedError(
        {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": "UnauthorizedException"}, b'{"message":"Unauthorized"}'
    )


class AuthorizerCache:
    """API Gateway's cache of authorizer results: a valid policy per (authorizer, token), for its TTL."""

    def __init__(self, ttls: Mapping[str, int] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttls = dict(ttls or {})  # the template's authorizerResultTtlInSeconds per authorizer name
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def ttl(self, authorizer: ChaliceAuthorizer) -> float:
        """Seconds a result of ``authorizer`` is kept: the template's, else Chalice's ``ttl_seconds``, else 300."""
        declared = self.ttls.get(authorizer.name)  # a merge template overrides what Chalice generates
        if declared is None and authorizer.config is not None:
            declared = authorizer.config.ttl_seconds
        if declared is None:
            declared = DEFAULT_TTL_S
        scale = float(os.environ.get(TTL_SCALE_ENV, "") or 1)
        return min(int(declared), MAX_TTL_S) * scale

    def get(self, name: str, token: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get((name, token))
            if entry is not None and entry[0] > self._clock():
                self.hits += 1
                return entry[1]
            self._entries.pop((name, token), None)
            self.misses += 1
            return None

    def put(self, name: str, token: str, result: dict[str, Any], ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        with self._lock:
            self._entries[(name, token)] = (self._clock() + ttl_s, result)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def template_ttls(template: Mapping[str, Any] | None) -> dict[str, int]:
    """``authorizerResultTtlInSeconds`` per authorizer in the REST API's OpenAPI body, and
    ``AuthorizerResultTtlInSeconds`` of ``AWS::ApiGateway::Authorizer`` resources."""
    found: dict[str, int] = {}
    for resource in ((template or {}).get("Resources") or {}).values():
        if not isinstance(resource, Mapping):
            continue
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::ApiGateway::Authorizer" and "AuthorizerResultTtlInSeconds" in props:
            found[str(props.get("Name"))] = int(props["AuthorizerResultTtlInSeconds"])
        body = props.get("DefinitionBody")  # a merge template's RestAPI may leave out its Type
        if isinstance(body, Mapping):
            schemes = {
                **(body.get("securityDefinitions") or {}),
                **((body.get("components") or {}).get("securitySchemes") or {}),
            }
            for name, scheme in schemes.items():
                extension = (scheme or {}).get("x-amazon-apigateway-authorizer") or {}
                if "authorizerResultTtlInSeconds" in extension:
                    found[str(name)] = int(extension["authorizerResultTtlInSeconds"])
    return found


def _configuration_error(request_id: str) -> InvalidAuthorizerError:
    return InvalidAuthorizerError(
        {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": "AuthorizerConfigurationException"},
        b'{"message":null}',
    )


class TemplateAuthorizer(LocalGatewayAuthorizer):
    """Chalice's local authorizer with API Gateway's identity source, errors, cache and usage plan."""

    def __init__(
        self,
        app_object: Chalice,
        usage_plan: UsagePlan | None,
        sigv4: SigV4Routes | None = None,
        functions: Callable[[str], Invoker] | None = None,
        cache: AuthorizerCache | None = None,
    ) -> None:
        super().__init__(app_object)
        self.usage_plan = usage_plan
        self.sigv4 = sigv4
        self.functions = functions  # the authorizer's own Lambda function, by name
        self.cache = cache if cache is not None else AuthorizerCache()

    def _function(self, authorizer: ChaliceAuthorizer, lambda_context: Any) -> Invoker:
        if self.functions is not None:
            return self.functions(authorizer.name)
        return as_invoker(authorizer.name, authorizer, lambda: lambda_context)  # no runtime: in this process

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
        result = self.cache.get(authorizer.name, token)
        if result is None:
            outcome = self._function(authorizer, lambda_context).invoke(
                {"type": "TOKEN", "authorizationToken": token, "methodArn": arn}
            )
            result = self._result(outcome, authorizer.name, request_id)
            self.cache.put(authorizer.name, token, result, self.cache.ttl(authorizer))
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
    def _result(outcome: Outcome, name: str, request_id: str) -> dict[str, Any]:
        """The authorizer's policy; API Gateway's 401 or 500 when it refused or failed."""
        if not outcome.ok:
            if outcome.status == "error" and outcome.error_message == "Unauthorized":
                raise _unauthorized(request_id) from None
            log(
                "authorizer_error",
                level="error",
                authorizer=name,
                outcome=outcome.status,
                errorType=outcome.error_type,
                error=outcome.error_message,
                traceback="".join(outcome.trace),
            )
            raise _configuration_error(request_id)
        result = outcome.result
        if not isinstance(result, dict) or "principalId" not in result:
            log("authorizer_error", level="error", authorizer=name, outcome="no principalId")
            raise _configuration_error(request_id)
        return result

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


def install(
    gateway: LocalGateway,
    usage_plan: UsagePlan | None,
    sigv4: SigV4Routes | None = None,
    functions: Callable[[str], Invoker] | None = None,
    cache: AuthorizerCache | None = None,
) -> None:
    """Put the template-faithful authorizer into one request's ``LocalGateway``."""
    gateway._authorizer = TemplateAuthorizer(gateway._app_object, usage_plan, sigv4, functions, cache)


class ConnectAuthorizer:
    """The WebSocket API's $connect REQUEST authorizer, from the template: a Lambda function of its own."""

    def __init__(self, function: Invoker) -> None:
        self.function = function

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
        outcome = self.function.invoke(auth_event)
        if not outcome.ok:
            if outcome.status == "error" and outcome.error_message == "Unauthorized":
                return 401, None
            log(
                "authorizer_error",
                level="error",
                route="$connect",
                outcome=outcome.status,
                errorType=outcome.error_type,
                error=outcome.error_message,
                traceback="".join(outcome.trace),
            )
            return 500, None
        result = outcome.result
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
        functions: Callable[[str], Invoker],
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
                return cls(functions(function.name))
        return None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]
