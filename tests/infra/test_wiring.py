"""The packaged template wires what the code and config.json promise."""

from __future__ import annotations

import json

from chalicelib.config import Settings

from .conftest import ROOT
from .template_model import attached_policies, functions, role_of, statements

CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())


def _props(template, logical_id):
    return template["Resources"][logical_id]["Properties"]


def _event(template, function):
    (event,) = functions(template)[function]["Events"].values()
    assert event["Type"] == "SQS"
    return event["Properties"]


def test_order_queue_redrives_to_the_dlq_after_the_last_attempt(dev_template):
    # GIVEN the order queue WHEN a message fails every attempt THEN the DLQ takes it after the last one
    redrive = _props(dev_template, "OrdersQueue")["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["OrdersDeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == Settings().max_attempts == 4
    assert _props(dev_template, "OrdersQueue")["QueueName"] == "solana-exec-orders"
    assert _props(dev_template, "ReplayQueue")["QueueName"] == "solana-exec-ws-replay"
    assert _props(dev_template, "OrdersDeadLetterQueue")["QueueName"] == "solana-exec-orders-dlq"


def test_visibility_timeouts_cover_six_function_timeouts(dev_template):
    # AWS refuses an event source whose queue hides messages for less than the function may run,
    # and recommends six times the function timeout.
    fns = functions(dev_template)
    for function, queue in (("OrderWorker", "OrdersQueue"), ("WsReplay", "ReplayQueue")):
        assert _props(dev_template, queue)["VisibilityTimeout"] >= 6 * fns[function]["Timeout"], function
    assert fns["OrderWorker"]["Timeout"] == 30


def test_order_worker_event_source(dev_template):
    event = _event(dev_template, "OrderWorker")
    assert event["Queue"] == {"Fn::Sub": "${OrdersQueue.Arn}"}  # the template's queue, so it is created first
    assert event["BatchSize"] == 1
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["ScalingConfig"] == {"MaximumConcurrency": 10}
    assert functions(dev_template)["OrderWorker"]["ReservedConcurrentExecutions"] == 10


def test_replay_event_source(dev_template):
    event = _event(dev_template, "WsReplay")
    assert event["Queue"] == {"Fn::Sub": "${ReplayQueue.Arn}"}
    assert event["BatchSize"] == 1
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_websocket_routes_reach_their_handlers(dev_template):
    resources = dev_template["Resources"]
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in resources.values() if r["Type"].endswith("::Route")}
    # $disconnect frees the key's connection slot (decision 016); a subscriber that went away is
    # still dropped from its orders by the first push that gets a 410.
    assert set(routes) == {"$connect", "$default", "$disconnect"}
    expected = {"$connect": "WebsocketConnect", "$default": "WebsocketMessage", "$disconnect": "WebsocketDisconnect"}
    for key, function in expected.items():
        integration_id = routes[key]["Target"]["Fn::Join"][1][1]["Ref"]
        _, variables = resources[integration_id]["Properties"]["IntegrationUri"]["Fn::Sub"]
        assert variables == {"WebsocketHandler": {"Ref": function}}, key
    assert _props(dev_template, "WebsocketAPIStage")["StageName"] == CONFIG["stages"]["dev"]["websocket_api_stage"]


def test_functions_get_the_resource_names_and_the_websocket_endpoint(dev_template):
    variables = dev_template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["ORDERS_QUEUE_URL"] == {"Ref": "OrdersQueue"}
    assert variables["ORDERS_DLQ_URL"] == {"Ref": "OrdersDeadLetterQueue"}
    assert variables["REPLAY_QUEUE_URL"] == {"Ref": "ReplayQueue"}
    for name, table in (("ORDERS", "Orders"), ("FAILURES", "Failures"), ("LIMITS", "Limits")):
        assert variables[f"{name}_TABLE"] == {"Ref": f"{table}Table"}
    # the notifier's endpoint: https://{api}.execute-api.{region}.amazonaws.com/{stage}
    assert variables["WEBSOCKET_API_ENDPOINT"] == {
        "Fn::Sub": "https://${WebsocketAPI}.execute-api.${AWS::Region}.amazonaws.com/api"
    }


