"""Human-readable lines for statuses, orders and dead letters (`--json` skips all of this)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["kv_lines", "pct", "status_line", "table"]


def pct(fraction: Any) -> str:
    """`"0.01"` -> `1%`; prices and amounts stay the decimal strings the API sent."""
    try:
        value = (Decimal(str(fraction)) * 100).normalize()
    except InvalidOperation:
        return str(fraction)
    return f"{value:f}%"


def _clock(timestamp: Any) -> str:
    text = str(timestamp or "")
    return text[11:23] if len(text) >= 23 else text  # 2026-11-25T10:00:00.123Z -> 10:00:00.123 (UTC)


def _quotes(event: dict[str, Any]) -> str:
    parts = []
    for quote in event.get("quotes") or []:
        if "error" in quote:
            parts.append(f"{quote.get('dex')} error ({quote['error']})")
        else:
            parts.append(f"{quote.get('dex')} {quote.get('amountOut')} (impact {pct(quote.get('priceImpact', 0))})")
    legs = " + ".join(f"{leg.get('dex')} {leg.get('percent')}%" for leg in event.get("route") or [])
    text = f"quotes {', '.join(parts) or 'none'} -> {event.get('dex')}" + (f" [{legs}]" if legs else "")
    if int(event.get("attempt") or 1) > 1:
        text = f"attempt {event['attempt']} (previous: {event.get('error', 'failed')}); " + text
    return text


from solexec_cli.triggers import waiting_detail  # noqa: E402


def status_line(event: dict[str, Any], token_out: str = "") -> str:
    """One line per status: time, status, then what that status carries."""
    status = str(event.get("status"))
    unit = f" {token_out}" if token_out else ""
    if status == "pending":
        detail = (
            f"{event.get('amount')} {event.get('tokenIn')} -> {event.get('tokenOut')}, "
            f"slippage {pct(event.get('slippage', '0'))}"
        )
    elif status == "routing":
        detail = _quotes(event)
    elif status == "building":
        detail = f"minAmountOut {event.get('minAmountOut')}{unit}"
    elif status == "submitted":
        detail = f"tx {event.get('txHash', '')} on {event.get('dex', '?')}"
    elif status == "confirmed":
        detail = (
            f"amountOut {event.get('amountOut')}{unit} at {event.get('executedPrice')} on {event.get('dex')}, "
            f"tx {event.get('txHash')}"
        )
    elif status == "failed":
        detail = f"{event.get('error')} after {event.get('attempts')} attempt(s)"
    elif status == "waiting":
        detail = waiting_detail(event)
    else:
        detail = ""
    return f"{_clock(event.get('timestamp'))}  {status:<9}  {detail}".rstrip()


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned columns, two spaces apart."""
    cells = [list(headers)] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def kv_lines(data: dict[str, Any]) -> str:
    width = max((len(k) for k in data), default=0)
    return "\n".join(f"{k.ljust(width)}  {_plain(v)}" for k, v in data.items())


def _plain(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    return "-" if value is None else str(value)
