"""Usage plan throttling per API key, as API Gateway applies it before a route runs.

A REST API's usage plan (``AWS::ApiGateway::UsagePlan`` with ``Throttle``
``RateLimit``/``BurstLimit``, on the template's REST API) throttles each API key
with a token bucket: ``BurstLimit`` requests at once, refilled at ``RateLimit``
per second. A request over it gets 429 (gateway response ``THROTTLED``) and never
reaches the integration. With an authorizer as the key source, the key is the
authorizer's ``usageIdentifierKey``.

``RATE_LIMIT_RPS`` / ``RATE_LIMIT_BURST`` override the template's figures locally
(tests and benchmarks set them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["TokenBucket", "UsagePlan"]


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.clock = clock
        self.last = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class UsagePlan:
    """One bucket per usage identifier key, all with the plan's rate and burst."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def allow(self, usage_key: str) -> bool:
        with self._lock:
            bucket = self._buckets.get(usage_key)
            if bucket is None:
                bucket = self._buckets[usage_key] = TokenBucket(self.rate, self.burst, self.clock)
            return bucket.take()

    @classmethod
    def from_template(
        cls, template: Mapping[str, Any], env: Mapping[str, str], rest_api: str = "RestAPI"
    ) -> UsagePlan | None:
        """The template's usage plan on ``rest_api`` (env overrides applied), or None if it has none."""
        rate = burst = None
        parameters = template.get("Parameters") or {}
        for resource in (template.get("Resources") or {}).values():
            if not isinstance(resource, dict) or resource.get("Type") != "AWS::ApiGateway::UsagePlan":
                continue
            props = resource.get("Properties") or {}
            stages = props.get("ApiStages") or []
            if not any(_refers_to(stage.get("ApiId"), rest_api) for stage in stages if isinstance(stage, dict)):
                continue
            throttle = props.get("Throttle") or {}
            rate = _value(throttle.get("RateLimit"), parameters)
            burst = _value(throttle.get("BurstLimit"), parameters)
        if env.get("RATE_LIMIT_RPS"):
            rate = float(env["RATE_LIMIT_RPS"])
        if env.get("RATE_LIMIT_BURST"):
            burst = float(env["RATE_LIMIT_BURST"])
        if rate is None and burst is None:
            return None
        rate = rate if rate is not None else 10_000.0
        return cls(float(rate), int(burst if burst is not None else max(1, rate)))


def _refers_to(value: Any, logical_id: str) -> bool:
    return isinstance(value, dict) and value.get("Ref") == logical_id


def _value(value: Any, parameters: Mapping[str, Any]) -> float | None:
    """A number, or a Ref to a parameter's default."""
    if isinstance(value, dict) and "Ref" in value:
        value = (parameters.get(value["Ref"]) or {}).get("Default")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
