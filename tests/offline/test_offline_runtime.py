"""End-to-end tests of the offline runtime against a real moto server.

One moto (on a free port) serves the whole module; one ``LocalRuntime`` runs
the sample app, whose functions run in worker processes of their own and
record what they saw as JSON lines (``state()`` reads them back); two tests
drive the CLI as a subprocess for signals and cleanup.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import websocket
from botocore.config import Config
from chalice import Chalice

from offline import LocalRuntime, failed_ids, free_port, provision, to_lambda_record
from offline.emulator import port_open
from offline.websocket import WebSocketGateway
from tests.offline.conftest import SAMPLE, State
from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    return wait_until(predicate, timeout, "the runtime")


def ws_url(rt: LocalRuntime, path: str = "/") -> str:
    assert rt.websocket is not None
    return rt.websocket.url + path


def mgmt(rt: LocalRuntime, stage_path: str = "/api") -> Any:
    assert rt.websocket is not None
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=rt.websocket.management_url + stage_path,
        config=Config(max_pool_connections=32),
    )


def recv_json(ws: websocket.WebSocket) -> Any:
    return json.loads(ws.recv())


# --------------------------------------------------------------------- REST
def test_rest_route_and_environment(rt: LocalRuntime) -> None:
    assert rt.urls is not None
    resp = requests.get(rt.urls.rest + "/hello", timeout=5)
    assert resp.status_code == 200
    body = resp.json()
    assert body["hello"] == "world"
    # Read at import time: template, config.json (stage + function), explicit env.
    assert body["import_env"] == {
        "SAMPLE_TABLE": "offline-sample-dev-SampleTable",
        "CONFIG_VAR": "from-config",
        "OVERRIDE_ME": "explicit",
    }
    assert body["worker_var"] is None  # the worker function's own variable is not the REST function's
    assert requests.get(rt.urls.rest + "/nope", timeout=5).status_code == 403  # API Gateway's answer


def test_provision_resolves_template_and_is_idempotent(rt: LocalRuntime) -> None:
    env = provision(SAMPLE / "template.json", boto3.session.Session(), "offline-sample-dev")
    assert env["JOBS_QUEUE_ARN"] == "arn:aws:sqs:us-east-1:123456789012:offline-sample-jobs"
    assert env["REGION_TAG"] == "us-east-1:offline-sample-jobs"
    assert env["DLQ_URL"].endswith("/offline-sample-jobs-dlq")
    assert "API_ID" not in env  # a Ref to a resource Chalice creates: skipped
    assert os.environ["JOBS_QUEUE_URL"] == env["JOBS_QUEUE_URL"]
    attrs = boto3.client("sqs").get_queue_attributes(QueueUrl=env["JOBS_QUEUE_URL"], AttributeNames=["All"])
    redrive = json.loads(attrs["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":offline-sample-jobs-dlq")
    assert int(redrive["maxReceiveCount"]) == 3


# ---------------------------------------------------------------- WebSocket
def test_connect_refused_with_handler_status(rt: LocalRuntime, state: State) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(ws_url(rt, "/?deny=1"), timeout=5)
    assert info.value.status_code == 403
    refused = state["connect"][-1]["requestContext"]["connectionId"]
    assert state["connect_post"][refused] == "gone"
    assert refused not in rt.websocket.connections  # type: ignore[union-attr]


def test_connect_event_routing_and_errors(rt: LocalRuntime, state: State) -> None:
    ws = websocket.create_connection(ws_url(rt, "/api?orderId=o-1"), timeout=5)
    try:
        ws.send(json.dumps({"action": "whoami"}))
        me = recv_json(ws)
        cid = me["connectionId"]
        assert me["sourceIp"] == "127.0.0.1"
        event = next(e for e in state["connect"] if e["requestContext"]["connectionId"] == cid)
        ctx = event["requestContext"]
        assert (ctx["routeKey"], ctx["eventType"], ctx["stage"]) == ("$connect", "CONNECT", "api")
        assert event["queryStringParameters"] == {"orderId": "o-1"}
        assert any(k.lower() == "sec-websocket-key" for k in event["headers"])
        # $connect posted to its own connection and got GoneException, like on AWS.
        assert state["connect_post"][cid] == "gone"

        ws.send(json.dumps({"action": "echo", "n": 1}))
        assert recv_json(ws) == {"route": "echo", "body": {"action": "echo", "n": 1}}
        for frame in ("not json", json.dumps({"action": "unknown"}), json.dumps([1])):
            ws.send(frame)
            assert recv_json(ws) == {"route": "$default", "body": frame}
        ws.send(json.dumps({"action": "boom"}))
        error = recv_json(ws)
        assert error["message"] == "Internal server error" and error["connectionId"] == cid
        # Every message of one connection is its own invocation: all are answered.
        for i in range(20):
            ws.send(json.dumps({"action": "echo", "i": i}))
        assert sorted(recv_json(ws)["body"]["i"] for _ in range(20)) == list(range(20))
    finally:
        ws.close()
    wait_for(lambda: cid in state["disconnect"])


def test_no_route_and_no_default_gets_forbidden_frame() -> None:
    app = Chalice(app_name="bare")
    app.experimental_feature_flags.update(["WEBSOCKETS"])
    gateway = WebSocketGateway(app, sys.modules[__name__], lambda name: None, port=0)  # type: ignore[arg-type,return-value]
    assert gateway.select_route(json.dumps({"action": "x"})) is None


def test_connections_api_post_get_delete(rt: LocalRuntime, state: State) -> None:
    ws = websocket.create_connection(ws_url(rt), timeout=5)
    ws.send(json.dumps({"action": "whoami"}))
    cid = recv_json(ws)["connectionId"]
    for client in (mgmt(rt, "/api"), mgmt(rt, "")):
        info = client.get_connection(ConnectionId=cid)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        assert info["ConnectedAt"].year >= 2024 and "LastActiveAt" in info
        client.post_to_connection(ConnectionId=cid, Data=b'{"pushed": true}')
        assert recv_json(ws) == {"pushed": True}

    # Many threads posting at once all land, as one frame each.
    client = mgmt(rt)
    threads = [
        threading.Thread(target=client.post_to_connection, kwargs={"ConnectionId": cid, "Data": str(i).encode()})
        for i in range(25)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(ws.recv()) for _ in range(25)) == list(range(25))

    client.delete_connection(ConnectionId=cid)
    opcode, frame = ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 1000  # a normal close
    wait_for(lambda: cid in state["disconnect"])
    for call in (client.post_to_connection, client.get_connection, client.delete_connection):
        kwargs: dict[str, Any] = {"ConnectionId": cid}
        if call == client.post_to_connection:
            kwargs["Data"] = b"x"
        with pytest.raises(client.exceptions.GoneException):
            call(**kwargs)
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId="unknown-id=", Data=b"x")


def test_connection_is_gone_until_connect_completes(rt: LocalRuntime, state: State) -> None:
    seen = len(state["connect"])
    opened: dict[str, websocket.WebSocket] = {}
    opener = threading.Thread(
        target=lambda: opened.setdefault("ws", websocket.create_connection(ws_url(rt, "/?slow=1"), timeout=5))
    )
    opener.start()
    event = wait_for(lambda: state["connect"][seen] if len(state["connect"]) > seen else None)
    cid = event["requestContext"]["connectionId"]
    client = mgmt(rt)
    with pytest.raises(client.exceptions.GoneException):  # $connect still running
        client.post_to_connection(ConnectionId=cid, Data=b"early")
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=cid)
    opener.join(5)
    ws = opened["ws"]
    try:
        client.post_to_connection(ConnectionId=cid, Data=b"now")
        assert ws.recv() == "now"
    finally:
        ws.close()


# --------------------------------------------------------------------- SQS
def jobs(rt: LocalRuntime) -> tuple[Any, str]:
    return boto3.client("sqs"), rt.env["JOBS_QUEUE_URL"]


def send(sqs: Any, url: str, bodies: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    for i in range(0, len(bodies), 10):
        entries = [
            {
                "Id": str(n),
                "MessageBody": json.dumps(b),
                "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "test"}},
            }
            for n, b in enumerate(bodies[i : i + 10])
        ]
        resp = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not resp.get("Failed")
        ids += [r["MessageId"] for r in resp["Successful"]]
    return ids


def records_for(state: State, prefix: str) -> list[dict[str, Any]]:
    return [r for batch in state["sqs_batches"] for r in batch if json.loads(r["body"])["id"].startswith(prefix)]


def queue_empty(sqs: Any, url: str) -> bool:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_sqs_records_have_unique_ids_and_lambda_shape(rt: LocalRuntime, state: State) -> None:
    sqs, url = jobs(rt)
    sent = send(sqs, url, [{"id": f"uniq-{i}"} for i in range(7)])
    wait_for(lambda: len(records_for(state, "uniq-")) >= 7)
    records = records_for(state, "uniq-")
    assert sorted(r["messageId"] for r in records) == sorted(sent)  # unique, real SQS ids
    assert all(len(b) <= 2 for b in state["sqs_batches"])  # batch_size=2
    rec = records[0]
    assert rec["eventSource"] == "aws:sqs"
    assert rec["eventSourceARN"] == rt.env["JOBS_QUEUE_ARN"]
    assert rec["awsRegion"] == "us-east-1"
    assert rec["messageAttributes"]["kind"]["stringValue"] == "test"
    assert rec["messageAttributes"]["kind"]["dataType"] == "String"
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        rec["attributes"]
    )
    wait_for(lambda: queue_empty(sqs, url))


def test_sqs_partial_batch_failure_redelivers_only_failed(rt: LocalRuntime, state: State) -> None:
    sqs, url = jobs(rt)
    send(sqs, url, [{"id": "pbf-ok"}, {"id": "pbf-fail", "fail_times": 1}])
    # Visibility timeout is 2 s: the failed one comes back once and then succeeds.
    wait_for(lambda: state["sqs_receives"].get("pbf-fail") == [1, 2], timeout=15)
    assert state["sqs_receives"]["pbf-ok"] == [1]
    wait_for(lambda: queue_empty(sqs, url))


def test_sqs_concurrency_never_exceeds_reserved_concurrency(rt: LocalRuntime, state: State) -> None:
    """https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html: the mapping scales to its
    maximum concurrency (5); the function's reserved concurrency (3) throttles the invocations above it."""
    sqs, url = jobs(rt)
    since = time.time()
    send(sqs, url, [{"id": f"cc-{i}", "sleep": 0.3} for i in range(8)])
    wait_for(lambda: len({r["body"] for r in records_for(state, "cc-")}) >= 8, timeout=30)
    poller = next(p for p in rt.pollers if p.cfg.name == "worker")
    assert poller.mapping.concurrency == 5
    assert 2 <= state.max_overlap("sqs_start", "sqs_end", since) <= 3
    assert rt.functions["worker"].max_busy_seen <= 3
    assert rt.functions["worker"].throttled >= 1  # the mapping asked for more than 3 at once
    wait_for(lambda: queue_empty(sqs, url), timeout=20)


