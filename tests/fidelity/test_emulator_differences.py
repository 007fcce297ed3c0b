"""Where moto and LocalStack differ in what the engine depends on, and which one AWS agrees with.

Run on the emulator `TEST_EMULATOR` names (moto by default; `make test` runs both). Each test
asserts what that emulator does, and says what AWS does, so a change in an emulator shows up
here rather than as a flaky e2e test. The engine is written to be right on all three.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.emulators import ACCOUNTS, emulator_server, test_emulator

EMULATOR = test_emulator()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory) -> Iterator[str]:
    with emulator_server(tmp_path_factory.mktemp(f"fidelity-{EMULATOR}")) as url:
        yield url


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def _queue(sqs: Any, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=f"fidelity-{uuid.uuid4().hex[:10]}", Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def test_the_account_id_is_the_emulators_own(endpoint):
    # AWS: the caller's account. moto reports 123456789012, LocalStack 000000000000 (for a
    # non-numeric access key): nothing in the project may assume either.
    sqs = _client(endpoint, "sqs")
    _, arn = _queue(sqs)
    assert arn.split(":")[4] == ACCOUNTS[EMULATOR]


def test_provisioning_takes_the_account_id_from_the_emulator(endpoint):
    # Nothing may assume an account id: a template's ${AWS::AccountId} resolves to the emulator's.
    from offline.provision import provision_template

    template = {
        "Resources": {"Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"acct-{uuid.uuid4().hex[:8]}"}}},
        "Globals": {
            "Function": {
                "Environment": {
                    "Variables": {
                        "ACCOUNT": {"Ref": "AWS::AccountId"},
                        "TOPIC_ARN": {"Fn::Sub": "arn:aws:sns:${AWS::Region}:${AWS::AccountId}:alerts"},
                    }
                }
            }
        },
    }
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    env = provision_template(template, session=session, endpoint_url=endpoint).env
    assert env["ACCOUNT"] == ACCOUNTS[EMULATOR]
    assert env["TOPIC_ARN"] == f"arn:aws:sns:us-east-1:{ACCOUNTS[EMULATOR]}:alerts"
    # AND with no resource to read it from, it is asked of the emulator (STS)
    bare = {"Globals": template["Globals"]}
    assert provision_template(bare, session=session, endpoint_url=endpoint).env["ACCOUNT"] == ACCOUNTS[EMULATOR]


def test_a_message_comes_back_after_its_visibility_timeout_never_before(endpoint):
    # AWS: a received message is invisible for its visibility timeout, then visible again;
    # "at least" the timeout, with no promise on how soon after. moto returns it on time;
    # LocalStack up to ~1 s late. The worker's retry backoff (2, 4, 8 s, set by
    # ChangeMessageVisibility) tolerates late, and must never count on early.
    sqs = _client(endpoint, "sqs")
    url, _ = _queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="m")
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"][0]
    received = time.monotonic()
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=2)
    again: list[dict[str, Any]] = []
    while not again and time.monotonic() - received < 6:
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0).get("Messages", [])
        if not again:
            time.sleep(0.05)
    back_after = time.monotonic() - received
    assert again, "the message never came back"
    assert again[0]["MessageId"] == first["MessageId"]
    assert back_after >= 1.9, f"visible again after {back_after:.2f}s, before its 2 s timeout"
    late_limit = {"moto": 1.0, "localstack": 2.0}[EMULATOR]  # LocalStack's timer runs ~1 s behind
    assert back_after <= 2 + late_limit, f"visible again only after {back_after:.2f}s"


def test_a_second_purge_within_60_s(endpoint):
    # AWS: PurgeQueueInProgress for a second PurgeQueue on the same queue within 60 s.
    # moto agrees; LocalStack accepts it. The engine never purges: the DLQ "clear" receives
    # and deletes (chalicelib/dlq.py), which works the same everywhere and reports a count.
    sqs = _client(endpoint, "sqs")
    url, _ = _queue(sqs)
    sqs.purge_queue(QueueUrl=url)
    if EMULATOR == "localstack":
        sqs.purge_queue(QueueUrl=url)
        return
    with pytest.raises(ClientError) as err:
        sqs.purge_queue(QueueUrl=url)
    assert "PurgeQueueInProgress" in str(err.value.response["Error"]["Code"])


def test_start_message_move_task_from_a_dead_letter_queue(endpoint):
    # AWS: StartMessageMoveTask moves a DLQ's messages back to their source queue (or a given
    # destination) with their bodies unchanged, as new messages: a new MessageId, a fresh
    # receive count and retention period ("All redriven messages are considered new messages",
    # SQS Developer Guide, "Configure a dead-letter queue redrive"). So a moved message still
    # names its old round: the engine's redrive keeps the next round on the order first
    # (decision 013). LocalStack moves it too, but keeps counting its receives (the move's
    # own receive included), so the source queue's redrive policy dead-letters it again at
    # its next receive; moto answers with an error. The engine therefore uses the move task
    # against AWS only (DLQ_MOVE_TASK=auto) and receive/send/delete on both emulators.
    sqs = _client(endpoint, "sqs")
    dlq_url, dlq_arn = _queue(sqs)
    source_url, source_arn = _queue(
        sqs, RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"})
    )
    sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"orderId": "o-1", "round": 1}))
    # a message that was received before (as a dead-lettered one was, maxReceiveCount times)
    sqs.receive_message(QueueUrl=dlq_url, VisibilityTimeout=0)
    if EMULATOR == "moto":
        with pytest.raises(ClientError):
            sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=source_arn)
        return
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=source_arn)
    deadline = time.monotonic() + 10
    moved: list[dict[str, Any]] = []
    while not moved and time.monotonic() < deadline:
        moved = sqs.receive_message(
            QueueUrl=source_url, WaitTimeSeconds=1, AttributeNames=["ApproximateReceiveCount"]
        ).get("Messages", [])
    assert [json.loads(m["Body"]) for m in moved] == [{"orderId": "o-1", "round": 1}]
    # AWS: "1", a new message's first receive. LocalStack: the DLQ receive, the move's, and this one.
    assert int(moved[0]["Attributes"]["ApproximateReceiveCount"]) > 1
    tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert tasks and tasks[0]["Status"] in ("COMPLETED", "RUNNING")


def test_expired_items_stay_until_the_emulator_is_told_to_delete_them(endpoint):
    # AWS: TTL deletes an expired item some time later (typically within a few days), and reads
    # return it until then: code that uses TTL must filter expired items itself. Neither
    # emulator deletes on its own; LocalStack does on `DELETE /_aws/dynamodb/expired` (or with
    # DYNAMODB_REMOVE_EXPIRED_ITEMS=1), moto never. The engine uses no TTL today.
    ddb = _client(endpoint, "dynamodb")
    table = f"fidelity-{uuid.uuid4().hex[:10]}"
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"AttributeName": "expires", "Enabled": True})
    ddb.put_item(TableName=table, Item={"pk": {"S": "gone"}, "expires": {"N": str(int(time.time()) - 3600)}})
    time.sleep(1.5)
    assert "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "gone"}}, ConsistentRead=True)
    if EMULATOR == "localstack":
        request = urllib.request.Request(f"{endpoint}/_aws/dynamodb/expired", method="DELETE")
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200
        assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "gone"}}, ConsistentRead=True)
