"""Which AWS actions each Lambda function of the app really calls, found by running it.

Every handler is driven through its flows against moto (in process, ``mock_aws``) while
a wrapper around botocore's ``BaseClient._make_api_call`` records service, operation and
the table/queue/API it addressed. boto3 and pynamodb both end there, so nothing the
engine calls is missed. The calls are then mapped to IAM actions and to the template's
logical ids, ready to compare with the policies in the packaged template.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "resources.json"
WS_API_ID = "wsapi12345"
WS_ENDPOINT = f"https://{WS_API_ID}.execute-api.us-east-1.amazonaws.com/api"

# Chalice handler name -> logical id of the function `chalice package` generates.
FUNCTIONS = {
    "api_handler": "APIHandler",
    "ws_connect": "WebsocketConnect",
    "ws_message": "WebsocketMessage",
    "ws_disconnect": "WebsocketDisconnect",
    "order_worker": "OrderWorker",
    "ws_replay": "WsReplay",
    "sweeper": "Sweeper",
    "order_watcher": "OrderWatcher",
    "client_key": "ClientKey",
    "ws_authorizer": "WsAuthorizer",
}
# The key every driven request carries (the local default admin, from API_KEYS' default),
# and what the $connect authorizer puts on every WebSocket event of the connection.
_KEY = "dev-key"
_AUTHORIZED = {"principalId": "dev", "client": "dev", "admin": "true"}

# SQS batch APIs are authorised by the single-message action.
_SQS_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_WS_METHODS = {"PostToConnection": "POST", "DeleteConnection": "DELETE", "GetConnection": "GET"}

Grant = tuple[str, str]  # (IAM action, resource key such as "OrdersTable" or "OrdersTable/index")


class CallRecorder:
    """Collects IAM grants per function while a label is set (test set-up calls are not counted)."""

    def __init__(self, tables: dict[str, str], queues: dict[str, str]) -> None:
        self.tables = tables  # physical table name -> logical id
        self.queues = queues  # queue URL -> logical id
        self.queue_arns: dict[str, str] = {}  # queue ARN -> logical id
        self.secrets: dict[str, str] = {}  # secret ARN -> logical id
        self.grants: dict[str, set[Grant]] = defaultdict(set)
        self.unmapped: list[str] = []
        self.ignored: set[int] = set()  # ids of the test's own clients
        self._local = threading.local()

    @contextlib.contextmanager
    def as_function(self, name: str) -> Iterator[None]:
        self._local.label = name
        try:
            yield
        finally:
            self._local.label = None

    def record(self, client: Any, operation: str, params: dict[str, Any]) -> None:
        label = getattr(self._local, "label", None)
        if label is None or id(client) in self.ignored:
            return
        service = client.meta.service_model.service_name
        for grant in self._grants(service, operation, params):
            self.grants[label].add(grant)

    def _grants(self, service: str, operation: str, params: dict[str, Any]) -> list[Grant]:
        if service == "dynamodb":
            if operation == "BatchWriteItem" or operation == "BatchGetItem":
                names = list(params.get("RequestItems", {}))
            elif operation in ("TransactWriteItems", "TransactGetItems"):
                names = [next(iter(item.values()))["TableName"] for item in params.get("TransactItems", [])]
            else:
                names = [params.get("TableName", "")]
            grants = []
            for name in names:
                logical = self.tables.get(name)
                if logical is None:
                    self.unmapped.append(f"dynamodb:{operation} {name}")
                    continue
                resource = f"{logical}/index" if params.get("IndexName") else logical
                grants.append((f"dynamodb:{operation}", resource))
            return grants
        if service == "sqs" and operation == "StartMessageMoveTask":
            # Authorised on the source (a DLQ) by its own action, plus SendMessage on the destination
            # (SQS Developer Guide, "Configuring queue permissions for dead-letter queue redrive").
            source = self.queue_arns.get(params.get("SourceArn", ""))
            target = self.queue_arns.get(params.get("DestinationArn", ""))
            if source is None or target is None:
                self.unmapped.append(f"sqs:{operation} {params.get('SourceArn')} -> {params.get('DestinationArn')}")
                return []
            return [("sqs:StartMessageMoveTask", source), ("sqs:SendMessage", target)]
        if service == "sqs":
            logical = self.queues.get(params.get("QueueUrl", ""))
            if logical is None:
                self.unmapped.append(f"sqs:{operation} {params.get('QueueUrl') or params.get('QueueName')}")
                return []
            return [(f"sqs:{_SQS_ACTIONS.get(operation, operation)}", logical)]
        if service == "secretsmanager":
            logical = self.secrets.get(params.get("SecretId", ""))
            if logical is None:
                self.unmapped.append(f"secretsmanager:{operation} {params.get('SecretId')}")
                return []
            return [(f"secretsmanager:{operation}", logical)]
        if service == "apigatewaymanagementapi":
            return [("execute-api:ManageConnections", f"WebsocketAPI/{_WS_METHODS[operation]}")]
        self.unmapped.append(f"{service}:{operation}")
        return []


@contextlib.contextmanager
def _patched_client(recorder: CallRecorder) -> Iterator[None]:
    original = botocore.client.BaseClient._make_api_call

    def recording(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        recorder.record(self, operation_name, api_params)
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = recording  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


def _models() -> list[Any]:
    dynamo = importlib.import_module("chalicelib.dynamo")
    failures = importlib.import_module("chalicelib.failures")
    return [dynamo.OrderModel, failures.FailureModel]


def _load_project_app() -> Any:
    """This project's app.py under its own module name (another test may have imported an `app`)."""
    name = "_solana_exec_app_under_iam_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "app.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].app


