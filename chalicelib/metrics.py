"""CloudWatch metrics in Embedded Metric Format (Powertools): one JSON line per flush.

On AWS, CloudWatch turns these log lines into metrics with no API call; locally they
are just structured lines in the log. The same figures are served by `GET /api/stats`.
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

__all__ = ["flush", "metrics", "record_confirmed", "record_failed", "record_retry"]

metrics = Metrics(namespace="SolanaExec", service="solana-exec")


def record_confirmed(dex: str, latency_ms: float, simulated_ms: int) -> None:
    metrics.add_metric(name="OrdersConfirmed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=f"VenueWins_{dex}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="OrderLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
    metrics.add_metric(name="EngineOverhead", unit=MetricUnit.Milliseconds, value=max(0.0, latency_ms - simulated_ms))


def record_failed(reason: str) -> None:
    metrics.add_metric(name="OrdersFailed", unit=MetricUnit.Count, value=1)
    metrics.add_metadata(key="lastFailureReason", value=reason)


def record_retry() -> None:
    metrics.add_metric(name="AttemptsRetried", unit=MetricUnit.Count, value=1)


def flush() -> None:
    metrics.flush_metrics()
