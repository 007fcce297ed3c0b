"""Live figures for operators: queue depths, venue wins, recent latency percentiles."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Protocol

from chalicelib.orders import OrderRecord, Status
from chalicelib.ports import OrderStore

__all__ = ["CountedQueue", "EngineStats", "percentile"]

_RECENT = 200  # one Query of the newest orders: cheap enough to answer on every call


class CountedQueue(Protocol):
    def counts(self) -> tuple[int, int]: ...


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def latency_ms(record: OrderRecord) -> float | None:
    """From acceptance (`pending`) to the terminal status, as the client saw it."""
    if record.status is not Status.CONFIRMED or not record.history:
        return None
    return round((_ts(record.history[-1]["timestamp"]) - _ts(record.history[0]["timestamp"])) * 1000, 1)


class EngineStats:
    def __init__(self, store: OrderStore, orders_queue: CountedQueue, dlq: CountedQueue) -> None:
        self.store = store
        self.orders_queue = orders_queue
        self.dlq = dlq

    def snapshot(self) -> dict[str, Any]:
        waiting, in_flight = self.orders_queue.counts()
        dlq_waiting, dlq_in_flight = self.dlq.counts()
        recent, _ = self.store.list_recent(_RECENT, None, None)
        wins = Counter(str(r.details.get("dex")) for r in recent if r.status is Status.CONFIRMED)
        latencies = sorted(v for v in (latency_ms(r) for r in recent) if v is not None)
        statuses = Counter(r.status.value for r in recent)
        return {
            "queueDepth": waiting,
            "inFlight": in_flight,
            "dlqDepth": dlq_waiting + dlq_in_flight,
            "venueWins": {dex: wins.get(dex, 0) for dex in ("raydium", "meteora", "split")},
            "latencyMs": {
                "count": len(latencies),
                "p50": percentile(latencies, 0.5),
                "p90": percentile(latencies, 0.9),
                "p99": percentile(latencies, 0.99),
                "max": latencies[-1] if latencies else None,
            },
            "recentOrders": {"window": len(recent), "byStatus": dict(statuses)},
        }
