"""The two simulated venues: each rebuilds its pool for an instant from the price path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from .cpmm import CpmmPool
from .dlmm import BASIS_POINT_MAX, Q64, DlmmBin, DlmmPool, bin_id_for_price, bin_price_x64
from .pools import PoolSpec
from .pricepath import PricePath
from .tokens import Token

__all__ = [
    "METEORA",
    "METEORA_DLMM_PROGRAM_ID",
    "PROGRAM_IDS",
    "RAYDIUM",
    "RAYDIUM_CPMM_PROGRAM_ID",
    "MeteoraVenue",
    "RaydiumVenue",
    "Venue",
    "VenuePool",
    "VenueSwap",
]

RAYDIUM = "raydium"
METEORA = "meteora"
# As declared by raydium-io/raydium-cp-swap and MeteoraAg/dlmm-sdk (mainnet-beta).
RAYDIUM_CPMM_PROGRAM_ID = "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"
METEORA_DLMM_PROGRAM_ID = "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo"
PROGRAM_IDS = {RAYDIUM: RAYDIUM_CPMM_PROGRAM_ID, METEORA: METEORA_DLMM_PROGRAM_ID}

_VOLATILITY_LOOKBACK_MS = 60_000


@dataclass(frozen=True)
class VenueSwap:
    """One venue's answer for an exact-in swap, in base units."""

    amount_out: int  # 0 when the pool cannot fill the whole input
    fee: int  # in input base units
    spot_price: Decimal  # output base units per input base unit before the trade, no fee


class VenuePool:
    """A pool frozen at one instant; `swap` prices an exact-in trade against it."""

    def __init__(self, swap: Callable[[int], VenueSwap]) -> None:
        self._swap = swap

    def swap(self, amount_in: int) -> VenueSwap:
        if amount_in <= 0:
            return VenueSwap(0, 0, Decimal(0))
        return self._swap(amount_in)


def _venue_price(path: PricePath, venue: str, spec: PoolSpec, t_ms: int) -> Decimal:
    return path.pair_price(spec.base, spec.quote, t_ms) * path.venue_factor(venue, spec.key, t_ms)


class Venue:
    """What the market needs of a venue (RaydiumVenue and MeteoraVenue have this shape)."""

    name: str
    program_id: str

    def pool(self, spec: PoolSpec, base: Token, quote: Token, x_to_y: bool, t_ms: int) -> VenuePool:
        raise NotImplementedError


class RaydiumVenue(Venue):
    """Raydium CPMM: a constant-product pool re-centred on the venue's price."""

    name = RAYDIUM
    program_id = RAYDIUM_CPMM_PROGRAM_ID

    def __init__(self, path: PricePath, default_fee_ppm: int) -> None:
        self._path = path
        self._default_fee_ppm = default_fee_ppm

    def pool(self, spec: PoolSpec, base: Token, quote: Token, x_to_y: bool, t_ms: int) -> VenuePool:
        price = _venue_price(self._path, self.name, spec, t_ms)
        reserve_x = int(spec.raydium_base_depth.scaleb(base.decimals))
        reserve_y = int((spec.raydium_base_depth * price).scaleb(quote.decimals))
        fee_ppm = self._default_fee_ppm if spec.raydium_fee_ppm is None else spec.raydium_fee_ppm
        cpmm = CpmmPool(reserve_x, reserve_y, fee_ppm)

        def swap(amount_in: int) -> VenueSwap:
            result = cpmm.swap(amount_in, x_to_y)
            return VenueSwap(result.amount_out, result.fee, result.spot_price)

        return VenuePool(swap)


class MeteoraVenue(Venue):
    """Meteora DLMM: bins around the venue's price, liquidity falling off with distance."""

    name = METEORA
    program_id = METEORA_DLMM_PROGRAM_ID

    def __init__(self, path: PricePath, variable_fee: bool = True) -> None:
        self._path = path
        self._variable_fee = variable_fee

    def dlmm_pool(self, spec: PoolSpec, base: Token, quote: Token, t_ms: int) -> DlmmPool:
        params = spec.meteora
        price = _venue_price(self._path, self.name, spec, t_ms)
        active = bin_id_for_price(params.bin_step, price.scaleb(quote.decimals - base.decimals))
        width = spec.meteora_half_width
        weights = {d: (width + 1 - abs(d)) ** 2 for d in range(-width, width + 1)}
        total_weight = sum(weights.values())
        total_value = int(spec.meteora_quote_value.scaleb(quote.decimals))
        bins: dict[int, DlmmBin] = {}
        for d, w in weights.items():
            bin_id = active + d
            p64 = bin_price_x64(params.bin_step, bin_id)
            value_y = total_value * w // total_weight
            if d < 0:
                bins[bin_id] = DlmmBin(0, value_y, p64)
            elif d > 0:
                bins[bin_id] = DlmmBin(value_y * Q64 // p64, 0, p64)
            else:
                half = value_y // 2
                bins[bin_id] = DlmmBin((value_y - half) * Q64 // p64, half, p64)
        now_s = t_ms // 1000
        v_acc = 0
        if self._variable_fee and params.variable_fee_control > 0:
            move = self._path.recent_move(spec.base, spec.quote, t_ms, _VOLATILITY_LOOKBACK_MS)
            step = (1 + Decimal(params.bin_step).scaleb(-4)).ln()
            v_acc = min(int(move / step * BASIS_POINT_MAX), params.max_volatility_accumulator)
        if not self._variable_fee:
            params = type(params)(**{**params.__dict__, "variable_fee_control": 0})
        return DlmmPool(
            params=params,
            active_id=active,
            bins=bins,
            volatility_accumulator=v_acc,
            volatility_reference=0,
            index_reference=active,
            last_update_ts=now_s - params.filter_period,
        )

    def pool(self, spec: PoolSpec, base: Token, quote: Token, x_to_y: bool, t_ms: int) -> VenuePool:
        dlmm = self.dlmm_pool(spec, base, quote, t_ms)
        now_s = t_ms // 1000

        def swap(amount_in: int) -> VenueSwap:
            result = dlmm.swap(amount_in, x_to_y, now_s)
            out = result.amount_out if result.remaining_in == 0 else 0
            return VenueSwap(out, result.fee, result.spot_price)

        return VenuePool(swap)
