"""WebSocket limits kept outside the Lambda: connections per key, frames per connection.

One DynamoDB table (`LIMITS_TABLE`, docs/decisions/016) holds two kinds of item:

- `conns#<client>`: the client's open connections, a map `connectionId -> connectedAt`.
  `$connect` adds to it with one conditional `UpdateItem` (`size(conns) < max`), so
  concurrent connects cannot overshoot; `$disconnect` removes its entry. `$disconnect` is
  best-effort on API Gateway, so an entry can outlive its connection: when the map is full,
  entries older than API Gateway's 2 h maximum are dropped, and (at most once per
  `probe_interval_s` per client) entries old enough to be open are asked for with
  `GetConnection`; those that are gone (410) are dropped too, then the connect is retried.
  A client under its limit pays one write per connect and one per disconnect, nothing else.
- `frames#<connectionId>`: a GCRA rate limiter (a token bucket kept as one timestamp, the
  theoretical arrival time `tat`): `rate` frames per second, `burst` at once. A frame under
  the rate costs one conditional `UpdateItem` (two inside a burst); the item expires with
  the connection (TTL `expiresAt`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.models import Model

from chalicelib.errors import EngineError

__all__ = ["ConnectionLimiter", "FrameLimiter", "LimitModel", "Throttled", "TooManyConnections"]

# API Gateway closes every WebSocket connection after 2 hours: no entry can be live after that.
MAX_CONNECTION_S = 2 * 60 * 60


class TooManyConnections(EngineError):
    """A key that already holds its maximum of open WebSocket connections."""

    code = "too_many_connections"
    status = 429


class Throttled(EngineError):
    """A frame above its connection's rate: nothing is done for it."""

    code = "throttled"
    status = 429


class LimitModel(Model):
    class Meta:
        table_name = "solana-exec-limits"

    key = UnicodeAttribute(hash_key=True)
    conns = MapAttribute(null=True)  # type: ignore[var-annotated]
    probedAt = NumberAttribute(null=True)
    tat = NumberAttribute(null=True)
    expiresAt = NumberAttribute(null=True)  # the table's TTL attribute (frames items)