def test_sqs_redrive_to_dlq_after_max_receive_count(rt: LocalRuntime, state: State) -> None:
    sqs, url = jobs(rt)
    (sent,) = send(sqs, url, [{"id": "dlq-1", "fail_times": 99, "retry_now": True}])
    dlq = rt.env["DLQ_URL"]
    got: list[dict[str, Any]] = []

    def in_dlq() -> bool:
        got.extend(sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", []))
        return bool(got)

    wait_for(in_dlq, timeout=20)
    assert got[0]["MessageId"] == sent
    assert state["sqs_receives"]["dlq-1"] == [1, 2, 3]  # maxReceiveCount=3


def test_failed_ids_follows_lambda_rules() -> None:
    ids = ["a", "b"]
    assert failed_ids(None, ids) == set()
    assert failed_ids({"batchItemFailures": []}, ids) == set()
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids) == {"b"}
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "zz"}]}, ids) == {"a", "b"}
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, ids) == {"a", "b"}
    assert failed_ids({"batchItemFailures": "bad"}, ids) == {"a", "b"}
    record = to_lambda_record(
        {
            "MessageId": "m",
            "ReceiptHandle": "r",
            "Body": "b",
            "MD5OfBody": "x",
            "MessageAttributes": {"bin": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}},
        },
        "arn:q",
        "eu-west-1",
    )
    assert record["messageAttributes"]["bin"]["binaryValue"] == "AAE="