def _sqs_event(sqs: Any, url: str, arn: str, receive_count: int | None = None) -> dict[str, Any]:
    """Lambda's SQS event for the next message on ``url``, with its real receipt handle."""
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=120, AttributeNames=["All"]
    ).get("Messages", [])
    assert messages, f"expected a message on {url}"
    message = messages[0]
    attributes = dict(message.get("Attributes", {}))
    if receive_count is not None:
        attributes["ApproximateReceiveCount"] = str(receive_count)
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            }
        ]
    }


def _ws_event(route: str, connection_id: str, body: str | None = None, query: dict[str, str] | None = None):
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    return {
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "connectionId": connection_id,
            "apiId": WS_API_ID,
            "domainName": f"{WS_API_ID}.execute-api.us-east-1.amazonaws.com",
            "stage": "api",
            "authorizer": dict(_AUTHORIZED),
        },
        "queryStringParameters": query,
        "body": body,
        "isBase64Encoded": False,
    }


_SCHEDULED_EVENT = {
    "version": "0",
    "id": "e-1",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-25T10:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {},
}


def record_function_grants(monkeypatch: pytest.MonkeyPatch) -> CallRecorder:
    """Run every handler of the app through its flows against moto; return what each called.

    Must run inside ``mock_aws()``.
    """
    from chalice.test import Client

    from offline.provision import load_template, provision_template

    session = boto3.session.Session(region_name="us-east-1")
    result = provision_template(load_template(TEMPLATE), session=session, name_prefix="iam")
    tables = {c.ref: name for name, c in result.resources.items() if c.type == "AWS::DynamoDB::Table"}
    queues = {c.ref: name for name, c in result.resources.items() if c.type == "AWS::SQS::Queue"}
    arns = {name: c.attributes["Arn"] for name, c in result.resources.items()}
    urls = {name: c.ref for name, c in result.resources.items() if c.type == "AWS::SQS::Queue"}

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = dict(config["stages"]["dev"]["environment_variables"])
    env.update(result.env)
    env.update(
        {
            "WEBSOCKET_API_ENDPOINT": WS_ENDPOINT,
            "DEX_QUOTE_MS": "0",
            "DEX_SUBMIT_MS": "0",
            "ATTEMPT_LEASE_S": "0",
            "STRANDED_AFTER_S": "0",
            "WATCH_WINDOW_S": "0",
            "WS_MAX_CONNECTIONS_PER_KEY": "10",
        }
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    bootstrap = importlib.import_module("chalicelib.bootstrap")
    monkeypatch.setattr(bootstrap, "_engine", None)
    for cls in _models():
        monkeypatch.setattr(cls, "_connection", None, raising=False)
        monkeypatch.setattr(cls.Meta, "table_name", cls.Meta.table_name)  # build_engine rebinds it
    monkeypatch.syspath_prepend(str(ROOT))
    app = _load_project_app()

    recorder = CallRecorder(tables, queues)
    recorder.queue_arns = {arns[name]: name for name in urls}
    sqs = session.client("sqs")
    recorder.ignored.add(id(sqs))
    with _patched_client(recorder), Client(app, stage_name="dev", project_dir=str(ROOT)) as client:
        keyed = _KeyedClient(client)
        _drive_authorizers(keyed, recorder)
        _drive(keyed, recorder, sqs, urls, arns, bootstrap)
        limits_table = next(name for name, logical in tables.items() if logical == "LimitsTable")
        _connection_limit(keyed, recorder, session.client("dynamodb"), limits_table)
    return recorder


class _KeyedClient:
    """chalice.test's client whose HTTP requests carry the key (chalice.local reads `authorization`)."""

    def __init__(self, client: Any) -> None:
        self.lambda_ = client.lambda_
        self.http = self
        self._http = client.http

    def __getattr__(self, method: str) -> Any:
        def call(path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
            return getattr(self._http, method)(path, headers={"authorization": _KEY, **(headers or {})}, **kwargs)

        return call


def _drive_authorizers(client: Any, recorder: CallRecorder) -> None:
    """A key API_KEYS does not know is looked up in the clients table (and refused)."""
    arn = "arn:aws:execute-api:us-east-1:123456789012:rest12345/api/GET/orders"
    with recorder.as_function("client_key"), contextlib.suppress(Exception):
        client.lambda_.invoke("client_key", {"type": "TOKEN", "authorizationToken": "sk_unknown", "methodArn": arn})
    with recorder.as_function("client_key"):
        client.lambda_.invoke("client_key", {"type": "TOKEN", "authorizationToken": _KEY, "methodArn": arn})
    connect_arn = f"arn:aws:execute-api:us-east-1:123456789012:{WS_API_ID}/api/$connect"
    with recorder.as_function("ws_authorizer"), contextlib.suppress(Exception):
        event = {"type": "REQUEST", "methodArn": connect_arn, "headers": {}, "queryStringParameters": {"apiKey": "x"}}
        client.lambda_.invoke("ws_authorizer", event)


_ORDER = json.dumps({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5", "slippage": "0.01"})


def _drive(client: Any, recorder: CallRecorder, sqs: Any, urls: dict, arns: dict, bootstrap: Any) -> None:
    orders_url, replay_url, dlq_url = urls["OrdersQueue"], urls["ReplayQueue"], urls["OrdersDeadLetterQueue"]
    json_headers = {"Content-Type": "application/json"}
    order = json.dumps({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5", "slippage": "0.01"})

    # REST: submit (plain and idempotent), read, list, tokens, health, stats, console, test endpoints.
    with recorder.as_function("api_handler"):
        good = json.loads(client.http.post("/order", headers=json_headers, body=order).body)["orderId"]
        client.http.post("/order", headers={**json_headers, "Idempotency-Key": "k1"}, body=order)
        client.http.post("/order", headers={**json_headers, "Idempotency-Key": "k1"}, body=order)
        client.http.get(f"/order/{good}")
        client.http.get("/orders?limit=5")
        client.http.get("/orders?limit=5&status=pending")
        for path in ("/tokens", "/health", "/api/stats", "/"):
            client.http.get(path)
        bad = json.loads(client.http.post("/test/dlq", headers=json_headers, body="{}").body)["orderId"]
        client.http.post("/test/dlq/bulk", headers=json_headers, body=json.dumps({"count": 1}))

    # WebSocket: connect with ?orderId= (queues a replay), subscribe, bad frame, unsubscribe.
    with recorder.as_function("ws_connect"):
        client.lambda_.invoke("ws_connect", _ws_event("$connect", "conn-a", query={"orderId": good}))
        client.lambda_.invoke("ws_connect", _ws_event("$connect", "conn-b"))
        client.lambda_.invoke("ws_connect", _ws_event("$connect", "conn-gone", query={"orderId": bad}))
    with recorder.as_function("ws_message"):
        for body in (
            json.dumps({"action": "subscribe", "orderId": good}),
            json.dumps({"action": "subscribe", "orderId": bad}),
            "not json",
            json.dumps({"action": "unsubscribe", "orderId": bad}),
        ):
            client.lambda_.invoke("ws_message", _ws_event("$default", "conn-b", body=body))

    # The replay consumer: one that delivers, one whose connection never becomes postable.
    with recorder.as_function("ws_replay"):
        for _ in range(2):
            event = _sqs_event(sqs, replay_url, arns["ReplayQueue"])
            if json.loads(event["Records"][0]["body"])["connectionId"] == "conn-gone":
                _replay_to_gone_connection(client, bootstrap.engine(), event)
            else:
                _invoke_batch(client, "ws_replay", event)
            _delete(sqs, replay_url, event)

    # A replay during which the worker writes a status: the hand-over fails, the replay reads the rest.
    _replay_racing_a_status(client, recorder, sqs, replay_url, arns["ReplayQueue"], bootstrap.engine())

    # The order worker: a good order confirms; a failing one is retried, then fails for good.
    _keep_only(sqs, orders_url, [good, bad])
    with recorder.as_function("order_worker"):
        for _ in range(2):
            event = _sqs_event(sqs, orders_url, arns["OrdersQueue"], receive_count=1)
            _invoke_batch(client, "order_worker", event)
            if json.loads(event["Records"][0]["body"])["orderId"] == bad:
                event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "4"
                _invoke_batch(client, "order_worker", event)
            _delete(sqs, orders_url, event)

    # A replay of an order that is already terminal closes the connection after it.
    client.lambda_.invoke("ws_connect", _ws_event("$connect", "conn-e", query={"orderId": good}))
    with recorder.as_function("ws_replay"):
        event = _sqs_event(sqs, replay_url, arns["ReplayQueue"])
        _invoke_batch(client, "ws_replay", event)
    _delete(sqs, replay_url, event)

    # The sweeper: a pending order to re-queue; dead letters without a failure record, one of
    # them followed by a client, one of an order that confirmed after all.
    stray = _dead_letter_with_subscriber(client, sqs, dlq_url, "conn-c")
    sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"orderId": good, "round": 1}))
    with recorder.as_function("sweeper"):
        client.lambda_.invoke("sweeper", _SCHEDULED_EVENT)

    # The DLQ routes, with a dead letter that has its record and one that has none yet.
    _dead_letter_with_subscriber(client, sqs, dlq_url, "conn-d")
    for order_id in (bad, stray, good):
        sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"orderId": order_id, "round": 1}))
    with recorder.as_function("api_handler"):
        client.http.get("/api/dlq/stats")
        client.http.get("/api/dlq/failed-orders?limit=5")
        client.http.post("/api/dlq/redrive", headers=json_headers, body="{}")
    sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"orderId": bad, "round": 2}))
    with recorder.as_function("api_handler"):
        client.http.delete("/api/dlq/clear/failed")
        client.http.delete("/api/dlq/clear")
    _limit_orders(client, recorder, sqs, orders_url, bootstrap)
    _wallet_secret(recorder)


