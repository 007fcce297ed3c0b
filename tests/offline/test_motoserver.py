"""moto behind ``offline.motoserver``: same moto, persistent connections, clean stop."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.support import free_port, moto_server, wait_http

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(Path(tmp_path_factory.mktemp("moto"))) as url:
        yield url


def test_requests_share_one_connection(endpoint: str) -> None:
    # GIVEN one HTTP/1.1 connection to the emulator
    host, port = endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        # WHEN two requests go over it, one after the other
        for _ in range(2):
            conn.request("GET", "/moto-api/data.json")
            response = conn.getresponse()
            response.read()
            # THEN each is answered without closing it (Werkzeug's dev server says close)
            assert response.status == 200
            assert (response.getheader("Connection") or "").lower() != "close"
        assert conn.sock is not None  # still the same open socket
    finally:
        conn.close()


def test_it_is_moto(endpoint: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=endpoint, **CREDENTIALS)
    url = sqs.create_queue(QueueName="motoserver-test")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in messages] == ["hello"]


def test_sigterm_stops_it_even_during_a_long_poll(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "offline.motoserver", "-p", str(port)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/moto-api/", proc=proc)
        sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{port}", **CREDENTIALS)
        url = sqs.create_queue(QueueName="idle")["QueueUrl"]
        poll = subprocess.Popen(  # a 20 s long poll in flight while it stops
            [
                sys.executable,
                "-c",
                "import boto3,sys; boto3.client('sqs', endpoint_url=sys.argv[1], region_name='us-east-1')"
                ".receive_message(QueueUrl=sys.argv[2], WaitTimeSeconds=20)",
                f"http://127.0.0.1:{port}",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        )
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        poll.kill()
        poll.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_conditional_writes_on_one_item_serialise_as_on_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.parsing.executors import UpdateExpressionExecutor

    from offline.motoserver import ATOMIC_OPERATIONS, serialise_dynamodb_items

    for name in ATOMIC_OPERATIONS:  # restored after the test
        monkeypatch.setattr(DynamoDBBackend, name, getattr(DynamoDBBackend, name))
    monkeypatch.setattr(DynamoDBBackend, "_offline_serialised", False, raising=False)
    serialise_dynamodb_items()
    # GIVEN moto applying an update slowly (its condition checked first, its actions later)
    execute = UpdateExpressionExecutor.execute

    def slow(self: object, *args: object, **kwargs: object) -> object:
        time.sleep(0.2)
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(UpdateExpressionExecutor, "execute", slow)
    with mock_aws():
        ddb = boto3.client("dynamodb", **CREDENTIALS)
        ddb.create_table(
            TableName="atomic",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName="atomic", Item={"k": {"S": "x"}, "v": {"N": "0"}})
        landed: list[str] = []

        def write(who: str) -> None:
            try:
                ddb.update_item(
                    TableName="atomic",
                    Key={"k": {"S": "x"}},
                    UpdateExpression="SET v = :new, who = :who",
                    ConditionExpression="v = :old",
                    ExpressionAttributeValues={":old": {"N": "0"}, ":new": {"N": "1"}, ":who": {"S": who}},
                )
                landed.append(who)
            except ddb.exceptions.ConditionalCheckFailedException:
                pass

        # WHEN two writers race with the same condition
        threads = [threading.Thread(target=write, args=(who,)) for who in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        # THEN exactly one lands, as on DynamoDB (moto alone lets both pass the condition)
        item = ddb.get_item(TableName="atomic", Key={"k": {"S": "x"}})["Item"]
        assert len(landed) == 1 and item["who"]["S"] == landed[0]
