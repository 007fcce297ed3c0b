"""A small Chalice app that exercises every part of the offline runtime.

Handlers record what they saw in ``STATE`` (same process as the tests), so
the tests can assert on what the runtime delivered.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import boto3
from chalice import Chalice, Response, WebsocketDisconnectedError
from chalice.app import SQSEvent, WebsocketEvent

app = Chalice(app_name="offline-sample")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.websocket_api.session = boto3.session.Session()

IMPORT_ENV = {k: os.environ.get(k) for k in ("SAMPLE_TABLE", "CONFIG_VAR", "OVERRIDE_ME")}


def ws_route(route_key: str) -> Any:
    """Register a handler for a custom route key.

    Chalice 1.34 only exposes ``$connect``/``$disconnect``/``$default``
    decorators; its registration function accepts any route key, which is
    enough to check that the runtime selects routes on ``body.action``.
    """
    return app._create_registration_function(handler_type="on_ws_message", registration_kwargs={"route_key": route_key})


_lock = threading.Lock()
STATE: dict[str, Any] = {
    "connect": [],
    "connect_post": {},
    "disconnect": [],
    "messages": [],
    "sqs_batches": [],
    "sqs_receives": {},
    "in_flight": 0,
    "max_in_flight": 0,
}


@app.route("/hello")
def hello() -> dict[str, Any]:
    return {"hello": "world", "import_env": IMPORT_ENV, "worker_var": os.environ.get("WORKER_VAR")}


@app.on_ws_connect()
def connect(event: WebsocketEvent) -> Response | None:
    raw = event.to_dict()
    query = raw.get("queryStringParameters") or {}
    with _lock:
        STATE["connect"].append(raw)
    if query.get("slow"):
        time.sleep(float(query["slow"]))
    # AWS: nothing can be posted to a connection while its $connect runs.
    try:
        app.websocket_api.send(event.connection_id, "too early")
        result = "sent"
    except WebsocketDisconnectedError:
        result = "gone"
    with _lock:
        STATE["connect_post"][event.connection_id] = result
    if query.get("deny"):
        return Response(status_code=403, body="")
    return None


@ws_route("echo")
def echo(event: WebsocketEvent) -> None:
    with _lock:
        STATE["messages"].append(("echo", event.connection_id, event.body))
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
    with _lock:
        STATE["messages"].append(("$default", event.connection_id, event.body))
    app.websocket_api.send(event.connection_id, json.dumps({"route": "$default", "body": event.body}))


@app.on_ws_disconnect()
def disconnect(event: WebsocketEvent) -> None:
    with _lock:
        STATE["disconnect"].append(event.connection_id)


@app.on_sqs_message(queue="offline-sample-jobs", batch_size=2, maximum_concurrency=5)
def worker(event: SQSEvent) -> dict[str, Any]:
    """Fails a record while its receive count is <= its ``fail_times``."""
    records = event.to_dict()["Records"]
    with _lock:
        STATE["in_flight"] += 1
        STATE["max_in_flight"] = max(STATE["max_in_flight"], STATE["in_flight"])
        STATE["sqs_batches"].append(records)
    try:
        failures = []
        for record in records:
            body = json.loads(record["body"])
            count = int(record["attributes"]["ApproximateReceiveCount"])
            with _lock:
                STATE["sqs_receives"].setdefault(body["id"], []).append(count)
            time.sleep(float(body.get("sleep", 0)))
            if count <= int(body.get("fail_times", 0)):
                if body.get("retry_now"):
                    boto3.client("sqs").change_message_visibility(
                        QueueUrl=os.environ["JOBS_QUEUE_URL"],
                        ReceiptHandle=record["receiptHandle"],
                        VisibilityTimeout=0,
                    )
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}
    finally:
        with _lock:
            STATE["in_flight"] -= 1
