"""What the router decides and what execution fills, with their wire and storage forms.

Amounts are integers in base units; messages carry decimal strings in whole units
(the contract's form) and storage dicts carry base-unit integers as strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from .tokens import Token, TokenRegistry

__all__ = ["Fill", "RouteLeg", "RoutePlan", "VenueQuote", "decimal_str", "whole_price"]

_PERCENT_PLACES = Decimal("0.01")
_IMPACT_PLACES = Decimal("0.00000001")


def decimal_str(value: Decimal) -> str:
    """Plain notation, no exponent, no trailing zeros: '142.3071', '0.00002', '100'."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def whole_price(token_in: Token, token_out: Token, amount_in: int, amount_out: int) -> Decimal:
    """Whole units of token_out per whole unit of token_in, to 18 significant digits."""
    if amount_in <= 0:
        return Decimal(0)
    price = TokenRegistry.to_decimal(token_out, amount_out) / TokenRegistry.to_decimal(token_in, amount_in)
    return price.quantize(Decimal(1).scaleb(price.adjusted() - 17)) if price else Decimal(0)


@dataclass(frozen=True)
class VenueQuote:
    """One venue's answer for the whole order; a failed venue has `error` and zero amounts."""

    dex: str
    amount_in: int
    amount_out: int
    fee: int  # in token_in base units
    price: Decimal  # whole token_out per whole token_in, after fees
    price_impact: Decimal  # fraction of the spot price lost to the trade's size
    error: str | None = None

    @classmethod
    def failed(cls, dex: str, amount_in: int, error: str) -> VenueQuote:
        return cls(dex, amount_in, 0, 0, Decimal(0), Decimal(0), error)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_message(self, token_in: Token, token_out: Token) -> dict[str, str]:
        if self.error is not None:
            return {"dex": self.dex, "error": self.error}
        return {
            "dex": self.dex,
            "amountOut": decimal_str(TokenRegistry.to_decimal(token_out, self.amount_out)),
            "price": decimal_str(self.price),
            "fee": decimal_str(TokenRegistry.to_decimal(token_in, self.fee)),
            "priceImpact": decimal_str(self.price_impact),
        }

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "dex": self.dex,
            "amountIn": str(self.amount_in),
            "amountOut": str(self.amount_out),
            "fee": str(self.fee),
            "price": str(self.price),
            "priceImpact": str(self.price_impact),
        }
        if self.error is not None:
            d["error"] = self.error
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VenueQuote:
        return cls(
            dex=str(d["dex"]),
            amount_in=int(d["amountIn"]),
            amount_out=int(d["amountOut"]),
            fee=int(d["fee"]),
            price=Decimal(str(d["price"])),
            price_impact=Decimal(str(d["priceImpact"])),
            error=None if d.get("error") is None else str(d["error"]),
        )


