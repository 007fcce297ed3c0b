"""Conformance: the local runtime behaves as AWS documents Lambda and API Gateway behave.

One test per documented behaviour, each naming the AWS page it follows, all driven by
the sample app (tests/offline/sample_app) over real HTTP, WebSocket and SQS (moto).
The module's runtime shortens what AWS fixes so a test can see it: the WebSocket idle
timeout is 3 s and the maximum duration 8 s, schedules run every 1.2 s (scale 0.02).
"""

from __future__ import annotations

import json
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import websocket

from offline import LocalRuntime
from offline.esm import MappingError
from offline.schedules import ScheduleError, ScheduleRunner, rate_seconds
from tests.offline.conftest import State
from tests.support import wait_until

pytestmark = pytest.mark.timeout(90)


def get(rt: LocalRuntime, path: str, timeout: float = 10) -> requests.Response:
    assert rt.urls is not None
    return requests.get(rt.urls.rest + path, timeout=timeout)


def close_code(ws: websocket.WebSocket) -> int:
    """The close code the server sent (reads frames until the close frame)."""
    while True:
        opcode, frame = ws.recv_data_frame(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame.data[:2], "big")


# ------------------------------------------------------------ Lambda: execution model
def test_each_function_sees_only_its_own_config_variables(rt: LocalRuntime, state: State) -> None:
    """Environment variables are per function.

    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html
    """
    # GIVEN WORKER_VAR configured for the SQS function `worker` only
    body = get(rt, "/hello").json()
    # THEN the REST function does not see it, the stage-wide and explicit ones it does
    assert body["worker_var"] is None
    assert body["import_env"]["CONFIG_VAR"] == "from-config"
    assert body["import_env"]["OVERRIDE_ME"] == "explicit"
    # AND the SQS function sees its own
    boto3.client("sqs").send_message(QueueUrl=rt.env["JOBS_QUEUE_URL"], MessageBody=json.dumps({"id": "env-1"}))
    line = wait_until(
        lambda: next((r for r in state.lines("sqs_start") if "env-1" in json.dumps(r["records"])), None), 15, "env-1"
    )
    assert line["worker_var"] == "worker"