def _connection_limit(client: Any, recorder: CallRecorder, ddb: Any, table: str) -> None:
    """A key at its maximum (10 here): the entry of a connection whose $disconnect was lost is probed."""
    recorder.ignored.add(id(ddb))
    held = {f"conn-h{i}": {"N": str(time.time())} for i in range(8)}
    held["conn-old"] = {"N": str(time.time() - 3600)}
    ddb.put_item(TableName=table, Item={"key": {"S": "conns#dev"}, "conns": {"M": held}})
    with recorder.as_function("ws_connect"):
        for cid in ("conn-l1", "conn-l2"):
            client.lambda_.invoke("ws_connect", _ws_event("$connect", cid))
    with recorder.as_function("ws_disconnect"):
        client.lambda_.invoke("ws_disconnect", _ws_event("$disconnect", "conn-l1"))


def _limit_orders(client: Any, recorder: CallRecorder, sqs: Any, orders_url: str, bootstrap: Any) -> None:
    """Limit orders (issue 17): the watcher triggers one, expires one (pushed), the API cancels one."""
    from chalicelib.orders import SubscriberMode

    json_headers = {"Content-Type": "application/json"}
    base = {"type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1", "slippage": "0.01"}
    ids = []
    with recorder.as_function("api_handler"):
        for price, expires in (("0.0001", 600), ("1000000", 1), ("1000000", 600)):
            body = json.dumps({**base, "limitPrice": price, "expiresInS": expires})
            ids.append(json.loads(client.http.post("/order", headers=json_headers, body=body).body)["orderId"])
    eng = bootstrap.engine()
    for order_id in ids:  # the worker's first delivery: pending -> waiting (its calls are the worker's, counted above)
        eng.executor.run(order_id, 1, 1)
    eng.store.add_subscriber(ids[1], "conn-w", SubscriberMode.OPEN)
    time.sleep(1.1)
    with recorder.as_function("order_watcher"):
        client.lambda_.invoke("order_watcher", _SCHEDULED_EVENT)
    with recorder.as_function("api_handler"):
        client.http.delete(f"/order/{ids[2]}")
    _keep_only(sqs, orders_url, [])


