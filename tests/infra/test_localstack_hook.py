"""The LocalStack init hook provisions infra/resources.json through offline.provision.

The hook only speaks boto3 to an endpoint, so here it runs against moto's server on a free
local port, as a script in an interpreter where the `offline` package's own `__init__` is not
imported. On a real LocalStack it runs in every `TEST_EMULATOR=localstack` test module
(tests/emulators.py starts LocalStack with it), where a failed hook fails the start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest

from tests.support import free_port, stop_process, wait_http

from .conftest import ROOT

HOOK = ROOT / "localstack" / "init" / "ready.d" / "provision.py"


@pytest.fixture
def moto_endpoint():
    pytest.importorskip("moto.server")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/moto-api/", timeout=30, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def test_hook_creates_the_tables_and_queues_make_run_uses(moto_endpoint, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # LocalStack's interpreter has boto3 but not the local runtime's dependencies: hide them
    blocked = tmp_path / "blocked"
    for name in ("aiohttp", "chalice", "websocket"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is not in LocalStack')\n")
    env.update(AWS_ENDPOINT_URL=moto_endpoint, STAGE="dev", HOME=str(tmp_path), PYTHONPATH=str(blocked))
    # GIVEN an endpoint with nothing on it WHEN the hook runs as LocalStack runs it
    proc = subprocess.run(
        [sys.executable, str(HOOK)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    printed = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    # THEN the tables and queues exist under the names `make run` (stage dev) looks for
    assert printed["ORDERS_TABLE"] == "solana-exec-dev-OrdersTable"
    assert "WEBSOCKET_API_ENDPOINT" not in printed
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    tables = session.client("dynamodb", endpoint_url=moto_endpoint).list_tables()["TableNames"]
    assert {f"solana-exec-dev-{t}Table" for t in ("Orders", "Failures")} <= set(tables)
    sqs = session.client("sqs", endpoint_url=moto_endpoint)
    url = sqs.get_queue_url(QueueName="solana-exec-orders")["QueueUrl"]
    redrive = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert int(json.loads(redrive["RedrivePolicy"])["maxReceiveCount"]) == 4
