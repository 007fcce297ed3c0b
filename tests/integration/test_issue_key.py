"""Issuing a key stores only its hash; the authorizer's directory then finds the client (moto)."""

from __future__ import annotations

import boto3
from moto import mock_aws

from chalicelib.client_table import ClientModel, DynamoClientDirectory
from chalicelib.clients import hash_key
from scripts.issue_key import issue
from tests.emulators import PINS_MOTO

pytestmark = PINS_MOTO


def test_an_issued_key_is_stored_hashed_and_found(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(ClientModel, "_connection", None, raising=False)
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName="clients",
            AttributeDefinitions=[{"AttributeName": "keyHash", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "keyHash", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        gateway = boto3.client("apigateway")
        plan = gateway.create_usage_plan(name="p", throttle={"rateLimit": 5, "burstLimit": 10})
        # WHEN a key is issued to alice
        key = issue("alice", admin=False, table="clients", usage_plan_id=plan["id"])
        # THEN the table holds its hash and never the key
        items = boto3.client("dynamodb").scan(TableName="clients")["Items"]
        assert len(items) == 1 and key not in str(items) and items[0]["keyHash"]["S"] == hash_key(key)
        # AND the directory finds alice by it, with the usage key now in the usage plan
        client = DynamoClientDirectory("clients").find(hash_key(key))
        assert client is not None and (client.name, client.admin) == ("alice", False)
        keys = gateway.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
        assert [k["value"] for k in keys] == [client.usage_key] and client.usage_key != key
        assert DynamoClientDirectory("clients").find(hash_key("not-" + key)) is None
