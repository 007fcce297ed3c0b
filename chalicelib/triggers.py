"""Limit and sniper orders (issue 17): what they ask for, and whether the market gives it.

Both types reduce to one floor in tokenOut base units: a limit order wants at least
`limitPrice` tokenOut per tokenIn, a sniper order at most `maxPrice` tokenIn per tokenOut,
that is at least `amount / maxPrice` tokenOut. The trigger holds when the best quote
(after fees, from chain state) reaches the floor, and the same floor is the swap's
minimum out, so the program itself refuses a fill below the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from solders.pubkey import Pubkey

from chalicelib.errors import InvalidOrder
from chalicelib.orders import OrderRecord, OrderRequest, plain_decimal

__all__ = [
    "DEFAULT_EXPIRES_IN_S",
    "MAX_EXPIRES_IN_S",
    "expired",
    "expires_at_ms",
    "floor_out",
    "parse_trigger",
    "sniper_token_out",
    "waiting_fields",
]

DEFAULT_EXPIRES_IN_S = 86_400
MAX_EXPIRES_IN_S = 30 * 86_400
_MAX_NUMBER_TEXT = 64


def _positive(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)) or len(str(value)) > _MAX_NUMBER_TEXT:
        raise InvalidOrder(f"{field} must be a positive number or decimal string", field=field)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidOrder(f"{field} is not a number: {str(value)[:64]!r}", field=field) from None
    if not number.is_finite() or number <= 0:
        raise InvalidOrder(f"{field} must be a positive number", field=field)
    return number


def parse_trigger(body: dict[str, Any], order_type: str) -> dict[str, Any]:
    """The OrderRequest fields of a limit or sniper order; a market order may carry none."""
    present = [k for k in ("limitPrice", "maxPrice", "expiresInS") if k in body]
    if order_type == "market":
        if present:
            raise InvalidOrder(f"{present[0]} is only for limit and sniper orders", field=present[0])
        return {}
    price_field, other = ("limitPrice", "maxPrice") if order_type == "limit" else ("maxPrice", "limitPrice")
    if other in body:
        raise InvalidOrder(f"{other} is not a field of a {order_type} order (use {price_field})", field=other)
    if price_field not in body:
        raise InvalidOrder(f"{price_field} is required for a {order_type} order", field=price_field)
    price = _positive(body[price_field], price_field)
    expires = body.get("expiresInS", DEFAULT_EXPIRES_IN_S)
    if isinstance(expires, bool) or not isinstance(expires, (Decimal, int)) or expires != int(expires):
        raise InvalidOrder(f"expiresInS must be an integer from 1 to {MAX_EXPIRES_IN_S}", field="expiresInS")
    if not 1 <= int(expires) <= MAX_EXPIRES_IN_S:
        raise InvalidOrder(f"expiresInS must be an integer from 1 to {MAX_EXPIRES_IN_S}", field="expiresInS")
    key = "limit_price" if order_type == "limit" else "max_price"
    return {key: price, "expires_in_s": int(expires)}


@dataclass(frozen=True)
class _UnlistedMint:
    symbol: str  # the mint address stands in for a symbol until a pool lists it
    decimals: int = 0


def sniper_token_out(value: Any, tokens: Any) -> Any:
    """A sniper's tokenOut: a known token, or any mint address (its pool may not exist yet)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidOrder("tokenOut must be a token symbol or mint address", field="tokenOut")
    known = tokens.resolve(value.strip())
    if known is not None:
        return known
    try:
        Pubkey.from_string(value.strip())
    except ValueError:
        raise InvalidOrder(
            f"tokenOut {value[:64]!r} is neither a known token nor a mint address", field="tokenOut"
        ) from None
    return _UnlistedMint(value.strip())


def floor_out(request: OrderRequest, decimals_out: int) -> int:
    """The least tokenOut (base units) the order accepts; 0 for a market order."""
    if request.limit_price is not None:
        wanted = request.limit_price * request.amount
    elif request.max_price is not None:
        wanted = request.amount / request.max_price
    else:
        return 0
    return int(wanted.scaleb(decimals_out).to_integral_value(rounding=ROUND_CEILING))


def expires_at_ms(record: OrderRecord) -> int | None:
    if record.request.expires_in_s is None:
        return None
    created = datetime.fromisoformat(record.created_at.replace("Z", "+00:00")).timestamp()
    return int(created * 1000) + record.request.expires_in_s * 1000


def expired(record: OrderRecord, now_ms: int) -> bool:
    at = expires_at_ms(record)
    return at is not None and now_ms >= at


def waiting_fields(record: OrderRecord) -> dict[str, Any]:
    """What the `waiting` event says: the trigger and when it runs out."""
    request = record.request
    fields: dict[str, Any] = {"expiresAt": _iso_ms(expires_at_ms(record))}
    if request.limit_price is not None:
        fields["trigger"] = {"limitPrice": plain_decimal(request.limit_price)}
    if request.max_price is not None:
        fields["trigger"] = {"maxPrice": plain_decimal(request.max_price), "poolRequired": True}
    return fields


def _iso_ms(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
