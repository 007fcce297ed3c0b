"""Figures of a run, computed from the order traces alone (pure functions, no I/O).

Definitions (docs/benchmarks.md explains them at more length):

* e2e latency: POST start -> `confirmed` frame received.
* simulated: `confirmed.simulatedDelayMs.quoteMs + chainMs`, the venue time the order waited.
* queue wait: the time an accepted order waited only because all `slots` workers were busy.
  Each order is given the slot that freed first (slots free at an order's `confirmed`
  timestamp); the order waited for it from its POST's end until that moment.
* overhead: e2e - simulated - queue wait. The engine's own time for the order: the POST,
  the SQS hop and hand-over of the slot, DynamoDB writes, pushes, WebSocket delivery.
* ceiling: slots / mean(simulated) orders per second, what an engine with no overhead
  and a never-empty queue would do with these very orders.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from datetime import datetime
from typing import Any

from bench.load import OrderTrace

__all__ = ["peak_executing", "percentiles", "summarize", "timeline", "ts"]

SLOTS = 10


def ts(text: str) -> float:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p90/p99/max/mean (nearest rank), in the values' own unit, rounded to 0.1."""
    if not values:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 1)

    return {
        "count": len(ordered),
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": round(ordered[-1], 1),
        "mean": round(sum(ordered) / len(ordered), 1),
    }


