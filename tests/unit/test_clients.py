"""Keys, clients and the authorizers' answers, without I/O."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from chalice.app import AuthRequest

from chalicelib import access
from chalicelib.clients import (
    ChainedDirectory,
    Client,
    MemoryClientDirectory,
    Unauthorized,
    client_from_context,
    hash_key,
    key_from_request,
    parse_api_keys,
)
from chalicelib.config import load_settings
from offline.redact import redacted_path, redacted_query
from offline.throttle import TokenBucket, UsagePlan

ARN = "arn:aws:execute-api:us-east-1:123456789012:abc/api/GET/orders"


def test_api_keys_parse_into_clients_by_hash_and_bad_entries_fail():
    clients = parse_api_keys("alice:ka, root:kr:admin,")
    assert clients == {hash_key("ka"): Client("alice", False, "alice"), hash_key("kr"): Client("root", True, "root")}
    for bad in ("alice", "alice:", ":k", "a:k:root", "a:b:c:d"):
        with pytest.raises(ValueError):
            parse_api_keys(bad)


def test_the_dev_key_exists_only_off_lambda():
    assert load_settings({}).api_keys == "dev:dev-key:admin"
    assert load_settings({"AWS_LAMBDA_FUNCTION_NAME": "api_handler"}).api_keys == ""
    # the local runtime's functions (the authorizers among them) are local, not Lambda
    local = {"AWS_LAMBDA_FUNCTION_NAME": "client_key", "OFFLINE_RUNTIME": "1"}
    assert load_settings(local).api_keys == "dev:dev-key:admin"
    assert load_settings({"API_KEYS": "a:b"}).api_keys == "a:b"


def test_the_first_directory_that_knows_a_key_wins():
    first = MemoryClientDirectory({hash_key("k"): Client("one")})
    second = MemoryClientDirectory({hash_key("k"): Client("two"), hash_key("j"): Client("three")})
    chain = ChainedDirectory([first, second])
    assert chain.find(hash_key("k")).name == "one" and chain.find(hash_key("j")).name == "three"
    assert chain.find(hash_key("nope")) is None


def test_the_key_comes_from_the_header_any_case_else_the_query():
    assert key_from_request({"X-Api-Key": "h"}, {"apiKey": "q"}) == "h"
    assert key_from_request({}, {"apiKey": "q"}) == "q"
    assert key_from_request(None, None) is None and key_from_request({"x-api-key": ""}, {}) is None


def test_the_authorizer_context_names_the_client():
    assert client_from_context({"authorizer": {"principalId": "a", "client": "a", "admin": "true"}}) == Client(
        "a", True
    )
    assert client_from_context({"authorizer": {"principalId": "b"}}) == Client("b", False)
    assert client_from_context({}) is None and client_from_context(None) is None


@pytest.fixture()
def keys(monkeypatch):
    # the authorizers ask the engine for its clients only
    engine = SimpleNamespace(clients=MemoryClientDirectory(parse_api_keys("alice:ka,root:kr:admin")))
    monkeypatch.setattr(access, "engine", lambda: engine)


def test_rest_authorizer_policy_usage_key_and_refusal(keys):
    client = access.authorize_rest(AuthRequest("TOKEN", "ka", ARN))
    assert client["principalId"] == "alice" and client["context"] == {"client": "alice", "admin": "false"}
    assert client["usageIdentifierKey"] == "alice"
    resources = client["policyDocument"]["Statement"][0]["Resource"]
    assert any(r.endswith("/*/order/*") for r in resources) and not any(
        "/api/" in r.split("/api/", 1)[1] for r in resources
    )
    admin = access.authorize_rest(AuthRequest("TOKEN", "kr", ARN))
    assert admin["policyDocument"]["Statement"][0]["Resource"] == [
        "arn:aws:execute-api:us-east-1:123456789012:abc/api/*/*"
    ]
    for token in ("nope", "", "x" * 300):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            access.authorize_rest(AuthRequest("TOKEN", token, ARN))


def test_websocket_authorizer_reads_query_or_header(keys):
    arn = "arn:aws:execute-api:us-east-1:1:abc/api/$connect"
    allowed = access.authorize_ws({"methodArn": arn, "queryStringParameters": {"apiKey": "ka"}})
    assert allowed["principalId"] == "alice" and allowed["policyDocument"]["Statement"][0]["Resource"] == [arn]
    assert access.authorize_ws({"methodArn": arn, "headers": {"x-api-key": "kr"}})["context"]["admin"] == "true"
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        access.authorize_ws({"methodArn": arn, "queryStringParameters": {"apiKey": "ka "}})


def test_token_bucket_allows_the_burst_then_the_rate():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5
    assert [bucket.take() for _ in range(2)] == [True, False]
    plan = UsagePlan(rate=1, burst=1, clock=lambda: now[0])
    assert plan.allow("a") and not plan.allow("a") and plan.allow("b")


def test_usage_plan_from_template_with_env_overrides():
    template = {
        "Parameters": {"R": {"Default": 7}},
        "Resources": {
            "P": {
                "Type": "AWS::ApiGateway::UsagePlan",
                "Properties": {
                    "ApiStages": [{"ApiId": {"Ref": "RestAPI"}}],
                    "Throttle": {"RateLimit": {"Ref": "R"}, "BurstLimit": 9},
                },
            }
        },
    }
    plan = UsagePlan.from_template(template, {})
    assert plan is not None and (plan.rate, plan.burst) == (7.0, 9)
    plan = UsagePlan.from_template(template, {"RATE_LIMIT_RPS": "2", "RATE_LIMIT_BURST": "4"})
    assert plan is not None and (plan.rate, plan.burst) == (2.0, 4)
    assert UsagePlan.from_template({}, {}) is None


def test_secrets_in_queries_are_redacted_for_logs():
    assert redacted_query({"apiKey": "k", "orderId": "o"}) == {"apiKey": "[redacted]", "orderId": "o"}
    assert redacted_path("/x?orderId=o&apiKey=k") == "/x?orderId=o&apiKey=[redacted]"
    assert redacted_path("/orders?limit=5") == "/orders?limit=5"


def test_a_connect_without_authorizer_context_checks_the_key_itself(keys):
    authorized = {"requestContext": {"authorizer": {"principalId": "root", "client": "root", "admin": "true"}}}
    assert access.connection_client(authorized) == "root"
    assert access.connection_client({"requestContext": {}, "queryStringParameters": {"apiKey": "ka"}}) == "alice"
    with pytest.raises(Unauthorized):
        access.connection_client({"requestContext": {}, "queryStringParameters": {"apiKey": "zz"}})