def _wallet_secret(recorder: CallRecorder) -> None:
    """On a Solana cluster the order worker reads its signing key from the wallet secret, on
    its first build (chalicelib/onchain_wiring.py); no other function reads it."""
    import dataclasses
    import tempfile

    from solders.keypair import Keypair

    from chalicelib.config import load_settings
    from chalicelib.onchain_wiring import build_chain_parts

    secrets = boto3.session.Session(region_name="us-east-1").client("secretsmanager")
    recorder.ignored.add(id(secrets))
    keypair = Keypair()
    arn = secrets.create_secret(Name="iam-wallet", SecretString=json.dumps(list(bytes(keypair))))["ARN"]
    recorder.secrets[arn] = "WalletSecret"
    with tempfile.NamedTemporaryFile("w", suffix=".json") as registry:
        json.dump(
            {"tokens": [{"symbol": "SOL", "mint": "So11111111111111111111111111111111111111112", "decimals": 9}]},
            registry,
        )
        registry.flush()
        settings = dataclasses.replace(
            load_settings(),
            solana_rpc_url="http://127.0.0.1:9",  # never called: building the parts reaches no cluster
            solana_pools_file=registry.name,
            wallet_secret_id=arn,
            wallet_public_key=str(keypair.pubkey()),
        )
        with recorder.as_function("order_worker"):
            parts = build_chain_parts(settings)
            assert parts.chain.wallet.pubkey() == keypair.pubkey()


