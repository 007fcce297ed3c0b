"""The template's gateway responses, rendered for errors the local API Gateway answers itself."""

from __future__ import annotations

import json

from offline.gateway_responses import GatewayResponses, response_type_for

MISSING = b'{"message": "Missing Authentication Token"}'


def _template(**definition_body: object) -> dict[str, object]:
    return {"Resources": {"RestAPI": {"Properties": {"DefinitionBody": definition_body}}}}


def test_no_gateway_responses_leaves_api_gateways_own_body():
    assert GatewayResponses.from_template({"Resources": {}}).render(403, MISSING, "", "GET", "/x") is None


def test_the_definition_body_extension_is_rendered_by_simple_substitution():
    responses = GatewayResponses.from_template(
        _template(
            **{
                "x-amazon-apigateway-gateway-responses": {
                    "MISSING_AUTHENTICATION_TOKEN": {
                        "statusCode": 404,
                        "responseParameters": {"gatewayresponse.header.X-Why": "'no-route'"},
                        "responseTemplates": {
                            "application/json": '{"error": "$context.error.responseType", "message": '
                            '$context.error.messageString, "at": "$context.httpMethod $context.path"}'
                        },
                    }
                }
            }
        )
    )
    status, headers, body = responses.render(403, MISSING, "UnauthorizedException", "GET", "/nope?x=1")
    assert status == 404 and headers["X-Why"] == "no-route" and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "error": "MISSING_AUTHENTICATION_TOKEN",
        "message": "Missing Authentication Token",
        "at": "GET /nope",
    }


def test_a_resource_of_its_own_and_the_default_4xx_fallback():
    template = {
        "Resources": {
            "Fallback": {
                "Type": "AWS::ApiGateway::GatewayResponse",
                "Properties": {
                    "RestApiId": {"Ref": "RestAPI"},
                    "ResponseType": "DEFAULT_4XX",
                    "ResponseTemplates": {
                        "application/json": '{"error": "gateway_error", "message": $context.error.messageString}'
                    },
                },
            }
        }
    }
    responses = GatewayResponses.from_template(template)
    denied = b'{"Message": "User is not authorized to access this resource"}'
    status, _, body = responses.render(403, denied, "AccessDeniedException", "POST", "/api/dlq/redrive")
    # ACCESS_DENIED has no entry of its own: DEFAULT_4XX answers, keeping API Gateway's status
    assert status == 403
    assert json.loads(body) == {"error": "gateway_error", "message": "User is not authorized to access this resource"}
    assert responses.render(500, b"{}", "", "GET", "/") is None  # no DEFAULT_5XX declared


def test_response_types_follow_api_gateway():
    assert response_type_for(403, "Missing Authentication Token", "UnauthorizedException") == (
        "MISSING_AUTHENTICATION_TOKEN"
    )
    assert response_type_for(403, "no", "AccessDeniedException") == "ACCESS_DENIED"
    assert response_type_for(401, "", "") == "UNAUTHORIZED"
    assert response_type_for(429, "", "") == "THROTTLED"
    assert response_type_for(502, "", "") == "DEFAULT_5XX"
