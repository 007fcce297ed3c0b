"""python -m bench reference|zero|burst|all [--orders N] [--concurrency C | --rate R] [--out bench/out]

Also: python -m bench seed rate|burst ... (one WebSocket per order, open loop: bench/seed.py),
python -m bench depth (the emulator's calls at queue depth 10 and 1000: bench/depth.py).
"""

from __future__ import annotations

import argparse
import gc
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import requests

from bench import costs, metrics, output
from bench.load import API_KEY, LoadGenerator, OrderTrace
from bench.runtime_log import invocations
from bench.scenarios import SCENARIOS, Scenario, targets
from bench.stack import Engine, engine_under_test

TERMINAL = ("confirmed", "failed")
KEY_HEADER = {"x-api-key": API_KEY}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", choices=[*SCENARIOS, "all"])
    parser.add_argument("--orders", type=int, help="orders to submit (scenario default otherwise)")
    load = parser.add_mutually_exclusive_group()
    load.add_argument("--concurrency", type=int, help="orders in flight at once (submitted, not yet terminal)")
    load.add_argument("--rate", type=float, help="orders submitted per second")
    parser.add_argument("--out", default="bench/out", help="where <scenario>.json and <scenario>.png go")
    parser.add_argument("--ws-connections", type=int, help="WebSocket connections sharing the orders")
    parser.add_argument("--clients", type=int, help="REST client threads")
    parser.add_argument("--ramp", type=float, help="seconds over which the in-flight window opens")
    parser.add_argument("--warmup", type=int, default=10, help="orders run (and not counted) before measuring")
    parser.add_argument("--stall-timeout", type=float, default=60.0, help="give up after this long with no progress")
    parser.add_argument("--rest-url", help="a running engine's REST URL (default: start our own)")
    parser.add_argument("--ws-url", help="a running engine's WebSocket URL")
    parser.add_argument("--no-png", action="store_true", help="skip the plot")
    parser.add_argument(
        "--localnet", action="store_true", help="run on a local Solana cluster (the real programs) of our own"
    )
    return parser.parse_args(argv)


def command_line(scenario: Scenario, args: argparse.Namespace, orders: int) -> str:
    parts = ["python", "-m", "bench", scenario.name, "--orders", str(orders)]
    if args.concurrency:
        parts += ["--concurrency", str(args.concurrency)]
    if args.rate:
        parts += ["--rate", str(args.rate)]
    if args.ramp is not None:
        parts += ["--ramp", str(args.ramp)]
    parts += ["--out", args.out]
    if args.rest_url:
        parts += ["--rest-url", args.rest_url, "--ws-url", args.ws_url]
    if args.localnet:
        parts += ["--localnet"]
    return " ".join(shlex.quote(p) for p in parts)


def run(scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    orders = args.orders or scenario.orders
    concurrency = args.concurrency if args.concurrency or args.rate else scenario.concurrency
    rate = args.rate if args.rate else (None if args.concurrency else scenario.rate)
    out = Path(args.out)
    with engine_under_test(
        scenario.env, out / "logs" / scenario.name, args.rest_url, args.ws_url, localnet=args.localnet
    ) as engine:
        if args.warmup:
            warm = LoadGenerator(engine.rest, engine.ws, ws_connections=1, clients=args.warmup)
            warm.run(args.warmup, concurrency=args.warmup, stall_timeout_s=args.stall_timeout)
            warm.close()
            engine.settled_calls(timeout_s=3)
        gen = LoadGenerator(
            engine.rest,
            engine.ws,
            ws_connections=args.ws_connections or scenario.ws_connections,
            clients=args.clients or scenario.clients,
        )
        engine.aws_calls("DELETE")
        # The load generator's own full collections would be read as engine latency.
        gc.collect()
        gc.freeze()
        since = time.time()
        ramp = scenario.ramp_s if args.ramp is None else args.ramp
        traces = gen.run(orders, concurrency=concurrency, rate=rate, stall_timeout_s=args.stall_timeout, ramp_s=ramp)
        finished = time.time()
        gen.close()  # $disconnect is part of an order's cost: count it
        calls = engine.settled_calls()
        until = time.time()
        # From here on, calls are the bench's own checks, not counted.
        lost = check_unfinished(engine, traces)
        item_bytes = order_item_bytes(engine, traces)
        invoked = invocations(engine.log_path, since, until) if engine.log_path else {}
    summary = metrics.summarize(traces)
    summary["orders"]["lost"] = lost
    summary["errorFrames"] = gen.error_frames[:5]
    table = costs.per_order_table(calls, max(1, summary["orders"]["accepted"]))
    if not invoked:  # a running engine: assume one invocation per function per order
        invoked = estimated_invocations(summary)
    connection_minutes = len(gen.followers) * (finished - since) / 60 / max(1, summary["orders"]["accepted"])
    cost = costs.cost_per_million(
        table,
        invoked,
        max(1, summary["orders"]["accepted"]),
        item_bytes,
        gen.frames_sent,
        connection_minutes,
    )
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "command": command_line(scenario, args, orders),
        "env": scenario.env if not args.rest_url else "(running engine)",
        "load": {
            "orders": orders,
            "concurrency": concurrency,
            "rate": rate,
            "rampS": ramp,
            "wsConnections": len(gen.followers),
            "framesSent": gen.frames_sent,
            "framesReceived": gen.frames_received,
        },
        "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)),
        "summary": summary,
        "targets": targets(scenario, summary),
        "awsCalls": calls,
        "awsCallsPerOrder": table,
        "cost": cost,
        "timeline": metrics.timeline(traces),
    }


