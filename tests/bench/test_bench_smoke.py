"""The benchmark end to end on a few orders with no venue delay: the report's shape and invariants.

Not a performance test: no figure is asserted against a threshold. Figures come from
`python -m bench ...` runs, see docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_bench_runs_twenty_orders_and_reports_everything(tmp_path):
    # GIVEN the bench with its own moto + runtime, 20 orders, zero delays
    cmd = [sys.executable, "-m", "bench", "zero", "--orders", "20", "--concurrency", "10", "--warmup", "2"]
    cmd += ["--out", str(tmp_path)]
    # WHEN it runs
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "zero.json").read_text())
    summary = report["summary"]
    orders = summary["orders"]

    # THEN every order confirmed, none lost, every stream complete
    assert orders["requested"] == orders["accepted"] == orders["confirmed"] == 20
    assert orders["failed"] == orders["unfinished"] == orders["postErrors"] == 0
    assert orders["lost"]["lost"] == 0 and orders["incompleteStreams"] == 0
    # AND never more than the consumer's 10 at once
    assert 1 <= summary["peakExecuting"] <= 10
    # AND the figures are there and consistent
    for key in ("latencyMs", "overheadMs", "queueWaitMs", "wsLagMs", "postMs"):
        p = summary[key]
        assert p["count"] > 0 and p["p50"] <= p["p90"] <= p["p99"] <= p["max"], key
    assert summary["throughputPerMin"] > 0 and summary["durationS"] > 0
    assert summary["simulatedMs"]["meanTotal"] == 0 and summary["ceilingPerMin"] is None
    # AND AWS calls were counted per operation, each with a reason
    table = {(r["caller"], r["service"], r["operation"]): r for r in report["awsCallsPerOrder"]}
    assert table[("api", "dynamodb", "PutItem")]["perOrder"] == 1
    assert table[("api", "sqs", "SendMessage")]["perOrder"] == 1
    assert table[("lambda:order_worker", "dynamodb", "UpdateItem")]["perOrder"] >= 4
    assert table[("esm:order_worker", "sqs", "ReceiveMessage")]["count"] >= 1
    assert all(r["why"] and not r["why"].startswith("UNEXPLAINED") for r in table.values())
    # AND a first delivery executes from the order its message carries: the worker reads nothing
    assert ("lambda:order_worker", "dynamodb", "GetItem") not in table
    # AND no connection table is written on subscribe (decision 005); the limits table counts connections (016)
    assert {r["kind"] for r in report["awsCallsPerOrder"] if r["service"] == "dynamodb"} <= {"orders", "limits"}
    # AND the run is checked against its goals
    assert {"goal": "no accepted order lost", "value": 0, "met": True} in report["targets"]
    # AND a cost per million orders, the PNG and the command to repeat it
    assert report["cost"]["byLambdaMemory"]["128MB"]["total"] > 0
    assert (tmp_path / "zero.png").stat().st_size > 0
    assert "python -m bench zero --orders 20" in done.stdout