# --------------------------------------------------------------------- CLI
def _run_cli(env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    rest, ws = free_port(), free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "offline", "--app-dir", str(SAMPLE), "--template", "template.json"),
            *("--rest-port", str(rest), "--ws-port", str(ws)),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith('{"event": "ready"'):
            return proc, json.loads(line)
    proc.kill()
    proc.wait()
    raise AssertionError("runtime never printed its ready line")


def test_cli_serves_and_stops_on_sigterm(moto_endpoint: str) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_endpoint}
    proc, ready = _run_cli(env)
    try:
        assert ready["aws"] == moto_endpoint
        assert requests.get(ready["rest"] + "/hello", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert port_open("127.0.0.1", int(moto_endpoint.rsplit(":", 1)[1]))  # not ours: left running


def test_cli_embedded_emulator_dies_with_runtime_on_sigkill() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    emulator_port = free_port()
    env["EMULATOR_PORT"] = str(emulator_port)
    proc, ready = _run_cli(env)
    try:
        assert ready["aws"] == f"http://127.0.0.1:{emulator_port}"
        assert port_open("127.0.0.1", emulator_port)
        proc.kill()  # SIGKILL: no cleanup code runs, PR_SET_PDEATHSIG must do it
        proc.wait(timeout=5)
        wait_for(lambda: not port_open("127.0.0.1", emulator_port), timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