def _dead_letter_with_subscriber(client: Any, sqs: Any, dlq_url: str, connection_id: str) -> str:
    """A failing test order, followed by a ?orderId= client, whose message sits in the DLQ with no failure record."""
    body = client.http.post("/test/dlq", headers={"Content-Type": "application/json"}, body="{}").body
    order_id = str(json.loads(body)["orderId"])
    client.lambda_.invoke("ws_connect", _ws_event("$connect", connection_id, query={"orderId": order_id}))
    replay_url = sqs.get_queue_url(QueueName="solana-exec-ws-replay")["QueueUrl"]
    event = _sqs_event(sqs, replay_url, "arn:aws:sqs:us-east-1:123456789012:solana-exec-ws-replay")
    _invoke_batch(client, "ws_replay", event)  # the connection is now OPEN: a terminal push closes it
    _delete(sqs, replay_url, event)
    sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"orderId": order_id, "round": 1}))
    return order_id


def _replay_racing_a_status(
    client: Any, recorder: CallRecorder, sqs: Any, replay_url: str, replay_arn: str, engine: Any
) -> None:
    """A `routing` written while the replay posts `pending` (decision 011: the replay sends it itself)."""
    from chalicelib.orders import Status, status_event

    body = client.http.post("/order", headers={"Content-Type": "application/json"}, body=_ORDER).body
    order_id = str(json.loads(body)["orderId"])
    client.lambda_.invoke("ws_connect", _ws_event("$connect", "conn-f", query={"orderId": order_id}))
    created = engine.store.get(order_id)
    real_post = engine.notifier.post

    def post(cid: str, msg: dict[str, Any]) -> bool:
        if cid == "conn-f" and msg.get("seq") == 1:
            engine.store.append_status(created, status_event(order_id, Status.ROUTING, 2, attempt=1), {})
        return bool(real_post(cid, msg))

    engine.notifier.post = post
    try:
        with recorder.as_function("ws_replay"):
            event = _sqs_event(sqs, replay_url, replay_arn)
            _invoke_batch(client, "ws_replay", event)
    finally:
        engine.notifier.post = real_post
    _delete(sqs, replay_url, event)


def _replay_to_gone_connection(client: Any, engine: Any, event: dict[str, Any]) -> None:
    """A connection that answers 410 to every post: retried with a delay, then given up on."""
    real_post = engine.notifier.post
    engine.subscriptions.replay_retry_delays_s = ()
    engine.notifier.post = lambda cid, msg: False if cid == "conn-gone" else real_post(cid, msg)
    try:
        _invoke_batch(client, "ws_replay", event)
        event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "3"
        _invoke_batch(client, "ws_replay", event)
    finally:
        engine.notifier.post = real_post


def _delete(sqs: Any, url: str, event: dict[str, Any]) -> None:
    """What the event source mapping does after the invocation (not the function's own call)."""
    sqs.delete_message(QueueUrl=url, ReceiptHandle=event["Records"][0]["receiptHandle"])


def _invoke_batch(client: Any, name: str, event: dict[str, Any]) -> None:
    """Invoke an SQS consumer; when every record fails, Powertools raises (Lambda then keeps the batch)."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    with contextlib.suppress(BatchProcessingError):
        client.lambda_.invoke(name, event)


def _keep_only(sqs: Any, url: str, keep: list[str]) -> None:
    """Leave exactly one message per order in ``keep`` on the queue (duplicates came from the sweeper)."""
    seen: dict[str, str] = {}
    for _ in range(20):
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
        if not batch:
            break
        for message in batch:
            seen.setdefault(json.loads(message["Body"])["orderId"], message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    for order_id in keep:
        sqs.send_message(QueueUrl=url, MessageBody=seen.get(order_id, json.dumps({"orderId": order_id, "round": 1})))
