"""The local runtime still provisions from infra/resources.json, skipping what only AWS has."""

from __future__ import annotations

import boto3
from moto import mock_aws

from offline.provision import load_template, provision_template

from .conftest import ROOT


def test_local_runtime_creates_tables_and_queues_and_skips_the_rest(fake_aws):
    template = load_template(ROOT / "infra" / "resources.json")
    with mock_aws():
        # GIVEN the merge template (with IAM policies, partial Chalice resources, Fn::Sub on WebsocketAPI)
        result = provision_template(template, session=boto3.session.Session(), name_prefix="t")
    # THEN the tables and queues exist, and nothing else was attempted
    assert {n for n, c in result.resources.items() if c.type == "AWS::DynamoDB::Table"} == {
        "OrdersTable",
        "FailuresTable",
        "ClientsTable",
        "LimitsTable",
    }
    assert {n for n, c in result.resources.items() if c.type == "AWS::SQS::Queue"} == {
        "OrdersQueue",
        "OrdersDeadLetterQueue",
        "ReplayQueue",
    }
    # AND every variable resolves but the WebSocket endpoint, which locally comes from
    # AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI instead
    assert set(result.skipped_env) == {"WEBSOCKET_API_ENDPOINT"}
    assert result.env["ORDERS_QUEUE_URL"].endswith("/solana-exec-orders")
    assert result.env["ORDERS_TABLE"] == "t-OrdersTable"
    # a Ref to a template parameter takes its Default (the WebSocket limits, decision 016)
    assert result.env["WS_MAX_CONNECTIONS_PER_KEY"] == "100" and result.env["WS_FRAME_RATE"] == "50"
