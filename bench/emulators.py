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
NOTE = "one run; the emulators take turns call by call and batch by batch of orders; a shared machine: noisy"


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


def operations(endpoint: str, calls: int, depth: int) -> dict[str, Callable[[int], Any]]:
    """The AWS calls an order makes, against a fresh table and queue on ``endpoint``."""
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
    send_url = sqs.create_queue(QueueName=f"bench-send-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    deep_url = sqs.create_queue(QueueName=f"bench-deep-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    body = json.dumps({"orderId": str(uuid.uuid4()), "round": 1})
    for _ in range((depth + calls + 20) // 10):  # the depth falls from depth+calls to depth as it is drained
        sqs.send_message_batch(QueueUrl=deep_url, Entries=[{"Id": str(k), "MessageBody": body} for k in range(10)])

    def receive_delete(_: int) -> None:
        got = sqs.receive_message(QueueUrl=deep_url, MaxNumberOfMessages=1, VisibilityTimeout=30)["Messages"][0]
        sqs.delete_message(QueueUrl=deep_url, ReceiptHandle=got["ReceiptHandle"])

    return {
        "PutItem (conditional)": lambda i: ddb.put_item(
            TableName=table,
            Item={"orderId": {"S": f"o-{i}"}, "seq": {"N": "1"}, "history": history},
            ConditionExpression="attribute_not_exists(orderId)",
        ),
        "UpdateItem (conditional, ALL_NEW)": lambda i: ddb.update_item(
            TableName=table,
            Key={"orderId": {"S": f"o-{i}"}},
            UpdateExpression="SET seq = seq + :one, history = list_append(history, :h)",
            ConditionExpression="attribute_exists(orderId)",
            ExpressionAttributeValues={":one": {"N": "1"}, ":h": history},
            ReturnValues="ALL_NEW",
        ),
        "GetItem (consistent)": lambda i: ddb.get_item(
            TableName=table, Key={"orderId": {"S": f"o-{i}"}}, ConsistentRead=True
        ),
        "SendMessage": lambda i: sqs.send_message(QueueUrl=send_url, MessageBody=body),
        f"Receive+Delete (depth {depth}-{depth + calls})": receive_delete,
    }


def _summary(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {"p50": round(statistics.median(times), 2), "p95": round(times[int(0.95 * (len(times) - 1))], 2)}


def call_latency(endpoints: dict[str, str], calls: int, depth: int) -> dict[str, dict[str, dict[str, float]]]:
    """Per-call latency (ms), one client, one call at a time, the emulators taking turns call by call
    (so both see the same machine load)."""
    ops = {kind: operations(url, calls, depth) for kind, url in endpoints.items()}
    result: dict[str, dict[str, dict[str, float]]] = {kind: {} for kind in endpoints}
    for name in next(iter(ops.values())):
        times: dict[str, list[float]] = {kind: [] for kind in endpoints}
        for i in range(-5, calls):  # 5 warm-up calls each, not counted
            for kind in endpoints:
                t0 = time.perf_counter()
                ops[kind][name](i)
                if i >= 0:
                    times[kind].append((time.perf_counter() - t0) * 1000)
        for kind in endpoints:
            result[kind][name] = _summary(times[kind])
    return result


def whole_orders(runtimes: dict[str, Runtime], orders: int, concurrency: int) -> dict[str, dict[str, Any]]:
    """Orders through the local runtime, no venue delays; the emulators take turns, half the orders at a time."""
    traces: dict[str, list[Any]] = {kind: [] for kind in runtimes}
    for runtime in runtimes.values():
        warm = LoadGenerator(runtime.rest, runtime.ws, ws_connections=1, clients=5)
        warm.run(10, concurrency=5, stall_timeout_s=60)
        warm.close()
    for batch in (orders // 2, orders - orders // 2):
        for kind, runtime in runtimes.items():
            gen = LoadGenerator(runtime.rest, runtime.ws, ws_connections=2, clients=concurrency)
            traces[kind] += gen.run(batch, concurrency=concurrency, stall_timeout_s=60)
            gen.close()
    result = {}
    for kind, found in traces.items():
        summary = metrics.summarize(found)
        result[kind] = {
            "confirmed": summary["orders"]["confirmed"],
            "requested": summary["orders"]["requested"],
            "latencyMs": summary["latencyMs"],
            "postMs": summary["postMs"],
        }
    return result


def measure(kinds: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out = Path(args.out) / "logs" / "emulators"
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {kind: {} for kind in kinds}
    with contextlib.ExitStack() as stack:
        emulators = {}
        for kind in kinds:
            emulator, seconds = stack.enter_context(started(kind, out))
            emulators[kind] = emulator
            results[kind]["startS"] = round(seconds, 2)
            results[kind]["rssIdleMb"] = _rss_mb(_emulator_pids(emulator))
        endpoints = {kind: e.endpoint for kind, e in emulators.items()}
        for kind, calls in call_latency(endpoints, args.calls, args.depth).items():
            results[kind]["calls"] = calls
        runtimes = {}
        for kind, endpoint in endpoints.items():
            # The emulators are measured, not one client's usage plan (as in bench/stack.py).
            env = {
                "DEX_QUOTE_MS": "0",
                "DEX_SUBMIT_MS": "0",
                "RATE_LIMIT_RPS": "1000000",
                "RATE_LIMIT_BURST": "1000000",
                "WS_MAX_CONNECTIONS_PER_KEY": "1000000",
                "WS_FRAME_RATE": "1000000",
                "WS_FRAME_BURST": "1000000",
            }
            runtimes[kind] = Runtime(endpoint, out / f"runtime-{kind}.log", env).start()
            stack.callback(runtimes[kind].stop)
        for kind, orders in whole_orders(runtimes, args.orders, args.concurrency).items():
            results[kind]["orders"] = orders
        for kind, emulator in emulators.items():
            results[kind]["rssAfterMb"] = _rss_mb(_emulator_pids(emulator))
    return results


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
    for pct in ("p50", "p90", "p99"):
        rows.append(
            (f"order POST -> confirmed, ms {pct}", *(f"{results[k]['orders']['latencyMs'][pct]:.0f}" for k in kinds))
        )
    rows.append(("POST /order, ms p50", *(f"{results[k]['orders']['postMs']['p50']:.1f}" for k in kinds)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(
        [
            *lines,
            "",
            f"command: {command}",
            NOTE,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    kinds = [args.only] if args.only else list(EMULATORS)
    results = measure(kinds, args)
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