def test_reserved_environment_variables(rt: LocalRuntime) -> None:
    """Defined runtime environment variables.

    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html
    """
    env = get(rt, "/lambda").json()["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "offline-sample-dev-api_handler"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/offline-sample-dev-api_handler"
    assert "[$LATEST]" in env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["_HANDLER"] == "app.app"
    assert env["LAMBDA_TASK_ROOT"].endswith("sample_app")


def test_context_object(rt: LocalRuntime) -> None:
    """The context object's attributes and remaining time.

    https://docs.aws.amazon.com/lambda/latest/dg/python-context.html
    """
    ctx = get(rt, "/lambda").json()["context"]
    assert ctx["function_name"] == "offline-sample-dev-api_handler"
    assert ctx["function_version"] == "$LATEST"
    assert (
        ctx["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:offline-sample-dev-api_handler"
    )
    assert ctx["memory_limit_in_mb"] == 256  # an int, as on AWS (Chalice local gave None for REST)
    assert len(ctx["aws_request_id"]) == 36
    assert ctx["log_group_name"] == "/aws/lambda/offline-sample-dev-api_handler"
    assert 0 < ctx["remaining_ms"] <= 2000  # lambda_timeout 2 s
    late = get(rt, "/sleep?s=1.5").json()
    assert 0 <= late["remaining_ms"] <= 600


def test_warm_reuse_keeps_module_state_per_environment(rt: LocalRuntime) -> None:
    """An execution environment is reused (warm) and keeps its module state.

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    """
    first, second = get(rt, "/lambda").json(), get(rt, "/lambda").json()
    # One request at a time: the same warm environment, its module-level counter going up
    assert second["pid"] == first["pid"]
    assert second["calls"] == first["calls"] + 1


def test_concurrent_invocations_get_their_own_environments(rt: LocalRuntime) -> None:
    """One event at a time per environment; concurrency means more environments.

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    """
    with ThreadPoolExecutor(max_workers=3) as pool:
        started = time.monotonic()
        replies = list(pool.map(lambda _: get(rt, "/sleep?s=0.8").json(), range(3)))
        elapsed = time.monotonic() - started
    assert len({r["pid"] for r in replies}) == 3  # three environments, one event each
    assert elapsed < 2.2  # ran side by side, not one after another (3 x 0.8 s)


def test_rest_function_timeout_is_502_and_resets_the_environment(rt: LocalRuntime) -> None:
    """(timeouts reset the environment); (a failed Lambda integration is a 502 "Internal server error").

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
    """
    pool = rt.functions["api_handler"]
    before = pool.timeouts
    started = time.monotonic()
    resp = get(rt, "/sleep?s=4")  # lambda_timeout is 2 s
    assert resp.status_code == 502
    assert resp.json() == {"message": "Internal server error"}
    assert 1.8 < time.monotonic() - started < 3.5
    assert pool.timeouts == before + 1
    assert get(rt, "/hello").status_code == 200  # a new environment serves the next request


def test_each_environment_runs_the_functions_init(rt: LocalRuntime) -> None:
    """Every execution environment runs the init phase (the handler module's top-level code) itself:
    what init computes (its pid, a random token) is the environment's own (OFFLINE_INIT=environment,
    which this module's runtime sets).

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    """
    # WHEN two requests run at once, so that two environments serve them
    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(lambda _: get(rt, "/lambda").json(), range(2))
    for body in (first, second):
        assert body["init"]["pid"] == body["pid"]  # the module was imported in this environment
    if first["pid"] != second["pid"]:
        assert first["init"]["token"] != second["init"]["token"]
    assert rt.functions["api_handler"].cold_starts >= 1


def test_reserved_concurrency_throttles_the_invocations_above_it(rt: LocalRuntime) -> None:
    """Reserved concurrency is the most environments a function gets; an invocation above it is
    throttled (TooManyRequestsException), which API Gateway answers with a 500.

    https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
    https://repost.aws/knowledge-center/api-gateway-internal-server-error
    """
    # GIVEN api_handler's reserved concurrency of 4 (config.json) WHEN 6 requests run at once
    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(lambda _: get(rt, "/sleep?s=1"), range(6)))
    statuses = sorted(r.status_code for r in replies)
    # THEN at most 4 ran, the others were refused without running
    assert statuses.count(200) <= 4 and 500 in statuses, statuses
    assert all(r.json() == {"message": "Internal server error"} for r in replies if r.status_code == 500)
    assert rt.functions["api_handler"].max_busy_seen <= 4


# ------------------------------------------------------------ API Gateway REST: front door
def test_undefined_method_is_missing_authentication_token(rt: LocalRuntime) -> None:
    """MISSING_AUTHENTICATION_TOKEN (403) for a method the API does not define.

    https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
    """
    assert rt.urls is not None
    resp = requests.post(rt.urls.rest + "/hello", json={}, timeout=5)  # /hello is GET only
    assert resp.status_code == 403  # not Chalice's 405
    assert resp.json() == {"message": "Missing Authentication Token"}
    assert resp.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_integration_timeout_is_504(rt: LocalRuntime) -> None:
    """The integration timeout (29 s, shortened here to 1 s) answers 504.

    https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
    """
    assert rt.rest is not None
    proxy = rt.rest.proxy
    proxy.integration_timeout_s = 1.0
    try:
        started = time.monotonic()
        resp = get(rt, "/sleep?s=1.6")
        assert resp.status_code == 504
        assert resp.json() == {"message": "Endpoint request timed out"}
        assert time.monotonic() - started < 1.5
    finally:
        proxy.integration_timeout_s = 29.0
    time.sleep(0.8)  # the function itself runs on to its end, then its environment is free again


def test_request_payload_limit_is_10_mb(rt: LocalRuntime) -> None:
    """Payload size 10 MB; : REQUEST_TOO_LARGE (413).

    https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
    https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
    """
    assert rt.urls is not None
    headers = {"Content-Type": "application/octet-stream"}
    ok = requests.post(rt.urls.rest + "/upload", data=b"x" * (5 * 1024 * 1024), headers=headers, timeout=30)
    assert ok.status_code == 200 and ok.json() == {"bytes": 5 * 1024 * 1024}
    too_big = requests.post(rt.urls.rest + "/upload", data=b"x" * (10 * 1024 * 1024 + 1), headers=headers, timeout=30)
    assert too_big.status_code == 413
    assert too_big.json() == {"message": "Request Too Long"}


def test_a_request_over_lambdas_6_mb_is_500(rt: LocalRuntime) -> None:
    """A request API Gateway accepts (under 10 MB) but Lambda's 6 MB invocation payload refuses:
    "If the Lambda API rejects the invocation request, API Gateway returns a 500."

    https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html
    https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
    """
    assert rt.urls is not None
    headers = {"Content-Type": "application/octet-stream"}
    cold_starts = rt.functions["api_handler"].cold_starts
    resp = requests.post(rt.urls.rest + "/upload", data=b"x" * (7 * 1024 * 1024), headers=headers, timeout=30)
    assert resp.status_code == 500 and resp.json() == {"message": "Internal server error"}
    assert rt.functions["api_handler"].cold_starts == cold_starts  # no environment was taken for it


def test_response_payload_limit_is_6_mb(rt: LocalRuntime) -> None:
    """Invocation payload 6 MB (synchronous) - a larger response fails the integration.

    https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
    """
    assert get(rt, "/big?mb=5", timeout=30).status_code == 200
    resp = get(rt, "/big?mb=6.5", timeout=30)
    assert resp.status_code == 502
    assert resp.json() == {"message": "Internal server error"}


def test_proxy_event_has_the_full_request_context(rt: LocalRuntime) -> None:
    """Input format of a Lambda function for proxy integration.

    https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
    """
    event = get(rt, "/lambda?a=1&a=2").json()["event"]
    ctx = event["requestContext"]
    for key in (
        "accountId",
        "apiId",
        "domainName",
        "extendedRequestId",
        "httpMethod",
        "identity",
        "path",
        "protocol",
        "requestId",
        "requestTime",
        "requestTimeEpoch",
        "resourceId",
        "resourcePath",
        "stage",
    ):
        assert key in ctx, key
    assert ctx["stage"] == "api" and ctx["path"] == "/api/lambda" and ctx["resourcePath"] == "/lambda"
    assert ctx["accountId"] == "123456789012" and ctx["protocol"] == "HTTP/1.1"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1" and ctx["identity"]["userAgent"].startswith("python-requests")
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/lambda", "/lambda", "GET")
    assert event["queryStringParameters"] == {"a": "2"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert event["multiValueHeaders"]["user-agent"][0].startswith("python-requests")


# ------------------------------------------------------------ API Gateway WebSocket limits
def test_frame_over_32_kb_closes_1009(rt: LocalRuntime) -> None:
    """Frame size 32 KB; a larger frame closes the connection with 1009.

    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html
    """
    assert rt.urls is not None
    ws = websocket.create_connection(rt.urls.websocket, timeout=5)
    ws.send(json.dumps({"action": "echo", "pad": "x" * 30_000}))
    assert json.loads(ws.recv())["route"] == "echo"  # under the limit: fine
    ws.send(json.dumps({"action": "echo", "pad": "x" * 33_000}))
    assert close_code(ws) == 1009


def test_binary_frame_closes_1003(rt: LocalRuntime) -> None:
    """The API's routes take text; a binary frame closes the connection (1003, unsupported data).

    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html
    """
    assert rt.urls is not None
    ws = websocket.create_connection(rt.urls.websocket, timeout=5)
    ws.send_binary(b"\x00\x01")
    assert close_code(ws) == 1003


def test_idle_connection_is_closed(rt: LocalRuntime, state: State) -> None:
    """Idle connection timeout (10 minutes; 3 s in this module).

    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html
    """
    assert rt.urls is not None
    ws = websocket.create_connection(rt.urls.websocket, timeout=10)
    started = time.monotonic()
    assert close_code(ws) == 1001
    assert 2.5 < time.monotonic() - started < 5.5


def test_connection_duration_is_limited(rt: LocalRuntime) -> None:
    """Connection duration 2 hours (8 s in this module), however active the connection.

    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html
    """
    assert rt.urls is not None
    ws = websocket.create_connection(rt.urls.websocket, timeout=10)
    started = time.monotonic()
    closed = None
    while time.monotonic() - started < 12:
        try:
            ws.send(json.dumps({"action": "echo"}))
            ws.recv()
        except (websocket.WebSocketConnectionClosedException, BrokenPipeError, ConnectionError):
            closed = time.monotonic() - started
            break
        time.sleep(1)
    assert closed is not None and 7 < closed < 11


def test_messages_of_one_connection_run_concurrently(rt: LocalRuntime, state: State) -> None:
    """Each message is its own invocation: messages on one connection are not queued behind each other.

    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html
    """
    assert rt.urls is not None
    ws = websocket.create_connection(rt.urls.websocket, timeout=10)
    since = time.time()
    for i in range(2):
        ws.send(json.dumps({"action": "echo", "sleep": 1.0, "i": i}))
    replies = [json.loads(ws.recv()) for _ in range(2)]
    assert sorted(r["body"]["i"] for r in replies) == [0, 1]
    assert time.time() - since < 1.9
    echo = [r for r in state.lines("message") if r["route"] == "echo" and r["t"] >= since]
    assert State.overlap(echo) == 2
    ws.close()


# ------------------------------------------------------------ SQS event source mapping
def plain(rt: LocalRuntime) -> tuple[Any, str]:
    return boto3.client("sqs"), rt.env["PLAIN_QUEUE_URL"]


def test_batch_item_failures_ignored_without_report_batch_item_failures(rt: LocalRuntime, state: State) -> None:
    """Without ReportBatchItemFailures in FunctionResponseTypes, a successful return deletes
    the whole batch, whatever it says.

    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
    """
    sqs, url = plain(rt)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"id": "rbif-off"}))
    wait_until(lambda: any(r["id"] == "rbif-off" for r in state.lines("plain_receive")), 15, "the first receive")
    time.sleep(3.5)  # past the 2 s visibility timeout: a kept message would be back
    assert [r["count"] for r in state.lines("plain_receive") if r["id"] == "rbif-off"] == [1]


