"""python -m bench.emulators [--calls N] [--orders N] [--concurrency C] [--only moto|localstack]

moto and LocalStack side by side, one run each on this machine, for choosing `make run`'s
default emulator (docs/decisions/008): start-up time, memory, the latency of the AWS calls
the engine makes, and whole orders through the local runtime (zero venue delays, so the
figures are the engine + emulator, not the simulated chain). Prints a table and the command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench import metrics
from bench.load import LoadGenerator
from offline.emulator import Emulator, free_port, start_moto
from offline.localstack import LocalStackEmulator, start_localstack
from tests.support import Runtime

EMULATORS = ("moto", "localstack")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.emulators", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="timed calls per AWS operation")
    parser.add_argument("--depth", type=int, default=200, help="messages in the queue while Receive+Delete is timed")
    parser.add_argument("--orders", type=int, default=100, help="whole orders per emulator")
    parser.add_argument("--concurrency", type=int, default=10, help="orders in flight")
    parser.add_argument("--only", choices=EMULATORS, help="one emulator instead of both")
    parser.add_argument("--out", default="bench/out", help="where emulators.json and the logs go")
    return parser.parse_args(argv)


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (LocalStack's Java is found separately: it has a session of its own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _emulator_pids(emulator: Emulator) -> list[int]:
    assert emulator.process is not None
    pids = _tree(emulator.process.pid)
    if isinstance(emulator, LocalStackEmulator) and emulator.scratch is not None:
        from offline.localstack import _java_pids

        pids += [p for p in _java_pids(str(emulator.scratch)) if p not in pids]
    return pids


@contextlib.contextmanager
def started(kind: str, log_dir: Path) -> Iterator[tuple[Emulator, float]]:
    """The emulator (no init hooks: the runtime provisions, as with moto) and its start-up seconds."""
    t0 = time.monotonic()
    if kind == "moto":
        emulator: Emulator = start_moto(port=free_port())
    else:
        emulator = start_localstack(log_path=log_dir / "localstack.log")
    seconds = time.monotonic() - t0
    try:
        yield emulator, seconds
    finally:
        emulator.stop()


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, max_pool_connections=4),
    )


def _timed(fn: Callable[[int], Any], n: int) -> dict[str, float]:
    for i in range(5):  # warm the connection and the server's code paths
        fn(-1 - i)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"p50": round(statistics.median(times), 2), "p95": round(times[int(0.95 * (len(times) - 1))], 2)}


def call_latency(endpoint: str, calls: int, depth: int) -> dict[str, dict[str, float]]:
    """Per-call latency (ms) of the operations an order makes, one client, one call at a time."""
    ddb, sqs = _client(endpoint, "dynamodb"), _client(endpoint, "sqs")
    table = f"bench-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    history = {"L": [{"S": json.dumps({"status": "pending", "seq": 1})}]}
    result = {
        "PutItem (conditional)": _timed(
            lambda i: ddb.put_item(
                TableName=table,
                Item={"orderId": {"S": f"o-{i}"}, "seq": {"N": "1"}, "history": history},
                ConditionExpression="attribute_not_exists(orderId)",
            ),
            calls,
        ),
        "UpdateItem (conditional, ALL_NEW)": _timed(
            lambda i: ddb.update_item(
                TableName=table,
                Key={"orderId": {"S": f"o-{max(i, 0)}"}},
                UpdateExpression="SET seq = seq + :one, history = list_append(history, :h)",
                ConditionExpression="attribute_exists(orderId)",
                ExpressionAttributeValues={":one": {"N": "1"}, ":h": history},
                ReturnValues="ALL_NEW",
            ),
            calls,
        ),
        "GetItem (consistent)": _timed(
            lambda i: ddb.get_item(TableName=table, Key={"orderId": {"S": f"o-{max(i, 0)}"}}, ConsistentRead=True),
            calls,
        ),
    }
    url = sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    body = json.dumps({"orderId": str(uuid.uuid4()), "round": 1})
    result["SendMessage"] = _timed(lambda i: sqs.send_message(QueueUrl=url, MessageBody=body), calls)
    for _ in range(max(0, depth - calls - 5) // 10 + 1):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(k), "MessageBody": body} for k in range(10)])

    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=30)["Messages"][0]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=got["ReceiptHandle"])
        times.append((time.perf_counter() - t0) * 1000)
        if i % 2 == 0:
            sqs.send_message(QueueUrl=url, MessageBody=body)
    times.sort()
    result[f"Receive+Delete (depth ~{depth})"] = {
        "p50": round(statistics.median(times), 2),
        "p95": round(times[int(0.95 * (len(times) - 1))], 2),
    }
    return result


def whole_orders(endpoint: str, log_dir: Path, orders: int, concurrency: int) -> dict[str, Any]:
    """Orders through the local runtime on this emulator, no venue delays: latency and throughput."""
    runtime = Runtime(endpoint, log_dir / "runtime.log", {"DEX_QUOTE_MS": "0", "DEX_SUBMIT_MS": "0"}).start()
    try:
        warm = LoadGenerator(runtime.rest, runtime.ws, ws_connections=1, clients=5)
        warm.run(10, concurrency=5, stall_timeout_s=60)
        warm.close()
        gen = LoadGenerator(runtime.rest, runtime.ws, ws_connections=2, clients=concurrency)
        traces = gen.run(orders, concurrency=concurrency, stall_timeout_s=60)
        gen.close()
    finally:
        runtime.stop()
    summary = metrics.summarize(traces)
    return {
        "confirmed": summary["orders"]["confirmed"],
        "requested": summary["orders"]["requested"],
        "throughputPerMin": summary["throughputPerMin"],
        "latencyMs": summary["latencyMs"],
        "postMs": summary["postMs"],
    }


def measure(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    log_dir = Path(args.out) / "logs" / f"emulator-{kind}"
    log_dir.mkdir(parents=True, exist_ok=True)
    with started(kind, log_dir) as (emulator, start_s):
        idle = _rss_mb(_emulator_pids(emulator))
        calls = call_latency(emulator.endpoint, args.calls, args.depth)
        orders = whole_orders(emulator.endpoint, log_dir, args.orders, args.concurrency)
        loaded = _rss_mb(_emulator_pids(emulator))
    return {"startS": round(start_s, 2), "rssIdleMb": idle, "rssAfterMb": loaded, "calls": calls, "orders": orders}


def render(results: dict[str, dict[str, Any]], command: str) -> str:
    kinds = list(results)
    rows: list[tuple[str, ...]] = [("", *kinds)]
    rows.append(("start-up, s (installed)", *(f"{results[k]['startS']:.2f}" for k in kinds)))
    rows.append(
        ("memory idle / after, MB", *(f"{results[k]['rssIdleMb']:.0f} / {results[k]['rssAfterMb']:.0f}" for k in kinds))
    )
    for op in results[kinds[0]]["calls"]:
        rows.append(
            (
                f"{op}, ms p50 / p95",
                *(f"{results[k]['calls'][op]['p50']:.1f} / {results[k]['calls'][op]['p95']:.1f}" for k in kinds),
            )
        )
    first = results[kinds[0]]["orders"]
    label = f"{first['requested']} orders, {'confirmed'}"
    rows.append((label, *(f"{results[k]['orders']['confirmed']}" for k in kinds)))
    rows.append(("orders/min", *(f"{results[k]['orders']['throughputPerMin']:.0f}" for k in kinds)))
    for pct in ("p50", "p95"):
        rows.append(
            (f"order POST -> confirmed, ms {pct}", *(f"{results[k]['orders']['latencyMs'][pct]:.0f}" for k in kinds))
        )
    rows.append(("POST /order, ms p50", *(f"{results[k]['orders']['postMs']['p50']:.1f}" for k in kinds)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(
        [*lines, "", f"command: {command}", "one run each, one after the other, on a shared machine: noisy"]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    kinds = [args.only] if args.only else list(EMULATORS)
    results = {kind: measure(kind, args) for kind in kinds}
    command = "python -m bench.emulators " + shlex.join(
        [
            f"--calls={args.calls}",
            f"--depth={args.depth}",
            f"--orders={args.orders}",
            f"--concurrency={args.concurrency}",
        ]
        + ([f"--only={args.only}"] if args.only else [])
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "emulators.json").write_text(json.dumps({"command": command, "results": results}, indent=2))
    print(render(results, command), flush=True)
    ok = all(r["orders"]["confirmed"] == r["orders"]["requested"] for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
