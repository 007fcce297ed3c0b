"""Limit and sniper orders in the CLI: the request fields, and the trigger as a user reads it."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

__all__ = ["trigger_fields", "trigger_text", "waiting_detail"]


def trigger_fields(args: Any) -> dict[str, Any]:
    """The body fields of `submit --type limit|sniper`; a market order sends none."""
    kind = getattr(args, "type", "market") or "market"
    if kind == "market":
        return {}
    fields: dict[str, Any] = {"type": kind}
    if kind == "limit" and args.limit_price is not None:
        fields["limitPrice"] = args.limit_price
    if kind == "sniper" and args.max_price is not None:
        fields["maxPrice"] = args.max_price
    if args.expires_in is not None:
        fields["expiresInS"] = args.expires_in
    return fields


def _time_left(order: dict[str, Any], now: float | None = None) -> str:
    expires_in = order.get("expiresInS")
    created = order.get("createdAt")
    if expires_in is None or not created:
        return ""
    start = datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp()
    left = start + int(expires_in) - (time.time() if now is None else now)
    if order.get("status") not in ("pending", "waiting"):
        return ""
    return f", {max(0, int(left))} s left" if left > 0 else ", expiring"


def trigger_text(order: dict[str, Any], now: float | None = None) -> str:
    """`limit 150 USDC/SOL, 120 s left` or `sniper <= 0.0002 SOL/NEW, 30 s left`; empty for a market order."""
    pair_out, pair_in = order.get("tokenOut", ""), order.get("tokenIn", "")
    if order.get("limitPrice") is not None:
        return f"limit >= {order['limitPrice']} {pair_out}/{pair_in}{_time_left(order, now)}"
    if order.get("maxPrice") is not None:
        return f"sniper <= {order['maxPrice']} {pair_in}/{str(pair_out)[:8]}{_time_left(order, now)}"
    return ""


def waiting_detail(event: dict[str, Any]) -> str:
    trigger = event.get("trigger") or {}
    if "limitPrice" in trigger:
        text = f"until the price reaches {trigger['limitPrice']}"
    elif "maxPrice" in trigger:
        text = f"for a pool, then at most {trigger['maxPrice']}"
    else:
        text = ""
    return f"{text}, expires {event.get('expiresAt')}" if event.get("expiresAt") else text