def test_sqs_function_timeout_returns_the_batch_to_the_queue(rt: LocalRuntime, state: State) -> None:
    """A function error (here a timeout) returns the batch; it is retried after the visibility timeout, not deleted.

    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
    """
    sqs, url = plain(rt)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"id": "to-1", "sleep": 3, "sleep_times": 1}))
    wait_until(
        lambda: [r["count"] for r in state.lines("plain_receive") if r["id"] == "to-1"] == [1, 2], 20, "a redelivery"
    )
    assert rt.functions["plain_worker"].timeouts >= 1


def test_maximum_concurrency_outside_2_to_1000_is_refused(moto_endpoint: str, tmp_path: Path) -> None:
    """And ScalingConfig (MaximumConcurrency minimum 2, maximum 1000).

    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
    """
    project = tiny_project(tmp_path, "maximum_concurrency=1", visibility=60, timeout=10)
    with pytest.raises(MappingError, match="MaximumConcurrency 1 is invalid"):
        LocalRuntime(project, template="template.json", rest_port=0, ws_port=0).start()


def test_visibility_timeout_shorter_than_function_timeout_is_refused(moto_endpoint: str, tmp_path: Path) -> None:
    """The queue's visibility timeout must be at least the function's timeout.

    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
    """
    project = tiny_project(tmp_path, "maximum_concurrency=2", visibility=5, timeout=10)
    with pytest.raises(MappingError, match="Queue visibility timeout: 5 seconds is less than Function timeout: 10"):
        LocalRuntime(project, template="template.json", rest_port=0, ws_port=0).start()