@dataclass(frozen=True)
class RouteLeg:
    """The part of the order sent to one venue."""

    dex: str
    percent: Decimal  # of the order's amount_in, two places; a plan's legs add to 100
    amount_in: int
    amount_out: int

    def to_message(self, token_in: Token, token_out: Token) -> dict[str, str]:
        return {
            "dex": self.dex,
            "percent": decimal_str(self.percent),
            "amountIn": decimal_str(TokenRegistry.to_decimal(token_in, self.amount_in)),
            "amountOut": decimal_str(TokenRegistry.to_decimal(token_out, self.amount_out)),
        }

    def to_dict(self) -> dict[str, str]:
        return {
            "dex": self.dex,
            "percent": str(self.percent),
            "amountIn": str(self.amount_in),
            "amountOut": str(self.amount_out),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RouteLeg:
        return cls(str(d["dex"]), Decimal(str(d["percent"])), int(d["amountIn"]), int(d["amountOut"]))


def leg_percents(amounts: list[int]) -> list[Decimal]:
    """Each amount's share of the total, two places, adjusted on the last so they add to 100."""
    total = sum(amounts)
    shares = [(Decimal(a) * 100 / total).quantize(_PERCENT_PLACES, ROUND_DOWN) for a in amounts[:-1]]
    return [*shares, Decimal(100) - sum(shares, Decimal(0))]


@dataclass(frozen=True)
class RoutePlan:
    """The router's decision: every venue's quote, the chosen dex and the legs to send."""

    token_in: Token
    token_out: Token
    amount_in: int
    quotes: tuple[VenueQuote, ...]
    dex: str  # "raydium" | "meteora" | "split"
    legs: tuple[RouteLeg, ...]
    amount_out: int
    quoted_at_ms: int
    expires_at_ms: int
    price_impact: Decimal = Decimal(0)  # of the chosen route, as a fraction
    quote_wait_ms: int = 0  # simulated venue latency the router waited (the slowest quote)

    @property
    def price(self) -> Decimal:
        return whole_price(self.token_in, self.token_out, self.amount_in, self.amount_out)

    def min_amount_out(self, slippage_bps: int) -> int:
        if not 0 <= slippage_bps <= 10_000:
            raise ValueError("slippage_bps must be within 0..10000")
        return self.amount_out * (10_000 - slippage_bps) // 10_000

    def to_message(self) -> dict[str, Any]:
        """The `routing` status fields of the contract: quotes, dex, route."""
        return {
            "quotes": [q.to_message(self.token_in, self.token_out) for q in self.quotes],
            "dex": self.dex,
            "route": [leg.to_message(self.token_in, self.token_out) for leg in self.legs],
            "amountOut": decimal_str(TokenRegistry.to_decimal(self.token_out, self.amount_out)),
            "price": decimal_str(self.price),
            "priceImpact": decimal_str(self.price_impact),
        }

    def to_dict(self, quotes: bool = True) -> dict[str, Any]:
        """Everything, or (quotes=False) what executing the plan needs: not the venues' quotes."""
        return {
            "tokenIn": self.token_in.mint,
            "tokenOut": self.token_out.mint,
            "amountIn": str(self.amount_in),
            **({"quotes": [q.to_dict() for q in self.quotes]} if quotes else {}),
            "dex": self.dex,
            "legs": [leg.to_dict() for leg in self.legs],
            "amountOut": str(self.amount_out),
            "quotedAtMs": str(self.quoted_at_ms),
            "expiresAtMs": str(self.expires_at_ms),
            "priceImpact": str(self.price_impact),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], registry: TokenRegistry) -> RoutePlan:
        token_in = registry.resolve(str(d["tokenIn"]))
        token_out = registry.resolve(str(d["tokenOut"]))
        if token_in is None or token_out is None:
            raise ValueError(f"unknown token in stored plan: {d['tokenIn']} / {d['tokenOut']}")
        return cls(
            token_in=token_in,
            token_out=token_out,
            amount_in=int(d["amountIn"]),
            quotes=tuple(VenueQuote.from_dict(q) for q in d.get("quotes", ())),
            dex=str(d["dex"]),
            legs=tuple(RouteLeg.from_dict(leg) for leg in d["legs"]),
            amount_out=int(d["amountOut"]),
            quoted_at_ms=int(d["quotedAtMs"]),
            expires_at_ms=int(d["expiresAtMs"]),
            price_impact=Decimal(str(d.get("priceImpact", "0"))),
        )


@dataclass(frozen=True)
class Fill:
    """What execution gave: the total, its price, and each leg as executed."""

    amount_out: int
    executed_price: Decimal  # whole token_out per whole token_in
    legs: tuple[RouteLeg, ...]
    executed_at_ms: int = 0
    # On a real cluster, from getTransaction: where it landed and what it cost.
    slot: int | None = None
    fee_lamports: int | None = None
    compute_units: int | None = None

    def to_message(self, token_out: Token) -> dict[str, str]:
        return {
            "amountOut": decimal_str(TokenRegistry.to_decimal(token_out, self.amount_out)),
            "executedPrice": decimal_str(self.executed_price),
        }
