"""Which pairs trade, and how deep each venue's pool for them is.

Pools are not stored: a venue rebuilds its pool for an instant from the price path, so
the simulated market needs no shared state. Depths are in whole units, sized after the
real pools' order of magnitude (SOL/USDC deep, memecoins thin).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .dlmm import DlmmParams

__all__ = ["DEFAULT_POOLS", "PoolSpec", "find_pool"]


@dataclass(frozen=True)
class PoolSpec:
    """One pair on both venues; `base` is the DLMM's token x, `quote` its token y."""

    base: str
    quote: str
    raydium_base_depth: Decimal  # whole units of base in the CPMM pool (the quote side matches)
    meteora_quote_value: Decimal  # whole units of quote worth of liquidity across all bins
    meteora: DlmmParams
    meteora_half_width: int = 60  # bins each side of the active one holding liquidity
    raydium_fee_ppm: int | None = None  # None: MarketConfig.raydium_fee_ppm

    @property
    def key(self) -> str:
        return f"{self.base}/{self.quote}"


def _dlmm(bin_step: int, base_factor: int, variable_fee_control: int) -> DlmmParams:
    return DlmmParams(
        bin_step=bin_step,
        base_factor=base_factor,
        variable_fee_control=variable_fee_control,
        max_volatility_accumulator=350_000,
    )


DEFAULT_POOLS: tuple[PoolSpec, ...] = (
    PoolSpec("SOL", "USDC", Decimal(60_000), Decimal(4_000_000), _dlmm(10, 20_000, 40_000)),
    PoolSpec("SOL", "USDT", Decimal(25_000), Decimal(1_500_000), _dlmm(10, 20_000, 40_000)),
    PoolSpec(
        "USDC",
        "USDT",
        Decimal(5_000_000),
        Decimal(5_000_000),
        _dlmm(1, 10_000, 0),
        meteora_half_width=20,
        raydium_fee_ppm=100,
    ),
    PoolSpec("SOL", "JUP", Decimal(8_000), Decimal(1_500_000), _dlmm(20, 10_000, 20_000)),
    PoolSpec("SOL", "BONK", Decimal(5_000), Decimal(30_000_000_000), _dlmm(50, 5_000, 5_000)),
    PoolSpec("SOL", "RAY", Decimal(6_000), Decimal(250_000), _dlmm(20, 10_000, 20_000)),
    PoolSpec(
        "mSOL",
        "SOL",
        Decimal(10_000),
        Decimal(10_000),
        _dlmm(1, 10_000, 0),
        meteora_half_width=20,
        raydium_fee_ppm=100,
    ),
    PoolSpec("JUP", "USDC", Decimal(2_000_000), Decimal(800_000), _dlmm(20, 10_000, 20_000)),
)


def find_pool(pools: tuple[PoolSpec, ...], symbol_in: str, symbol_out: str) -> tuple[PoolSpec, bool] | None:
    """The pool for the pair and whether the trade sells its base (x to y)."""
    for spec in pools:
        if (spec.base, spec.quote) == (symbol_in, symbol_out):
            return spec, True
        if (spec.base, spec.quote) == (symbol_out, symbol_in):
            return spec, False
    return None