def test_stages_switch_test_endpoints(dev_template, prod_template):
    for template, flag, stage in ((dev_template, "true", "dev"), (prod_template, "false", "prod")):
        for name, props in functions(template).items():
            env = props["Environment"]["Variables"]
            assert (env["ENABLE_TEST_ENDPOINTS"], env["STAGE"]) == (flag, stage), name


PUBLIC_ROUTES = {("/", "get"), ("/console/{name}", "get"), ("/health", "get"), ("/openapi.json", "get")}


def test_every_route_but_the_public_ones_needs_the_key_authorizer_and_a_usage_plan_key(dev_template, prod_template):
    for template in (dev_template, prod_template):
        body = _props(template, "RestAPI")["DefinitionBody"]
        authorizer = body["securityDefinitions"]["client_key"]
        assert authorizer["x-amazon-apigateway-authtype"] == "custom" and authorizer["name"] == "x-api-key"
        assert "${ClientKey.Arn}" in authorizer["x-amazon-apigateway-authorizer"]["authorizerUri"]["Fn::Sub"]
        # the usage plan key comes from the authorizer (usageIdentifierKey), not from the header
        assert body["x-amazon-apigateway-api-key-source"] == "AUTHORIZER"
        protected = 0
        for path, methods in body["paths"].items():
            for method, spec in methods.items():
                if method == "options":
                    continue
                assert "x-amazon-apigateway-integration" in spec, f"{method} {path}: not a route of app.py"
                if (path, method) in PUBLIC_ROUTES:
                    assert "security" not in spec, f"{method} {path} should stay public"
                else:
                    assert spec.get("security") == [{"api_key": []}, {"client_key": []}], f"{method} {path} is open"
                    protected += 1
        assert protected >= 12  # orders, tokens, /api/stats, the five DLQ routes, the two test routes
        plan = _props(template, "UsagePlan")
        assert plan["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}]
        assert plan["Throttle"] == {"RateLimit": {"Ref": "RateLimitRps"}, "BurstLimit": {"Ref": "RateLimitBurst"}}


def test_websocket_connect_runs_the_key_authorizer(dev_template):
    route = _props(dev_template, "WebsocketConnectRoute")
    assert route["AuthorizationType"] == "CUSTOM" and route["AuthorizerId"] == {"Ref": "WebsocketKeyAuthorizer"}
    authorizer = _props(dev_template, "WebsocketKeyAuthorizer")
    assert authorizer["AuthorizerType"] == "REQUEST" and "${WsAuthorizer.Arn}" in authorizer["AuthorizerUri"]["Fn::Sub"]
    permission = _props(dev_template, "WsAuthorizerInvokePermission")
    assert permission["FunctionName"] == {"Ref": "WsAuthorizer"}


def test_errors_api_gateway_answers_itself_keep_the_contracts_shape(dev_template, prod_template):
    # Unknown path, missing signature, throttling...: {"error", "message"} like every other error.
    for template in (dev_template, prod_template):
        responses = _props(template, "RestAPI")["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
        assert {"MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
        for kind, response in responses.items():
            text = response["responseTemplates"]["application/json"]
            # Gateway response templates are simple substitution: messageString is a quoted string.
            body = json.loads(text.replace("$context.error.messageString", json.dumps("some message")))
            assert body["error"] and body["error"] == body["error"].lower() and body["message"], kind


def test_each_function_has_its_own_role_and_no_wildcard_action(dev_template):
    roles = {fn: role_of(dev_template, fn) for fn in functions(dev_template)}
    assert len(set(roles.values())) == len(roles), roles
    assert "DefaultRole" not in dev_template["Resources"]
    for function, role in roles.items():
        props = _props(dev_template, role)
        # Chalice's inline policy (.chalice/policy-lambda-logs.json) is CloudWatch Logs only
        for inline in props["Policies"]:
            for statement in statements(inline["PolicyDocument"]):
                assert all(a.startswith("logs:") for a in statement["Action"]), (function, statement)
        policies = attached_policies(dev_template, role)
        assert policies == [f"{role.removesuffix('Role')}AccessPolicy"], (function, policies)
        for statement in statements(_props(dev_template, policies[0])["PolicyDocument"]):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not any("*" in a for a in actions), (function, statement)
            assert statement["Resource"] != "*" and "*" not in statement["Resource"], (function, statement)
