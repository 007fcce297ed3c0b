"""python -m bench seed rate|burst [--orders N] [--rate R] [--delays zero|default] [--out bench/out]

The seed's way of driving the engine (issue 14): one WebSocket per order with `?orderId=`,
opened right after the POST, orders started on a clock whether or not the engine keeps
up (`rate`), or all at once (`burst`). Starts its own moto and local runtime on free
loopback ports, counts every AWS call the runtime makes, samples the order queue's depth,
and prints throughput, e2e and POST latency, what each connection received wrong, the CPU
each process used, AWS calls per order and their latency by queue depth, and the command
that repeats the run.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import itertools
import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import output
from bench.cpu import CpuTracker
from bench.metrics import percentiles, ts
from bench.per_order import StreamTrace, check_stream, run_open_loop
from bench.stack import Engine, engine_under_test

__all__ = ["main"]

DELAYS = {
    "zero": {"DEX_QUOTE_MS": "0", "DEX_SUBMIT_MS": "0"},
    "default": {"DEX_QUOTE_MS": "200", "DEX_SUBMIT_MS": "2000-3000"},
}
MAX_ORDERS = 5000


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench seed", description=__doc__)
    parser.add_argument("shape", choices=["rate", "burst"], help="orders on a clock, or all at once")
    parser.add_argument("--orders", type=int, default=None, help="orders to start (rate: 1000, burst: 1000)")
    parser.add_argument("--rate", type=float, default=100.0, help="orders started per second (rate shape)")
    parser.add_argument("--delays", choices=sorted(DELAYS), default="zero", help="simulated venue delays")
    parser.add_argument("--warmup", type=int, default=10, help="orders run (and not counted) before measuring")
    parser.add_argument("--stream-timeout", type=float, default=300.0, help="give up on a stream after this long")
    parser.add_argument("--out", default="bench/out", help="where seed-<shape>-<delays>.json goes")
    args = parser.parse_args(argv)
    args.orders = args.orders or 1000
    if not 1 <= args.orders <= MAX_ORDERS:
        parser.error(f"--orders must be 1..{MAX_ORDERS}")
    return args


def command_line(args: argparse.Namespace) -> str:
    parts = ["python", "-m", "bench", "seed", args.shape, "--orders", str(args.orders), "--delays", args.delays]
    if args.shape == "rate":
        parts += ["--rate", f"{args.rate:g}"]
    parts += ["--out", args.out]
    return " ".join(shlex.quote(p) for p in parts)


# -- queue depth and AWS calls over time -------------------------------------------------


class Sampler:
    """Every `every_s`, the runtime's AWS call counts (asked of the runtime: the emulator is left alone).

    The order queue's depth is not asked of the emulator (moto's GetQueueAttributes scans
    every message, which would load the very thing measured): `depth_at` derives it from
    the traces afterwards.
    """

    def __init__(self, engine: Engine, every_s: float = 0.5) -> None:
        self.engine = engine
        self.every_s = every_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            calls = self.engine.aws_calls()
            if calls is not None:
                self.samples.append({"t": time.time(), "calls": calls})


def depth_at(traces: list[StreamTrace], moments: list[float]) -> list[int]:
    """Orders waiting in the queue at each moment: accepted (POST answered) and not yet executing.

    An order starts executing at its first `routing` event's timestamp (the engine's clock,
    the same machine's).
    """
    accepted = sorted(t.post_end for t in traces if t.order_id)
    started = sorted(ts(f["timestamp"]) for t in traces for f in t.frames[:3] if f.get("status") == "routing")
    return [max(0, bisect.bisect_right(accepted, m) - bisect.bisect_right(started, m)) for m in moments]


def _rows(snapshot: dict[str, Any] | None) -> dict[tuple[str, str, str], tuple[int, float]]:
    rows: dict[tuple[str, str, str], tuple[int, float]] = {}
    for r in (snapshot or {}).get("calls", []):
        key = (r["caller"], r["service"], r["operation"])
        count, ms = rows.get(key, (0, 0.0))
        rows[key] = (count + int(r["count"]), ms + float(r["ms"]))
    return rows


def by_depth(samples: list[dict[str, Any]], traces: list[StreamTrace], bands: list[tuple[int, int]]) -> list[Any]:
    """Per band of queue depth (messages waiting at an interval's start).

    For each band: calls per confirmed order, and the mean time of one call per operation.
    """
    done_at = sorted(t for t in (tr.terminal_at for tr in traces) if t is not None)
    for sample, depth in zip(samples, depth_at(traces, [s["t"] for s in samples]), strict=True):
        sample["waiting"] = depth
    result = []
    for low, high in bands:
        totals: dict[tuple[str, str, str], list[float]] = {}
        confirmed = 0
        seconds = 0.0
        for before, after in itertools.pairwise(samples):
            if not low <= before["waiting"] <= high:
                continue
            seconds += after["t"] - before["t"]
            confirmed += sum(1 for t in done_at if before["t"] < t <= after["t"])
            old, new = _rows(before["calls"]), _rows(after["calls"])
            for key, (count, ms) in new.items():
                was = old.get(key, (0, 0.0))
                if count - was[0] > 0:
                    slot = totals.setdefault(key, [0, 0.0])
                    slot[0] += count - was[0]
                    slot[1] += ms - was[1]
        calls = sum(int(v[0]) for v in totals.values())
        result.append(
            {
                "depth": f"{low}-{high}",
                "seconds": round(seconds, 1),
                "confirmed": confirmed,
                "callsPerConfirmed": round(calls / confirmed, 2) if confirmed else None,
                "awsMsPerConfirmed": round(sum(v[1] for v in totals.values()) / confirmed, 1) if confirmed else None,
                "operations": [
                    {
                        "caller": k[0],
                        "operation": f"{k[1]}.{k[2]}",
                        "calls": int(v[0]),
                        "perConfirmed": round(v[0] / confirmed, 2) if confirmed else None,
                        "meanMs": round(v[1] / v[0], 2),
                    }
                    for k, v in sorted(totals.items(), key=lambda kv: -kv[1][1])
                ],
            }
        )
    return result


# -- the run -----------------------------------------------------------------------------


def summarize(traces: list[StreamTrace], started: float) -> dict[str, Any]:
    checks = [check_stream(t) for t in traces if t.order_id]
    confirmed = [t for t in traces if t.terminal == "confirmed"]
    ends = [t.terminal_at for t in confirmed if t.terminal_at is not None]
    duration = (max(ends) - started) if ends else None
    e2e = [(t.terminal_at - t.post_start) * 1000 for t in confirmed if t.terminal_at]
    post = [(t.post_end - t.post_start) * 1000 for t in traces if t.order_id]
    return {
        "orders": {
            "requested": len(traces),
            "accepted": sum(1 for t in traces if t.order_id),
            "confirmed": len(confirmed),
            "failed": sum(1 for t in traces if t.terminal == "failed"),
            "errors": sum(1 for t in traces if t.error),
        },
        "durationS": round(duration, 2) if duration else None,
        "throughputPerS": round(len(confirmed) / duration, 1) if duration else None,
        "e2eMs": percentiles(e2e),
        "postMs": percentiles(post),
        "streams": {
            "connections": len(checks),
            "outOfOrder": sum(1 for c in checks if c.out_of_order),
            "missing": sum(1 for c in checks if c.missing),
            "repeated": sum(1 for c in checks if c.repeated),
            "closedEarly": sum(1 for c in checks if c.closed_early),
            "noTerminal": sum(1 for c in checks if c.no_terminal and not c.timed_out),
            "afterTerminal": sum(1 for c in checks if c.after_terminal),
            "bad": sum(1 for c in checks if c.wrong),
            "timedOut": sum(1 for c in checks if c.timed_out),
        },
        "examples": [
            {"orderId": t.order_id, "seqs": [f.get("seq") for f in t.frames], "error": t.error}
            for t in traces
            if (t.error and not t.timed_out) or (t.order_id and check_stream(t).wrong)
        ][:5],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"seed-{args.shape}-{args.delays}"
    out = Path(args.out)
    rate = args.rate if args.shape == "rate" else None
    with engine_under_test(DELAYS[args.delays], out / "logs" / name) as engine:
        if args.warmup:
            run_open_loop(engine.rest, engine.ws, args.warmup, rate=None, stream_timeout_s=60)
            engine.settled_calls(timeout_s=3)
        sampler = Sampler(engine)
        engine.aws_calls("DELETE")
        gc.collect()
        gc.freeze()
        cpu = CpuTracker().start()
        load_before = [round(x, 2) for x in os.getloadavg()]
        wall_before = time.time()
        sampler.start()
        traces = run_open_loop(engine.rest, engine.ws, args.orders, rate=rate, stream_timeout_s=args.stream_timeout)
        wall = time.time() - wall_before
        cpu_s = cpu.stop()
        calls = engine.settled_calls()
        sampler.stop()
    summary = summarize(traces, wall_before)
    accepted = max(1, summary["orders"]["accepted"])
    per_op = sorted(
        (
            {
                "caller": k[0],
                "operation": f"{k[1]}.{k[2]}",
                "perOrder": round(v[0] / accepted, 2),
                "meanMs": round(v[1] / v[0], 2),
            }
            for k, v in _rows(calls).items()
        ),
        key=lambda r: (r["caller"], r["operation"]),
    )
    return {
        "scenario": name,
        "command": command_line(args),
        "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall_before)),
        "load": {"orders": args.orders, "rate": rate, "delays": DELAYS[args.delays], "wallS": round(wall, 1)},
        "machine": {
            "cores": os.cpu_count(),
            "loadavgStart": load_before,
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        },
        "summary": summary,
        "cpu": {
            role: {
                "seconds": round(seconds, 1),
                "ofOneCore": round(seconds / wall, 3),
                "msPerOrder": round(seconds * 1000 / accepted, 1),
            }
            for role, seconds in cpu_s.items()
        },
        "cpuMsPerOrder": round(sum(cpu_s.values()) * 1000 / accepted, 1),
        "awsCallsPerOrder": round((calls or {}).get("total", 0) / accepted, 2),
        "awsCalls": per_op,
        "byDepth": by_depth(sampler.samples, traces, [(0, 10), (11, 100), (101, 500), (501, 100000)]),
        "depthMax": max((s.get("waiting", 0) for s in sampler.samples), default=0),
    }


def render(report: dict[str, Any]) -> str:
    s = report["summary"]
    o, st = s["orders"], s["streams"]

    def pct(p: dict[str, Any]) -> str:
        return f"p50 {p['p50']}  p90 {p['p90']}  p99 {p['p99']}  max {p['max']} ms (n={p['count']})"

    lines = [
        f"== {report['scenario']}: one WebSocket per order (?orderId=), open loop, {report['load']}",
        f"orders      accepted {o['accepted']}/{o['requested']}  confirmed {o['confirmed']}  failed {o['failed']}  "
        f"client errors {o['errors']}",
        f"throughput  {s['throughputPerS']} orders/s confirmed over {s['durationS']} s (first POST -> last confirmed)",
        f"e2e         {pct(s['e2eMs'])}   (POST start -> confirmed frame)",
        f"POST        {pct(s['postMs'])}",
        f"streams     {st['connections']} connections: {st['bad']} wrong = out of order {st['outOfOrder']}, "
        f"missing {st['missing']}, repeated {st['repeated']}, closed early {st['closedEarly']}, "
        f"no terminal {st['noTerminal']}, frames after terminal {st['afterTerminal']}; "
        f"still open when the client gave up (slow, not wrong) {st['timedOut']}",
        f"cpu         {report['cpuMsPerOrder']} ms of CPU per order in all   "
        f"(machine: {report['machine']['cores']} cores, "
        f"load {report['machine']['loadavgStart']} -> {report['machine']['loadavg']})",
        *(
            f"    {role:<22} {c['seconds']:>7} s  {c['ofOneCore']:>5.0%} of a core  {c['msPerOrder']:>7} ms/order"
            for role, c in report["cpu"].items()
        ),
        f"aws calls   {report['awsCallsPerOrder']} per order; order queue depth max {report['depthMax']}",
    ]
    for row in report["awsCalls"]:
        lines.append(
            f"    {row['caller']:<22} {row['operation']:<42} {row['perOrder']:>6} /order  {row['meanMs']:>7} ms"
        )
    lines.append("by queue depth (waiting messages): calls and AWS time per confirmed order, mean ms per call")
    for band in report["byDepth"]:
        if not band["confirmed"]:
            continue
        top = ", ".join(f"{op['operation']} {op['meanMs']} ms" for op in band["operations"][:4])
        lines.append(
            f"    depth {band['depth']:<10} {band['seconds']:>6} s  {band['confirmed']:>5} confirmed  "
            f"{band['callsPerConfirmed']} calls, {band['awsMsPerConfirmed']} ms AWS per order; {top}"
        )
    for example in s["examples"]:
        lines.append(f"    e.g. {example}")
    lines.append(f"repeat with: {report['command']}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    report = run(args)
    path = Path(args.out) / f"{report['scenario']}.json"
    output.write_json(report, path)
    print(render(report), flush=True)
    print(f"wrote {path}", flush=True)
    s = report["summary"]
    return 0 if s["orders"]["confirmed"] == s["orders"]["requested"] and not s["streams"]["bad"] else 1


# A stream's own timeout bounds the run: the last order starts at orders / rate seconds,
# and no stream is waited for longer than --stream-timeout after its POST.


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
