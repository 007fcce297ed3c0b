"""Load generator and live metrics for the engine: how fast and how costly each order is.

    python -m bench reference|zero|burst|all [--orders N] [--concurrency C | --rate R] [--out bench/out]

Drives the public API only (REST POST /order, WebSocket subscribe), against its own
moto + local runtime (child processes on free ports) unless --rest-url/--ws-url point
at a running engine. See docs/benchmarks.md for what every figure means.
"""

from __future__ import annotations

__all__: list[str] = []
