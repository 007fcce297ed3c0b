"""The named runs: simulated delays and load shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SCENARIOS", "Scenario", "targets"]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    env: dict[str, str] = field(default_factory=dict)  # DEX_QUOTE_MS / DEX_SUBMIT_MS for the runtime
    orders: int = 300
    concurrency: int | None = 30  # orders in flight (submitted, not yet terminal)
    rate: float | None = None  # orders per second, instead of concurrency
    ramp_s: float = 0.0  # open the in-flight window over this long (concurrency mode)
    ws_connections: int = 4
    clients: int = 16  # REST client threads (each with a keep-alive session)
    # The goals for this run: lowest ratio to the ceiling, highest overhead p99 (ms).
    min_ratio: float | None = None
    max_overhead_p99_ms: float | None = None


def targets(scenario: Scenario, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal the scenario has, with the measured value and whether it was met."""
    goals: list[dict[str, Any]] = [
        {
            "goal": "no accepted order lost",
            "value": summary["orders"]["unfinished"],
            "met": not summary["orders"]["unfinished"],
        }
    ]
    ratio = summary.get("ratioToCeiling")
    if scenario.min_ratio is not None and ratio is not None:
        goals.append(
            {
                "goal": f"throughput >= {scenario.min_ratio:.0%} of the ceiling",
                "value": round(ratio, 4),
                "met": ratio >= scenario.min_ratio,
            }
        )
    p99 = summary["overheadMs"].get("p99")
    if scenario.max_overhead_p99_ms is not None and p99 is not None:
        goals.append(
            {
                "goal": f"overhead p99 < {scenario.max_overhead_p99_ms:g} ms",
                "value": p99,
                "met": p99 < scenario.max_overhead_p99_ms,
            }
        )
    return goals


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "reference",
            "default venue delays (quote 200 ms, chain 2000-3000 ms), 30 in flight (window opened over 2 s) "
            "so the 10 workers never idle",
            {"DEX_QUOTE_MS": "200", "DEX_SUBMIT_MS": "2000-3000"},
            orders=300,
            concurrency=30,
            ramp_s=2.0,
            min_ratio=0.95,
            max_overhead_p99_ms=100,
        ),
        Scenario(
            "zero",
            "no venue delay: the engine's own capacity on this machine",
            {"DEX_QUOTE_MS": "0", "DEX_SUBMIT_MS": "0"},
            orders=300,
            concurrency=30,
            ramp_s=1.0,
        ),
        Scenario(
            "burst",
            "every order submitted at once, short delays (quote 20 ms, chain 100-200 ms): must drain, none lost",
            {"DEX_QUOTE_MS": "20", "DEX_SUBMIT_MS": "100-200"},
            orders=500,
            concurrency=None,
            ws_connections=8,
            clients=32,
        ),
    )
}