def check_unfinished(engine: Engine, traces: list[OrderTrace]) -> dict[str, Any]:
    """Orders with no terminal frame: lost (not terminal in the store) or only their frame missing."""
    stuck: dict[str, str] = {}
    missed_frame = 0
    for t in traces:
        if t.order_id and t.terminal is None:
            try:
                status = str(
                    requests.get(f"{engine.rest}/order/{t.order_id}", timeout=10, headers=KEY_HEADER)
                    .json()
                    .get("status")
                )
            except (requests.RequestException, ValueError) as exc:
                status = f"unknown ({type(exc).__name__})"
            if status in TERMINAL:
                missed_frame += 1
            else:
                stuck[t.order_id] = status
    return {"lost": len(stuck), "terminalButNoFrame": missed_frame, "stuck": dict(list(stuck.items())[:10])}


def order_item_bytes(engine: Engine, traces: list[OrderTrace]) -> int:
    """Size of a confirmed order's item as DynamoDB counts it (read from our moto), else its JSON's size."""
    sample = next((t.order_id for t in traces if t.terminal == "confirmed" and t.order_id), None)
    if sample is None:
        return 1024
    if engine.aws_endpoint:
        ddb = boto3.client(
            "dynamodb",
            endpoint_url=engine.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for table in ddb.list_tables()["TableNames"]:
            if costs.resource_kind(table) == "orders":
                item = ddb.get_item(TableName=table, Key={"orderId": {"S": sample}}).get("Item")
                if item:
                    return costs.dynamodb_item_bytes(item)
    return len(requests.get(f"{engine.rest}/order/{sample}", timeout=10, headers=KEY_HEADER).content)


def estimated_invocations(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    n = summary["orders"]["accepted"]
    worker_ms = summary["simulatedMs"]["meanTotal"] + (summary["overheadMs"]["mean"] or 0)
    return {
        "api_handler": {"count": n, "ms": n * (summary["postMs"]["mean"] or 0)},
        "order_worker": {"count": n, "ms": n * worker_ms},
        "websocket_message": {"count": n, "ms": n * 20.0},
    }


def _exit_on_sigterm() -> None:
    """SIGTERM (`timeout`, a CI runner) unwinds like Ctrl-C, so the emulator and runtime we started are stopped.

    They run in sessions of their own (a test can SIGKILL them); without this, Python's default
    SIGTERM action ends the bench at once and leaves them running.
    """

    def on_sigterm(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _exit_on_sigterm()
    if argv[:1] == ["seed"]:  # one WebSocket per order, open loop (bench/seed.py)
        from bench import seed

        return seed.main(argv[1:])
    if argv[:1] == ["depth"]:  # the emulator's calls at a given queue depth (bench/depth.py)
        from bench import depth

        return depth.main(argv[1:])
    args = parse_args(argv)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    ok = True
    for name in names:
        report = run(SCENARIOS[name], args)
        out = Path(args.out)
        output.write_json(report, out / f"{name}.json")
        if not args.no_png:
            output.write_png(report, out / f"{name}.png")
        print(output.render_text(report), flush=True)
        print(f"wrote {out / f'{name}.json'}" + ("" if args.no_png else f" and {out / f'{name}.png'}"), flush=True)
        o = report["summary"]["orders"]
        ok = ok and o["confirmed"] == o["requested"] and o["lost"]["lost"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
