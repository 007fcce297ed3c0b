"""A small Chalice app that exercises every part of the offline runtime.

Every function runs in worker processes of its own, so handlers record what
they saw as JSON lines in ``$SAMPLE_STATE_FILE`` (one ``write`` per line, in
append mode), and the tests read them back with ``state()`` in
``test_offline_runtime.py``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Any

import boto3
from chalice import Chalice, Response, WebsocketDisconnectedError
from chalice.app import SQSEvent, WebsocketEvent

app = Chalice(app_name="offline-sample")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.websocket_api.session = boto3.session.Session()

IMPORT_ENV = {k: os.environ.get(k) for k in ("SAMPLE_TABLE", "CONFIG_VAR", "OVERRIDE_ME")}
INIT = {"pid": os.getpid(), "token": uuid.uuid4().hex}  # what this module's init saw and drew


def ws_route(route_key: str) -> Any:
    """Register a handler for a custom route key.

    Chalice 1.34 only exposes ``$connect``/``$disconnect``/``$default``
    decorators; its registration function accepts any route key, which is
    enough to check that the runtime selects routes on ``body.action``.
    """
    return app._create_registration_function(handler_type="on_ws_message", registration_kwargs={"route_key": route_key})


_lock = threading.Lock()
CALLS = {"n": 0}  # module state: one counter per execution environment


def record(kind: str, **data: Any) -> None:
    """Append one observation for the tests (atomic for lines this short, across processes)."""
    path = os.environ.get("SAMPLE_STATE_FILE")
    if not path:
        return
    line = json.dumps({"kind": kind, "pid": os.getpid(), "t": time.time(), **data}) + "\n"
    with _lock, open(path, "a", encoding="utf-8") as fh:
        fh.write(line)


@app.route("/hello")
def hello() -> dict[str, Any]:
    return {"hello": "world", "import_env": IMPORT_ENV, "worker_var": os.environ.get("WORKER_VAR")}


@app.route("/lambda")
def lambda_info() -> dict[str, Any]:
    """What the execution environment looks like from inside: context, reserved variables, module state."""
    context = app.lambda_context
    CALLS["n"] += 1
    return {
        "pid": os.getpid(),
        "init": INIT,
        "calls": CALLS["n"],
        "event": app.current_request.to_original_event(),
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
        "env": {
            k: v for k, v in os.environ.items() if k.startswith(("AWS_LAMBDA_", "AWS_REGION", "_HANDLER", "LAMBDA_"))
        },
        "tz": os.environ.get("TZ"),
    }


@app.route("/sleep")
def sleep() -> dict[str, Any]:
    seconds = float((app.current_request.query_params or {}).get("s", "0"))
    time.sleep(seconds)
    return {"slept": seconds, "pid": os.getpid(), "remaining_ms": app.lambda_context.get_remaining_time_in_millis()}


@app.route("/big")
def big() -> Response:
    size = int(float((app.current_request.query_params or {}).get("mb", "1")) * 1024 * 1024)
    return Response(body="x" * size, headers={"Content-Type": "text/plain"})


@app.route("/upload", methods=["POST"], content_types=["application/octet-stream", "application/json"])
def upload() -> dict[str, Any]:
    return {"bytes": len(app.current_request.raw_body or b"")}


@app.on_ws_connect()
def connect(event: WebsocketEvent) -> Response | None:
    raw = event.to_dict()
    query = raw.get("queryStringParameters") or {}
    record("connect", event=raw)
    if query.get("slow"):
        time.sleep(float(query["slow"]))
    # AWS: nothing can be posted to a connection while its $connect runs.
    try:
        app.websocket_api.send(event.connection_id, "too early")
        result = "sent"
    except WebsocketDisconnectedError:
        result = "gone"
    record("connect_post", connectionId=event.connection_id, result=result)
    if query.get("deny"):
        return Response(status_code=403, body="")
    return None


@ws_route("echo")
def echo(event: WebsocketEvent) -> None:
    body = event.json_body
    record("message", route="echo", connectionId=event.connection_id, body=event.body, phase="start")
    if isinstance(body, dict) and body.get("sleep"):
        time.sleep(float(body["sleep"]))
    record("message", route="echo", connectionId=event.connection_id, body=event.body, phase="end")
    app.websocket_api.send(event.connection_id, json.dumps({"route": "echo", "body": event.json_body}))


@ws_route("whoami")
def whoami(event: WebsocketEvent) -> None:
    # A client built with no endpoint: AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI applies.
    client = boto3.client("apigatewaymanagementapi")
    info = client.get_connection(ConnectionId=event.connection_id)
    payload = {"route": "whoami", "connectionId": event.connection_id, "sourceIp": info["Identity"]["SourceIp"]}
    client.post_to_connection(ConnectionId=event.connection_id, Data=json.dumps(payload).encode())


@ws_route("boom")
def boom(event: WebsocketEvent) -> None:
    raise RuntimeError("boom")


@app.on_ws_message()
def default(event: WebsocketEvent) -> None:
    record("message", route="$default", connectionId=event.connection_id, body=event.body)
    app.websocket_api.send(event.connection_id, json.dumps({"route": "$default", "body": event.body}))


@app.on_ws_disconnect()
def disconnect(event: WebsocketEvent) -> None:
    record("disconnect", connectionId=event.connection_id, event=event.to_dict())


@app.on_sqs_message(queue="offline-sample-jobs", batch_size=2, maximum_concurrency=5)
def worker(event: SQSEvent) -> dict[str, Any]:
    """Fails a record while its receive count is <= its ``fail_times``."""
    records = event.to_dict()["Records"]
    record("sqs_start", records=records, worker_var=os.environ.get("WORKER_VAR"))
    try:
        failures = []
        for item in records:
            body = json.loads(item["body"])
            count = int(item["attributes"]["ApproximateReceiveCount"])
            record("sqs_receive", id=body["id"], count=count)
            time.sleep(float(body.get("sleep", 0)))
            if count <= int(body.get("fail_times", 0)):
                if body.get("retry_now"):
                    boto3.client("sqs").change_message_visibility(
                        QueueUrl=os.environ["JOBS_QUEUE_URL"],
                        ReceiptHandle=item["receiptHandle"],
                        VisibilityTimeout=0,
                    )
                failures.append({"itemIdentifier": item["messageId"]})
        return {"batchItemFailures": failures}
    finally:
        record("sqs_end")


@app.on_sqs_message(queue="offline-sample-plain", batch_size=2)
def plain_worker(event: SQSEvent) -> dict[str, Any]:
    """No ReportBatchItemFailures in the template: its batchItemFailures must be ignored."""
    for item in event.to_dict()["Records"]:
        body = json.loads(item["body"])
        count = int(item["attributes"]["ApproximateReceiveCount"])
        record("plain_receive", id=body["id"], count=count)
        if count <= int(body.get("sleep_times", 1)):
            time.sleep(float(body.get("sleep", 0)))
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event.to_dict()["Records"]]}


@app.schedule("rate(1 minute)")
def tick(event: Any) -> None:
    """Sleeps and fails as ``$SAMPLE_STATE_FILE.tick`` says (JSON), so a test can make runs overlap and fail."""
    control: dict[str, Any] = {}
    path = os.environ.get("SAMPLE_STATE_FILE", "") + ".tick"
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            control = json.load(fh)
    raw = event.to_dict()
    record("tick", id=raw["id"], phase="start", account=raw["account"], resources=raw["resources"])
    time.sleep(float(control.get("sleep", 0)))
    record("tick", id=event.to_dict()["id"], phase="end")
    if control.get("fail"):
        raise RuntimeError("tick failed")
