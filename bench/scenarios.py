"""The named runs: simulated delays and load shape."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SCENARIOS", "Scenario"]


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
