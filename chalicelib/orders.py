"""Orders as plain data: statuses, the transitions allowed, and status events."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "TERMINAL",
    "OrderRecord",
    "OrderRequest",
    "Status",
    "SubscriberMode",
    "can_transition",
    "status_event",
    "utc_now_iso",
]


class Status(enum.StrEnum):
    PENDING = "pending"
    ROUTING = "routing"
    BUILDING = "building"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    # limit and sniper orders (issue 17): waiting for their trigger, or ended without one.
    WAITING = "waiting"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


TERMINAL = frozenset({Status.CONFIRMED, Status.FAILED, Status.CANCELLED, Status.EXPIRED})

_FORWARD: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.ROUTING, Status.FAILED, Status.WAITING, Status.CANCELLED}),
    # a limit or sniper order leaves `waiting`: triggered (routing), cancelled or expired.
    Status.WAITING: frozenset({Status.ROUTING, Status.CANCELLED, Status.EXPIRED}),
    Status.CANCELLED: frozenset(),
    Status.EXPIRED: frozenset(),
    # routing again is a retry: the next attempt starts over. A limit or sniper order whose
    # fill the market refused (the price moved past its limit) goes back to waiting, or expires.
    Status.ROUTING: frozenset({Status.ROUTING, Status.BUILDING, Status.FAILED, Status.WAITING, Status.EXPIRED}),
    Status.BUILDING: frozenset({Status.ROUTING, Status.SUBMITTED, Status.FAILED, Status.WAITING, Status.EXPIRED}),
    Status.SUBMITTED: frozenset({Status.ROUTING, Status.CONFIRMED, Status.FAILED, Status.WAITING, Status.EXPIRED}),
    Status.CONFIRMED: frozenset(),
    # only a redrive from the DLQ starts a failed order again.
    Status.FAILED: frozenset({Status.ROUTING}),
}


def can_transition(current: Status, new: Status, *, redrive: bool = False) -> bool:
    """A status never goes backwards except a retry, and a failed order moves only on redrive."""
    if current is Status.FAILED:
        return redrive and new is Status.ROUTING
    return new in _FORWARD[current]


class SubscriberMode(enum.StrEnum):
    """How a WebSocket connection follows an order.

    PENDING: connected with ?orderId=, history replay not yet delivered (no live pushes:
    on AWS nothing can be posted while $connect runs). REPLAYING: its replay is being
    sent. OPEN: connected with ?orderId= and replayed; closed after the terminal status.
    JOINING: the `subscribe` action is sending the history. SUBSCRIBED: followed through
    the `subscribe` action; never closed by the server.

    Only OPEN and SUBSCRIBED get live pushes. The other modes belong to whoever sends
    the history: it hands the connection over to live pushes with a write conditioned on
    the seq it has sent, so a connection never gets a live push before (or between) its
    replayed statuses (docs/decisions/011).
    """

    PENDING = "pending"
    REPLAYING = "replaying"
    OPEN = "open"
    JOINING = "joining"
    SUBSCRIBED = "subscribed"

    @property
    def live(self) -> bool:
        """The worker pushes statuses to this connection itself."""
        return self in (SubscriberMode.OPEN, SubscriberMode.SUBSCRIBED)


def plain_decimal(number: Decimal) -> str:
    """Decimal as plain text: 100, 1.5, 0.01; never 1E+2."""
    return format(number.normalize(), "f")


def utc_now_iso() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class OrderRequest:
    """A validated market order: symbols resolved, amount in base units."""

    token_in: str
    token_out: str
    amount: Decimal
    amount_in: int
    slippage: Decimal
    order_type: str = "market"
    # limit: tokenOut per tokenIn at least; sniper: tokenIn per tokenOut at most (issue 17).
    limit_price: Decimal | None = None
    max_price: Decimal | None = None
    expires_in_s: int | None = None

    @property
    def conditional(self) -> bool:
        """A limit or sniper order: it waits for its trigger before it executes."""
        return self.order_type in ("limit", "sniper")

    def fingerprint(self) -> str:
        """What makes two requests 'the same body' for Idempotency-Key purposes."""
        base = f"{self.order_type}|{self.token_in}|{self.token_out}|{self.amount_in}|{self.slippage.normalize()}"
        if self.conditional:
            base += f"|{self.limit_price}|{self.max_price}|{self.expires_in_s}"
        return base

    def min_amount_out(self, quoted_out: int) -> int:
        """The slippage floor in base units: never above what was quoted, rounded down."""
        return int((Decimal(quoted_out) * (1 - self.slippage)).to_integral_value(rounding="ROUND_FLOOR"))

    def to_public(self) -> dict[str, Any]:
        return {
            "type": self.order_type,
            "tokenIn": self.token_in,
            "tokenOut": self.token_out,
            "amount": plain_decimal(self.amount),
            "slippage": plain_decimal(self.slippage),
            **self._trigger_public(),
        }

    def _trigger_public(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if self.limit_price is not None:
            fields["limitPrice"] = plain_decimal(self.limit_price)
        if self.max_price is not None:
            fields["maxPrice"] = plain_decimal(self.max_price)
        if self.expires_in_s is not None:
            fields["expiresInS"] = self.expires_in_s
        return fields


@dataclass(frozen=True)
class OrderRecord:
    """An order as stored: the request, where it is, and what happened to it."""

    order_id: str
    request: OrderRequest
    status: Status
    seq: int
    created_at: str
    history: tuple[dict[str, Any], ...] = ()
    subscribers: dict[str, SubscriberMode] = field(default_factory=dict)
    attempts: int = 0
    round: int = 1
    details: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    # Writes the executor has made to the item (statuses and details; not subscriber
    # changes). Every executor write is conditional on it: the item is as it was read.
    version: int = 0
    # The client that submitted it (its API key's name): only that client reads or follows it.
    client: str = ""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def with_(self, **changes: Any) -> OrderRecord:
        return replace(self, **changes)

    def to_public(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "orderId": self.order_id,
            **self.request.to_public(),
            "status": self.status.value,
            "seq": self.seq,
            "createdAt": self.created_at,
            "attempts": self.attempts,
            "history": list(self.history),
        }
        # The figures come from the history (the item does not repeat them): the latest
        # routing decision, its slippage floor, and the fill once confirmed.
        latest = {str(event["status"]): event for event in self.history}
        routing = latest.get(Status.ROUTING.value)
        if routing is not None:
            body["routing"] = {key: routing[key] for key in ("quotes", "dex", "route") if key in routing}
        building = latest.get(Status.BUILDING.value)
        if building is not None and "minAmountOut" in building:
            body["minAmountOut"] = building["minAmountOut"]
        if self.status is Status.CONFIRMED:
            confirmed = latest[Status.CONFIRMED.value]
            body.update({key: confirmed[key] for key in ("executedPrice", "amountOut") if key in confirmed})
        for key in ("txHash", "dex", "error"):
            if self.details.get(key) is not None:
                body[key] = self.details[key]
        if self.history:
            body["updatedAt"] = self.history[-1]["timestamp"]
        return body


def status_event(order_id: str, status: Status, seq: int, **fields: Any) -> dict[str, Any]:
    """The message clients receive, exactly as stored in the order's history."""
    event: dict[str, Any] = {
        "type": "status",
        "orderId": order_id,
        "status": status.value,
        "seq": seq,
        "timestamp": utc_now_iso(),
    }
    event.update({k: v for k, v in fields.items() if v is not None})
    return event
