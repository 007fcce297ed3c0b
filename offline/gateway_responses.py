"""API Gateway's own error responses, as the template customises them.

When API Gateway itself refuses a request (no route matches, a signature is
missing, an authorizer says no) the body is its own
(``{"message": "Missing Authentication Token"}``), unless the stack declares a
gateway response for that response type: an ``AWS::ApiGateway::GatewayResponse``
resource, or ``x-amazon-apigateway-gateway-responses`` in the REST API's
``DefinitionBody`` (deployed with the API, which a separate resource is not
until the next deployment). The local REST server applies the same entries
from the same template, so an unknown path answers locally as it will once
deployed.

Only what such templates commonly use is rendered: ``$context.error.message``,
``$context.error.messageString`` (the message as a quoted JSON string),
``$context.error.responseType``, ``$context.httpMethod`` and ``$context.path``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["GatewayResponse", "GatewayResponses", "response_type_for"]

_JSON = "application/json"


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None  # None: keep the status API Gateway would use
    template: str | None  # the application/json response template
    headers: dict[str, str]


def response_type_for(status: int, message: str, error_type: str) -> str:
    """The GatewayResponse type API Gateway would use for an error it generated itself."""
    if status == 403 and "Missing Authentication Token" in message:
        return "MISSING_AUTHENTICATION_TOKEN"
    if status == 403 and error_type == "InvalidSignatureException":
        return "INVALID_SIGNATURE"
    if status == 403 and error_type == "AccessDeniedException":
        return "ACCESS_DENIED"
    if status == 401:
        return "UNAUTHORIZED"
    if status == 429:
        return "THROTTLED"
    if status == 413:
        return "REQUEST_TOO_LARGE"
    if status == 504:
        return "INTEGRATION_TIMEOUT"
    if status == 500 and error_type == "AuthorizerConfigurationException":
        return "AUTHORIZER_CONFIGURATION_ERROR"
    return "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"


class GatewayResponses:
    """The template's gateway responses for one REST API, by response type."""

    def __init__(self, responses: Mapping[str, GatewayResponse] | None = None) -> None:
        self.responses = dict(responses or {})

    @classmethod
    def from_template(cls, template: Mapping[str, Any], rest_api: str = "RestAPI") -> GatewayResponses:
        found: dict[str, GatewayResponse] = {}
        resources = template.get("Resources") or {}
        definition = ((resources.get(rest_api) or {}).get("Properties") or {}).get("DefinitionBody") or {}
        for kind, entry in (definition.get("x-amazon-apigateway-gateway-responses") or {}).items():
            found[str(kind)] = _response(entry, "statusCode", "responseParameters", "responseTemplates")
        for resource in resources.values():
            if not isinstance(resource, dict) or resource.get("Type") != "AWS::ApiGateway::GatewayResponse":
                continue
            props = resource.get("Properties") or {}
            if props.get("RestApiId") != {"Ref": rest_api}:
                continue
            found[str(props.get("ResponseType"))] = _response(
                props, "StatusCode", "ResponseParameters", "ResponseTemplates"
            )
        return cls(found)

    def render(
        self, status: int, body: bytes | str | None, error_type: str, method: str, path: str
    ) -> tuple[int, dict[str, str], bytes] | None:
        """(status, headers, body) for an error API Gateway generated, or None to leave it as it is."""
        message = _message(body)
        kind = response_type_for(status, message, error_type)
        response = self.responses.get(kind) or self.responses.get("DEFAULT_4XX" if status < 500 else "DEFAULT_5XX")
        if response is None or response.template is None:
            return None
        text = (
            response.template.replace("$context.error.messageString", json.dumps(message))
            .replace("$context.error.message", message)
            .replace("$context.error.responseType", kind)
            .replace("$context.httpMethod", method)
            .replace("$context.path", path.split("?", 1)[0])
        )
        headers = {"Content-Type": _JSON, **response.headers}
        return response.status or status, headers, text.encode()


def _response(entry: Mapping[str, Any], status_key: str, params_key: str, templates_key: str) -> GatewayResponse:
    status = entry.get(status_key)
    headers = {
        str(k).rsplit(".", 1)[-1]: str(v).strip("'")
        for k, v in (entry.get(params_key) or {}).items()
        if str(k).startswith("gatewayresponse.header.")
    }
    template = (entry.get(templates_key) or {}).get(_JSON)
    return GatewayResponse(status=int(status) if status else None, template=template, headers=headers)


def _message(body: bytes | str | None) -> str:
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, dict):
        return str(parsed.get("message") or parsed.get("Message") or "")
    return text