def tiny_project(root: Path, mapping_args: str, visibility: int, timeout: int) -> Path:
    (root / ".chalice").mkdir()
    (root / "app.py").write_text(
        textwrap.dedent(
            f"""
            from chalice import Chalice
            app = Chalice(app_name="tiny")

            @app.on_sqs_message(queue="tiny-q-{visibility}", batch_size=1, {mapping_args})
            def consume(event):
                return None
            """
        )
    )
    config = {"version": "2.0", "app_name": "tiny", "stages": {"dev": {"lambda_functions": {"consume": {}}}}}
    config["stages"]["dev"]["lambda_functions"]["consume"]["lambda_timeout"] = timeout  # type: ignore[index]
    (root / ".chalice" / "config.json").write_text(json.dumps(config))
    queue = {
        "Type": "AWS::SQS::Queue",
        "Properties": {"QueueName": f"tiny-q-{visibility}", "VisibilityTimeout": visibility},
    }
    (root / "template.json").write_text(json.dumps({"Resources": {"Q": queue}}))
    return root


# ------------------------------------------------------------ EventBridge schedules
def test_rate_expression_units_follow_eventbridge() -> None:
    """Singular unit for a value of 1, plural otherwise; a positive value.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html
    """
    assert rate_seconds("rate(1 minute)") == 60
    assert rate_seconds("rate(5 minutes)") == 300
    for bad in ("rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "rate(1 fortnight)"):
        with pytest.raises(ScheduleError):
            rate_seconds(bad)
    assert rate_seconds("cron(0 12 * * ? *)") is None  # cron: skipped, not refused


def test_scheduled_event_names_the_emulators_account(rt: LocalRuntime, state: State, moto_endpoint: str) -> None:
    """EventBridge's event carries the account and the rule's ARN in it; here the emulator's (STS), none made up.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
    """
    since = time.time()
    sts = boto3.client("sts", endpoint_url=moto_endpoint, region_name="us-east-1")
    account = sts.get_caller_identity()["Account"]
    tick = wait_until(lambda: next((r for r in state.lines("tick") if r["t"] >= since), None), 15, "a scheduled run")
    assert tick["account"] == account
    assert tick["resources"] == [f"arn:aws:events:us-east-1:{account}:rule/tick"]


def test_schedule_runner_puts_the_emulators_account_in_every_event() -> None:
    from chalice.app import ScheduledEventConfig

    from offline.project import FunctionSettings

    def account() -> str:
        return "000000000000"  # LocalStack's

    cfg = ScheduledEventConfig("tick", "app.tick", "rate(1 minute)", "")
    function = FunctionSettings("tick", "sample-dev-tick", 60, 128, None)
    runner = ScheduleRunner(cfg, lambda event, context: None, function, "eu-west-1", account)
    events = [runner._event(), runner._event()]
    assert [e["account"] for e in events] == ["000000000000"] * 2
    assert events[0]["resources"] == ["arn:aws:events:eu-west-1:000000000000:rule/tick"]


def test_scheduled_runs_overlap(rt: LocalRuntime, state: State, state_file: Path) -> None:
    """EventBridge invokes asynchronously, so a run that outlasts the period overlaps the next.

    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
    """
    control = Path(str(state_file) + ".tick")
    since = time.time()
    control.write_text(json.dumps({"sleep": 2.0}))
    try:
        wait_until(lambda: state.max_overlap("tick", "", since, phase=True) >= 2, 15, "two overlapping runs")
    finally:
        control.unlink()


def test_failed_async_invocation_is_retried_twice(rt: LocalRuntime, state: State, state_file: Path) -> None:
    """Lambda retries a failed asynchronous invocation twice (1 and 2 minutes later; scaled here).

    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
    """
    control = Path(str(state_file) + ".tick")
    since = time.time()
    control.write_text(json.dumps({"fail": True}))
    try:

        def attempts() -> dict[str, list[float]]:
            runs: dict[str, list[float]] = {}
            for r in state.lines("tick"):
                if r["t"] >= since and r["phase"] == "start":
                    runs.setdefault(r["id"], []).append(r["t"])
            return runs

        first = wait_until(lambda: next((i for i, t in attempts().items() if len(t) >= 3), None), 15, "3 attempts")
        times = attempts()[first]
        time.sleep(3.0)  # a fourth attempt would come 2.4 s after the third at the latest
        assert len(attempts()[first]) == 3
        assert 1.0 < times[1] - times[0] < 2.5  # 60 s x 0.02
        assert 2.2 < times[2] - times[1] < 3.8  # 120 s x 0.02
    finally:
        control.unlink()


# ------------------------------------------------------------ Lambda: the account's concurrency
def test_functions_without_a_reservation_share_the_accounts_unreserved_concurrency(rt: LocalRuntime) -> None:
    """The account's concurrency (1000 by default) less every reservation is shared by the other
    functions; an invocation beyond it is throttled, and API Gateway WebSocket answers the message
    with its 500 frame, while a function with reserved concurrency still runs.
    (Each message sleeps 1 s.)

    https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-response-selection-expressions.html
    """
    assert rt.urls is not None
    account = rt.account
    # GIVEN the default account limit, and 4 + 3 reserved by api_handler and worker (config.json)
    assert account.limit == 1000 and account.unreserved == 1000 - 7
    ws = websocket.create_connection(rt.urls.websocket, timeout=15)
    for i in range(2):  # two warm environments first (a cold start on a busy machine outlasts the idle timeout)
        ws.send(json.dumps({"action": "echo", "sleep": 0.5, "warm": i}))
    assert [json.loads(ws.recv())["route"] for _ in range(2)] == ["echo", "echo"]
    account.limit = 9  # WHEN the account allows 9: 2 unreserved
    try:
        # WHEN 6 messages of a function without a reservation run at once (each sleeps 1.5 s)
        for i in range(6):
            ws.send(json.dumps({"action": "echo", "sleep": 1.0, "n": i}))
        # THEN a function with reserved concurrency is not affected
        assert get(rt, "/hello").status_code == 200
        frames = [json.loads(ws.recv()) for _ in range(6)]
    finally:
        ws.close()
        account.limit = 1000
    echoed = [f for f in frames if f.get("route") == "echo"]
    refused = [f for f in frames if f.get("message") == "Internal server error"]
    # THEN at most 2 ran and the others were throttled without running
    assert len(echoed) + len(refused) == 6 and len(echoed) <= 2 and len(refused) >= 4, frames
    assert account.throttled >= 4


def test_a_throttled_sqs_batch_stays_on_the_queue(rt: LocalRuntime, state: State) -> None:
    """The event source mapping keeps a throttled batch: it comes back after its visibility timeout.

    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
    """
    account = rt.account
    pool = rt.functions["plain_worker"]
    throttled = pool.throttled
    account.limit = 7  # GIVEN no unreserved concurrency left (7 reserved)
    try:
        sqs, url = plain(rt)
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"id": "throttled-1"}))
        wait_until(lambda: pool.throttled > throttled, 15, "a throttled invocation")
        assert not any(r["id"] == "throttled-1" for r in state.lines("plain_receive"))  # it never ran
    finally:
        account.limit = 1000
    # THEN once there is room again, the message is delivered (received more than once: it was kept)
    line = wait_until(
        lambda: next((r for r in state.lines("plain_receive") if r["id"] == "throttled-1"), None), 20, "the redelivery"
    )
    assert line["count"] >= 2