def peak_executing(spans: list[tuple[float, float]]) -> int:
    """Most spans open at once; an end at the same instant as a start closes first."""
    edges = [(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans]
    running = peak = 0
    for _, delta in sorted(edges):
        running += delta
        peak = max(peak, running)
    return peak


def _simulated_ms(trace: OrderTrace) -> tuple[float, float] | None:
    confirmed = trace.frame("confirmed")
    sim = (confirmed or {}).get("simulatedDelayMs")
    if not isinstance(sim, dict):
        return None
    return float(sim.get("quoteMs", 0)), float(sim.get("chainMs", 0))


def queue_waits(traces: list[OrderTrace], slots: int = SLOTS) -> dict[int, tuple[float, float]]:
    """(queue wait, hop) in seconds per confirmed order index.

    Execution starts at `routing.timestamp - quoteMs` (routing is written once the
    quotes are in); a slot frees at the `confirmed.timestamp` of the order holding it.
    The queue wait runs from the POST's end to the slot freeing; the hop from whichever
    came last (POST answered, slot freed) to the order executing: SQS, poller, GetItem.
    """
    runs: list[tuple[float, float, OrderTrace]] = []
    for t in traces:
        routing, confirmed, sim = t.frame("routing"), t.frame("confirmed"), _simulated_ms(t)
        if routing and confirmed and sim:
            runs.append((ts(routing["timestamp"]) - sim[0] / 1000, ts(confirmed["timestamp"]), t))
    free: list[float] = [-math.inf] * slots
    heapq.heapify(free)
    result: dict[int, tuple[float, float]] = {}
    for start, end, trace in sorted(runs, key=lambda r: r[0]):
        freed = heapq.heappop(free)
        waited_for_slot = max(0.0, min(freed, start) - trace.post_end)
        hop = max(0.0, start - max(freed, trace.post_end))
        result[trace.index] = (waited_for_slot, hop)
        heapq.heappush(free, max(end, start))
    return result


def summarize(traces: list[OrderTrace], slots: int = SLOTS) -> dict[str, Any]:
    accepted = [t for t in traces if t.order_id]
    confirmed = [t for t in accepted if t.terminal == "confirmed"]
    failed = [t for t in accepted if t.terminal == "failed"]
    unfinished = [t for t in accepted if t.terminal is None]
    post_errors = [t for t in traces if t.error]

    starts = [t.post_start for t in traces if t.post_start]
    ends = [t.terminal_at for t in accepted if t.terminal_at]
    duration_s = (max(ends) - min(starts)) if starts and ends else 0.0
    throughput = len(confirmed) / duration_s * 60 if duration_s > 0 else 0.0

    sims = {t.index: _simulated_ms(t) for t in confirmed}
    sim_total_s = [sum(s) / 1000 for s in sims.values() if s]
    mean_sim_s = sum(sim_total_s) / len(sim_total_s) if sim_total_s else 0.0
    ceiling = slots / mean_sim_s * 60 if mean_sim_s > 0 else None

    waits = queue_waits(traces, slots)
    e2e, raw_overhead, overhead, wait_ms, hop_ms = [], [], [], [], []
    for t in confirmed:
        sim = sims.get(t.index)
        assert t.terminal_at is not None
        latency = (t.terminal_at - t.post_start) * 1000
        e2e.append(latency)
        if sim is None:
            continue
        waited, hop = waits.get(t.index, (0.0, 0.0))
        raw_overhead.append(latency - sum(sim))
        overhead.append(latency - sum(sim) - waited * 1000)
        wait_ms.append(waited * 1000)
        hop_ms.append(hop * 1000)

    lag = [(f["_recv"] - ts(f["timestamp"])) * 1000 for t in accepted for f in t.frames if f.get("status") != "pending"]
    spans = []
    for t in accepted:
        routing, end = t.frame("routing"), t.frame(t.terminal or "")
        if routing and end:
            spans.append((ts(routing["timestamp"]), ts(end["timestamp"])))

    steps: dict[str, list[float]] = {"routingToBuilding": [], "buildingToSubmitted": [], "confirmedLate": []}
    for t in confirmed:
        r, b, s, c, sim = (
            t.frame("routing"),
            t.frame("building"),
            t.frame("submitted"),
            t.frame("confirmed"),
            sims[t.index],
        )
        if r and b and s and c and sim:
            steps["routingToBuilding"].append((ts(b["timestamp"]) - ts(r["timestamp"])) * 1000)
            steps["buildingToSubmitted"].append((ts(s["timestamp"]) - ts(b["timestamp"])) * 1000)
            # confirmed.timestamp past (execution start + quote + chain): every engine step in between
            steps["confirmedLate"].append((ts(c["timestamp"]) - ts(r["timestamp"])) * 1000 - sim[1])

    incomplete = 0
    for t in accepted:
        if t.terminal is None:
            continue
        seqs = {int(f["seq"]) for f in t.frames}
        if seqs != set(range(1, max(seqs) + 1)):
            incomplete += 1

    return {
        "orders": {
            "requested": len(traces),
            "accepted": len(accepted),
            "confirmed": len(confirmed),
            "failed": len(failed),
            "unfinished": len(unfinished),
            "postErrors": len(post_errors),
            "incompleteStreams": incomplete,
            "failedReasons": dict(Counter(str((t.frame("failed") or {}).get("reason")) for t in failed)),
            "postErrorSamples": [t.error for t in post_errors[:5]],
        },
        "durationS": round(duration_s, 2),
        "throughputPerMin": round(throughput, 1),
        "simulatedMs": {
            "meanQuote": round(sum(s[0] for s in sims.values() if s) / max(1, len(sim_total_s)), 1),
            "meanChain": round(sum(s[1] for s in sims.values() if s) / max(1, len(sim_total_s)), 1),
            "meanTotal": round(mean_sim_s * 1000, 1),
        },
        "slots": slots,
        "ceilingPerMin": round(ceiling, 1) if ceiling else None,
        "ratioToCeiling": round(throughput / ceiling, 4) if ceiling else None,
        "slotOverheadMs": round((slots * duration_s / len(confirmed) - mean_sim_s) * 1000, 1) if confirmed else None,
        "latencyMs": percentiles(e2e),
        "overheadMs": percentiles(overhead),
        "e2eMinusSimulatedMs": percentiles(raw_overhead),
        "queueWaitMs": percentiles(wait_ms),
        "hopMs": percentiles(hop_ms),
        "postMs": percentiles([(t.post_end - t.post_start) * 1000 for t in accepted]),
        "wsLagMs": percentiles(lag),
        "stepsMs": {k: percentiles(v) for k, v in steps.items()},
        "peakExecuting": peak_executing(spans),
    }


def timeline(traces: list[OrderTrace], bucket_s: float = 5.0, slots: int = SLOTS) -> dict[str, Any]:
    """Per-order points (submit offset, e2e, simulated, queue wait, overhead) and completions per bucket."""
    started = [t.post_start for t in traces if t.post_start]
    t0 = min(started) if started else 0.0
    waits = queue_waits(traces, slots)
    points: list[dict[str, Any]] = []
    for t in traces:
        if t.terminal == "confirmed" and t.terminal_at is not None:
            sim = _simulated_ms(t)
            e2e = (t.terminal_at - t.post_start) * 1000
            wait, hop = (v * 1000 for v in waits.get(t.index, (0.0, 0.0)))
            points.append(
                {
                    "index": t.index,
                    "submitS": round(t.post_start - t0, 3),
                    "e2eMs": round(e2e, 1),
                    "simulatedMs": round(sum(sim), 1) if sim else None,
                    "queueWaitMs": round(wait, 1),
                    "overheadMs": round(e2e - sum(sim) - wait, 1) if sim else None,
                    "postMs": round((t.post_end - t.post_start) * 1000, 1),
                    "hopMs": round(hop, 1),
                    "doneS": round(t.terminal_at - t0, 3),
                }
            )
    buckets: Counter[int] = Counter(int(p["doneS"] // bucket_s) for p in points)
    last = max(buckets) if buckets else -1
    return {
        "bucketS": bucket_s,
        "completions": [buckets.get(i, 0) for i in range(last + 1)],
        "points": points,
    }
