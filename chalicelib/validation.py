"""Turn an untrusted `POST /order` body into an `OrderRequest`, or say exactly what is wrong."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from chalicelib.errors import InvalidOrder
from chalicelib.orders import OrderRequest
from chalicelib.triggers import parse_trigger, sniper_token_out

__all__ = ["TokenLookup", "parse_json_body", "parse_order"]

_ALLOWED_FIELDS = frozenset(
    {"tokenIn", "tokenOut", "amount", "slippage", "slippageBps", "type", "limitPrice", "maxPrice", "expiresInS"}
)
_MAX_NUMBER_TEXT = 64


class _Token(Protocol):
    symbol: str
    decimals: int


class TokenLookup(Protocol):
    def resolve(self, symbol_or_mint: str) -> Any: ...


def parse_json_body(raw: bytes | str | None, max_bytes: int) -> Any:
    """Decode JSON with exact decimals; floats never enter the engine."""
    if raw is None or raw == b"" or raw == "":
        raise InvalidOrder("the request body is empty: send a JSON object", code="invalid_json")
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise InvalidOrder(f"the body is {len(data)} bytes; at most {max_bytes} are accepted", code="payload_too_large")
    try:
        return json.loads(data, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, RecursionError) as exc:
        raise InvalidOrder(f"the body is not valid JSON: {exc}", code="invalid_json") from None


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise InvalidOrder(f"{field} must be a number or a decimal string", field=field)
    text = str(value).strip()
    if not text or len(text) > _MAX_NUMBER_TEXT:
        raise InvalidOrder(f"{field} must be a number or a decimal string", field=field)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise InvalidOrder(f"{field} is not a number: {text!r}", field=field) from None
    if not number.is_finite():
        raise InvalidOrder(f"{field} must be finite", field=field)
    return number


def _token(value: Any, field: str, tokens: TokenLookup) -> _Token:
    if not isinstance(value, str) or not value.strip():
        raise InvalidOrder(f"{field} must be a token symbol or mint address", field=field)
    token = tokens.resolve(value.strip())
    if token is None:
        raise InvalidOrder(
            f"{field} {value[:64]!r} is not a supported token (see GET /tokens)", field=field, code="unsupported_token"
        )
    return token


def _slippage(body: dict[str, Any]) -> Decimal:
    has_fraction, has_bps = "slippage" in body, "slippageBps" in body
    if has_fraction and has_bps:
        raise InvalidOrder("send slippage or slippageBps, not both", field="slippage")
    if has_bps:
        bps = body["slippageBps"]
        if isinstance(bps, bool) or not isinstance(bps, Decimal) or bps != bps.to_integral_value():
            raise InvalidOrder("slippageBps must be an integer from 1 to 10000", field="slippageBps")
        if not 1 <= bps <= 10000:
            raise InvalidOrder("slippageBps must be an integer from 1 to 10000", field="slippageBps")
        return bps / Decimal(10000)
    if not has_fraction:
        raise InvalidOrder("slippage is required: a fraction such as 0.01 for 1 %", field="slippage")
    slippage = _decimal(body["slippage"], "slippage")
    if not Decimal(0) < slippage <= Decimal(1):
        raise InvalidOrder("slippage must be a fraction with 0 < slippage <= 1 (0.01 = 1 %)", field="slippage")
    return slippage


def parse_order(body: Any, tokens: Any) -> OrderRequest:
    """Validate every field of the contract; the first problem found is reported."""
    if not isinstance(body, dict):
        raise InvalidOrder("the body must be a JSON object")
    unknown = sorted(set(body) - _ALLOWED_FIELDS)
    if unknown:
        raise InvalidOrder(f"unknown field(s): {', '.join(k[:40] for k in unknown[:5])}", field=unknown[0][:40])
    order_type = body.get("type", "market")
    if order_type not in ("market", "limit", "sniper"):
        raise InvalidOrder(
            "type must be 'market', 'limit' or 'sniper'",
            field="type",
            code="unsupported_order_type",
        )
    for required in ("tokenIn", "tokenOut", "amount"):
        if required not in body:
            raise InvalidOrder(f"{required} is required", field=required)
    trigger = parse_trigger(body, order_type)
    token_in = _token(body["tokenIn"], "tokenIn", tokens)
    token_out = (
        sniper_token_out(body["tokenOut"], tokens)
        if order_type == "sniper"
        else _token(body["tokenOut"], "tokenOut", tokens)
    )
    if token_in.symbol == token_out.symbol:
        raise InvalidOrder("tokenIn and tokenOut must differ", field="tokenOut")
    amount = _decimal(body["amount"], "amount")
    if amount <= 0:
        raise InvalidOrder("amount must be positive", field="amount")
    if -amount.as_tuple().exponent > token_in.decimals:  # type: ignore[operator]
        raise InvalidOrder(f"amount has more decimals than {token_in.symbol} has ({token_in.decimals})", field="amount")
    amount_in = int(amount.scaleb(token_in.decimals))
    if amount_in >= 2**64:
        raise InvalidOrder("amount is larger than any Solana token account can hold", field="amount")
    slippage = _slippage(body)
    return OrderRequest(
        token_in=token_in.symbol,
        token_out=token_out.symbol,
        amount=amount,
        amount_in=amount_in,
        slippage=slippage,
        order_type=order_type,
        **trigger,
    )
