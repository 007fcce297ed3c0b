"""The report of a run as text (stdout), JSON and a PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["render_text", "write_json", "write_png"]


def _pct(p: dict[str, Any], unit: str = "ms") -> str:
    if not p or not p.get("count"):
        return "-"
    return f"p50 {p['p50']}  p90 {p['p90']}  p99 {p['p99']}  max {p['max']} {unit}"


def render_text(report: dict[str, Any]) -> str:
    s = report["summary"]
    o = s["orders"]
    lines = [
        f"== {report['scenario']}: {report['description']}",
        f"   env {report['env']}  orders {report['load']['orders']}  "
        f"concurrency {report['load']['concurrency']}  rate {report['load']['rate']}",
        f"orders      accepted {o['accepted']}/{o['requested']}  confirmed {o['confirmed']}  failed {o['failed']}  "
        f"lost/unfinished {o['unfinished']}  POST errors {o['postErrors']}  incomplete streams "
        f"{o['incompleteStreams']}",
        f"throughput  {s['throughputPerMin']} orders/min over {s['durationS']} s (first POST -> last terminal)",
    ]
    if s["ceilingPerMin"]:
        lines.append(
            f"ceiling     {s['ceilingPerMin']} orders/min = 60 * {s['slots']} / mean simulated "
            f"{s['simulatedMs']['meanTotal']} ms (quote {s['simulatedMs']['meanQuote']} + chain "
            f"{s['simulatedMs']['meanChain']})   ratio {s['ratioToCeiling']:.1%}"
        )
    lines += [
        f"e2e latency {_pct(s['latencyMs'])}   (POST start -> confirmed frame)",
        f"overhead    {_pct(s['overheadMs'])}   (e2e - simulated - queue wait)",
        f"  e2e-sim   {_pct(s['e2eMinusSimulatedMs'])}   (incl. waiting for a busy worker)",
        f"  queue     {_pct(s['queueWaitMs'])}",
        f"  hop       {_pct(s['hopMs'])}   (POST answered or slot freed -> executing: SQS, poller, dispatch)",
        f"  slot      {s['slotOverheadMs']} ms per order = 10 * duration / orders - mean simulated",
        f"  POST      {_pct(s['postMs'])}",
        f"  routing->building   {_pct(s['stepsMs']['routingToBuilding'])}",
        f"  building->submitted {_pct(s['stepsMs']['buildingToSubmitted'])}",
        f"  routing->confirmed minus chainMs {_pct(s['stepsMs']['confirmedLate'])}",
        f"ws lag      {_pct(s['wsLagMs'])}   (frame received - event timestamp, live frames)",
        f"peak executing at once {s['peakExecuting']} (routing -> terminal timestamps)",
    ]
    for goal in report.get("targets") or []:
        lines.append(f"target      {goal['goal']}: {'MET' if goal['met'] else 'NOT MET'} ({goal['value']})")
    table = report.get("awsCallsPerOrder") or []
    if table:
        total = sum(r["perOrder"] for r in table)
        lines.append(f"AWS calls per order: {total:.2f} in all")
        lines.append(f"  {'per order':>9} {'ms/call':>7}  {'caller':<20} {'operation':<38} why")
        for r in table:
            op = f"{r['service']}:{r['operation']}" + (f" ({r['kind']})" if r["kind"] else "")
            lines.append(f"  {r['perOrder']:>9.3f} {r['msPerCall'] or 0:>7.1f}  {r['caller']:<20} {op:<38} {r['why']}")
    else:
        lines.append("AWS calls per order: not available (the runtime was not started with OFFLINE_COUNT_AWS_CALLS=1)")
    cost = report.get("cost")
    if cost:
        u = cost["units"]
        lines.append(
            f"cost per million orders (USD, {cost['prices']['asOf']}; order item {u['orderItemBytes']} B -> "
            f"{u['wruPerOrder']} WRU + {u['rruPerOrder']} RRU per order, {u['lambdaInvocationsPerOrder']} "
            f"invocations and {u['lambdaSecondsPerOrder']} Lambda-seconds per order):"
        )
        lines.append("  " + "  ".join(f"{k} {v}" for k, v in cost["usdPerMillionOrders"].items()))
        for mb, v in cost["byLambdaMemory"].items():
            lines.append(f"  at {mb}: Lambda compute {v['lambdaCompute']}  TOTAL {v['total']}")
    lines.append(f"repeat with: {report['command']}")
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


def write_png(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = report["timeline"]
    s = report["summary"]
    points = tl["points"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True, height_ratios=(3, 2))
    x = [p["submitS"] for p in points]
    top.scatter(x, [p["e2eMs"] / 1000 for p in points], s=8, label="e2e latency (POST -> confirmed frame)")
    sims = [(p["submitS"], p["simulatedMs"] / 1000) for p in points if p["simulatedMs"] is not None]
    if sims:
        top.scatter(*zip(*sims, strict=True), s=6, marker="x", alpha=0.6, label="simulated venue time of the order")
    top.set_ylabel("seconds")
    top.set_title(
        f"{report['scenario']}: {s['orders']['confirmed']} confirmed, {s['throughputPerMin']} orders/min"
        + (f" ({s['ratioToCeiling']:.1%} of ceiling {s['ceilingPerMin']})" if s["ceilingPerMin"] else "")
        + f", overhead p99 {s['overheadMs']['p99']} ms"
    )
    top.legend(loc="upper right", fontsize=8)
    top.grid(alpha=0.3)
    bucket = tl["bucketS"]
    per_min = [c * 60 / bucket for c in tl["completions"]]
    bottom.bar([i * bucket for i in range(len(per_min))], per_min, width=bucket * 0.9, align="edge", label="done")
    if s["ceilingPerMin"]:
        bottom.axhline(s["ceilingPerMin"], color="red", linestyle="--", label=f"ceiling {s['ceilingPerMin']}/min")
    bottom.set_ylabel(f"orders/min (per {bucket:g} s)")
    bottom.set_xlabel("seconds since the first POST (top: submit time; bottom: completion time)")
    bottom.legend(loc="upper right", fontsize=8)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
