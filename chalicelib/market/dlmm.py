"""Meteora DLMM swap math: a walk over constant-price bins with a volatility-driven fee.

Mirrors the on-chain program (and the `meteora-dlmm` quoter, which the tests compare
against) for pools that take the fee on the input and hold no limit orders. Kept here
rather than calling that library because the router also needs the fee charged and
the bins crossed, which its `quote()` does not return.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from decimal import Context, Decimal

__all__ = [
    "FEE_PRECISION",
    "MAX_FEE_RATE",
    "Q64",
    "DlmmBin",
    "DlmmParams",
    "DlmmPool",
    "DlmmSwap",
    "base_fee_rate",
    "bin_id_for_price",
    "bin_price_x64",
    "variable_fee_rate",
]

Q64 = 1 << 64
FEE_PRECISION = 1_000_000_000
MAX_FEE_RATE = 100_000_000  # 10 %
BASIS_POINT_MAX = 10_000
VAR_FEE_DENOMINATOR = 100_000_000_000
_PRECISE = Context(prec=60)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class DlmmParams:
    """A pair's static parameters, as in the LbPair account."""

    bin_step: int
    base_factor: int
    base_fee_power_factor: int = 0
    variable_fee_control: int = 0
    max_volatility_accumulator: int = 350_000
    filter_period: int = 30
    decay_period: int = 600
    reduction_factor: int = 5_000


def base_fee_rate(p: DlmmParams) -> int:
    return p.base_factor * p.bin_step * 10 * 10**p.base_fee_power_factor


def variable_fee_rate(p: DlmmParams, volatility_accumulator: int) -> int:
    if p.variable_fee_control <= 0:
        return 0
    squared = (volatility_accumulator * p.bin_step) ** 2
    return _ceil_div(p.variable_fee_control * squared, VAR_FEE_DENOMINATOR)


def total_fee_rate(p: DlmmParams, volatility_accumulator: int) -> int:
    return min(base_fee_rate(p) + variable_fee_rate(p, volatility_accumulator), MAX_FEE_RATE)


@functools.lru_cache(maxsize=65_536)
def bin_price_x64(bin_step: int, bin_id: int) -> int:
    """(1 + bin_step / 1e4) ** bin_id as Q64.64: price of one base unit of x in base units of y."""
    base = _PRECISE.add(Decimal(1), Decimal(bin_step).scaleb(-4))
    return int(_PRECISE.multiply(_PRECISE.power(base, bin_id), Decimal(Q64)))


def bin_id_for_price(bin_step: int, price: Decimal) -> int:
    """The bin whose price is nearest `price` (y base units per x base unit)."""
    base = _PRECISE.add(Decimal(1), Decimal(bin_step).scaleb(-4))
    exact = _PRECISE.divide(_PRECISE.ln(price), _PRECISE.ln(base))
    return int(exact.to_integral_value())


@dataclass(frozen=True)
class DlmmBin:
    amount_x: int
    amount_y: int
    price_x64: int


@dataclass(frozen=True)
class DlmmSwap:
    amount_out: int
    fee: int
    bins_crossed: int
    remaining_in: int  # > 0 when the pool ran dry before the input was spent
    spot_price: Decimal  # y per x (or x per y) at the active bin, base units, before fees


@dataclass(frozen=True)
class DlmmPool:
    """A snapshot of one DLMM pair: bins by id and the volatility state before the swap."""

    params: DlmmParams
    active_id: int
    bins: dict[int, DlmmBin] = field(hash=False)
    volatility_accumulator: int = 0
    volatility_reference: int = 0
    index_reference: int = 0
    last_update_ts: int = 0

    def swap(self, amount_in: int, x_to_y: bool, now_s: int) -> DlmmSwap:
        p = self.params
        lo, hi = min(self.bins), max(self.bins)
        # Reference update as the program does at the start of a swap.
        v_ref, i_ref = self.volatility_reference, self.index_reference
        elapsed = now_s - self.last_update_ts
        if elapsed >= p.filter_period:
            i_ref = self.active_id
            v_ref = (
                self.volatility_accumulator * p.reduction_factor // BASIS_POINT_MAX if elapsed < p.decay_period else 0
            )
        step = -1 if x_to_y else 1
        current, remaining, out_total, fee_total, crossed = self.active_id, amount_in, 0, 0, 0
        while remaining > 0 and lo <= current <= hi:
            b = self.bins.get(current)
            reserve = (b.amount_y if x_to_y else b.amount_x) if b else 0
            if b is None or reserve == 0:
                current += step
                continue
            v_acc = min(v_ref + abs(i_ref - current) * BASIS_POINT_MAX, p.max_volatility_accumulator)
            rate = total_fee_rate(p, v_acc)
            excluded = remaining - _ceil_div(remaining * rate, FEE_PRECISION)
            max_in = _ceil_div(reserve * Q64, b.price_x64) if x_to_y else _ceil_div(reserve * b.price_x64, Q64)
            if excluded >= max_in:
                spent = _ceil_div(max_in * FEE_PRECISION, FEE_PRECISION - rate)
                spent = min(spent, remaining)
                out_total += reserve
                fee_total += spent - max_in
                remaining -= spent
                crossed += 1
                current += step
            else:
                out_total += (excluded * b.price_x64) // Q64 if x_to_y else (excluded * Q64) // b.price_x64
                fee_total += remaining - excluded
                remaining = 0
        active = self.bins.get(self.active_id)
        spot = Decimal(0)
        if active is not None:
            spot = Decimal(active.price_x64) / Q64 if x_to_y else Decimal(Q64) / Decimal(active.price_x64)
        return DlmmSwap(out_total, fee_total, crossed + 1, remaining, spot)
