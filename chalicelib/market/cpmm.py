"""Raydium CPMM (constant product) swap math, integer-exact like raydium-cp-swap.

fee = ceil(dx * rate / 1e6); out = y - ceil(x * y / (x + dx - fee)).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["FEE_RATE_DENOMINATOR", "CpmmPool", "CpmmSwap", "swap_without_fees", "trading_fee"]

FEE_RATE_DENOMINATOR = 1_000_000


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def trading_fee(amount_in: int, fee_ppm: int) -> int:
    return _ceil_div(amount_in * fee_ppm, FEE_RATE_DENOMINATOR)


def swap_without_fees(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """Output for `amount_in` already net of fees; the pool keeps the rounding."""
    if amount_in <= 0 or reserve_in <= 0 or reserve_out <= 0:
        return 0
    invariant = reserve_in * reserve_out
    return reserve_out - _ceil_div(invariant, reserve_in + amount_in)


@dataclass(frozen=True)
class CpmmSwap:
    amount_out: int
    fee: int
    spot_price: Decimal  # base units of output per base unit of input, before fees


@dataclass(frozen=True)
class CpmmPool:
    """A snapshot of one CPMM pool: reserves in base units of token x and token y."""

    reserve_x: int
    reserve_y: int
    fee_ppm: int

    def swap(self, amount_in: int, x_to_y: bool) -> CpmmSwap:
        r_in, r_out = (self.reserve_x, self.reserve_y) if x_to_y else (self.reserve_y, self.reserve_x)
        fee = trading_fee(amount_in, self.fee_ppm)
        out = swap_without_fees(amount_in - fee, r_in, r_out)
        return CpmmSwap(amount_out=out, fee=fee, spot_price=Decimal(r_out) / Decimal(r_in))