def _conditional(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def _no_map_yet(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ValidationException" and "document path" in str(
        getattr(exc, "cause_response_message", "")
    )


class ConnectionLimiter:
    """At most `maximum` open connections per client; a refused connect raises TooManyConnections."""

    def __init__(
        self,
        table: str,
        maximum: int,
        *,
        probe: Callable[[str], bool] | None = None,
        probe_interval_s: float = 30.0,
        probe_min_age_s: float = 30.0,
        max_connection_s: float = MAX_CONNECTION_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        LimitModel.Meta.table_name = table
        self.maximum = maximum
        self.probe = probe  # is this connection still open? (GetConnection; False on 410)
        self.probe_interval_s = probe_interval_s
        self.probe_min_age_s = probe_min_age_s  # younger ones may still be in their $connect
        self.max_connection_s = max_connection_s
        self.clock = clock

    def admit(self, client: str, connection_id: str) -> None:
        for _ in range(3):
            if self._add(client, connection_id):
                return
            if not self._reclaim(client):
                break
        raise TooManyConnections(
            f"this key already holds {self.maximum} open WebSocket connections; close one and retry"
        )

    def release(self, client: str, connection_id: str) -> None:
        item = LimitModel(f"conns#{client}")
        try:
            item.update(actions=[LimitModel.conns[connection_id].remove()], condition=LimitModel.conns.exists())
        except UpdateError as exc:
            if not _conditional(exc):
                raise

    def _add(self, client: str, connection_id: str) -> bool:
        """Take a slot; False when the key holds its maximum."""
        key = f"conns#{client}"
        now = round(self.clock(), 3)
        for _ in range(2):
            try:
                LimitModel(key).update(
                    actions=[LimitModel.conns[connection_id].set(now)],
                    condition=LimitModel.conns.exists() & (size(LimitModel.conns) < self.maximum),
                )
                return True
            except UpdateError as exc:
                # DynamoDB may refuse the path into a map that does not exist before evaluating the condition.
                if not (_conditional(exc) or _no_map_yet(exc)):
                    raise
            # Full, or the client's first connection: the map must exist before an entry is set in it.
            try:
                LimitModel(key, conns={connection_id: now}).save(condition=LimitModel.key.does_not_exist())
                return True
            except PutError as exc:
                if not _conditional(exc):
                    raise
            # The item exists: full, or another first connect created it between our two writes
            # (cold connects of a new key arrive together), so the update is worth one more try.
        return False

    def _reclaim(self, client: str) -> bool:
        """Drop entries whose connection is gone; True if any was dropped (worth trying again)."""
        key = f"conns#{client}"
        try:
            item = LimitModel.get(key, consistent_read=True)
        except LimitModel.DoesNotExist:
            return True
        now = self.clock()
        entries = {cid: float(at) for cid, at in (item.conns.as_dict() if item.conns else {}).items()}
        dead = [cid for cid, at in entries.items() if now - at > self.max_connection_s]
        if self.probe is not None and self._claim_probe(item, now):
            old_enough = [cid for cid, at in entries.items() if cid not in dead and now - at >= self.probe_min_age_s]
            dead += [cid for cid in old_enough if not self.probe(cid)]
        for start in range(0, len(dead), 50):
            item.update(actions=[LimitModel.conns[cid].remove() for cid in dead[start : start + 50]])
        return bool(dead)

    def _claim_probe(self, item: LimitModel, now: float) -> bool:
        """One $connect at a time probes a client's connections, at most once per interval."""
        cutoff = now - self.probe_interval_s
        try:
            item.update(
                actions=[LimitModel.probedAt.set(round(now, 3))],
                condition=LimitModel.probedAt.does_not_exist() | (LimitModel.probedAt < cutoff),
            )
        except UpdateError as exc:
            if _conditional(exc):
                return False
            raise
        return True


class FrameLimiter:
    """`rate` frames per second per connection, `burst` at once (GCRA); `take` raises Throttled.

    Times are whole milliseconds (DynamoDB adds integers exactly), so the rate is at most 1000/s.
    """

    def __init__(
        self,
        table: str,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        LimitModel.Meta.table_name = table
        self.rate = rate
        self.burst = max(1, burst)
        self.interval_ms = max(1, round(1000 / rate))
        # Frames of one connection run concurrently (API Gateway invokes them so), each with its
        # own `now`: a frame can commit after one whose clock read came later. Half an interval
        # (at most 1 s) of slack keeps the last frame of a burst from being refused for that,
        # and is less than one frame, so a burst is still exactly `burst` frames.
        self.tolerance_ms = (self.burst - 1) * self.interval_ms + min(self.interval_ms // 2, 1000)
        self.clock = clock
        self._ahead: dict[str, int] = {}  # connection -> the last tat seen here (which branch first)

    def take(self, connection_id: str) -> None:
        now = int(self.clock() * 1000)
        key = f"frames#{connection_id}"
        branches = [self._idle, self._in_burst]
        if self._ahead.get(connection_id, 0) > now:
            branches.reverse()
        for branch in branches:
            tat = branch(key, now)
            if tat is not None:
                if len(self._ahead) > 10_000:
                    self._ahead.clear()
                self._ahead[connection_id] = tat
                return
        raise Throttled(f"this connection is limited to {self.rate:g} frames per second (burst {self.burst})")

    def _idle(self, key: str, now: int) -> int | None:
        """The bucket is full (tat in the past): the frame sets tat to now + one interval."""
        expires = now // 1000 + MAX_CONNECTION_S + 600
        return self._update(
            key,
            [LimitModel.tat.set(now + self.interval_ms), LimitModel.expiresAt.set(expires)],
            LimitModel.tat.does_not_exist() | (LimitModel.tat <= now),
        )

    def _in_burst(self, key: str, now: int) -> int | None:
        """Within the burst (tat at most `tolerance` ahead): the frame pushes tat one interval on."""
        return self._update(
            key,
            [LimitModel.tat.set(LimitModel.tat + self.interval_ms)],
            (LimitModel.tat > now) & (LimitModel.tat <= now + self.tolerance_ms),
        )

    @staticmethod
    def _update(key: str, actions: list[Any], condition: Any) -> int | None:
        """The new tat (the update returns the item), or None when the condition fails."""
        item = LimitModel(key)
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if _conditional(exc):
                return None
            raise
        return int(item.tat or 0)
