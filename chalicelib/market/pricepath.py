"""A seeded, stateless price path shared by every venue and every process.

Each token's log price is a sum of octaves of interpolated noise (periods of 1, 2, 4 ...
time buckets, amplitude growing with the square root of the period, as a random walk's
spread does). Any instant is computed from (seed, token, time) alone, so every process
agrees on the market and any run can be replayed. A second, smaller noise per venue and
pair stands for other traders pushing each pool off the common path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["DEFAULT_PRICE_MODELS", "PricePath", "TokenPriceModel"]

_TWO_63 = Decimal(1 << 63)


@dataclass(frozen=True)
class TokenPriceModel:
    """Start price in USD, volatility relative to the path's, and an optional anchor token.

    An anchored token (a liquid staking token) moves with its anchor at a fixed ratio plus
    its own small noise.
    """

    usd: Decimal
    volatility: Decimal = Decimal(1)
    anchor: str | None = None


DEFAULT_PRICE_MODELS: dict[str, TokenPriceModel] = {
    "SOL": TokenPriceModel(Decimal("142.30")),
    "USDC": TokenPriceModel(Decimal("1"), Decimal("0.02")),
    "USDT": TokenPriceModel(Decimal("1"), Decimal("0.02")),
    "JUP": TokenPriceModel(Decimal("0.52"), Decimal("1.5")),
    "BONK": TokenPriceModel(Decimal("0.0000215"), Decimal("2.5")),
    "RAY": TokenPriceModel(Decimal("2.05"), Decimal("1.3")),
    "mSOL": TokenPriceModel(Decimal("1.27"), Decimal("0.05"), anchor="SOL"),
}


def _unit(seed: int, key: str, octave: int, knot: int) -> Decimal:
    """A uniform value in [-1, 1) fixed by its arguments."""
    digest = hashlib.blake2b(f"{seed}|{key}|{octave}|{knot}".encode(), digest_size=8).digest()
    return Decimal(int.from_bytes(digest, "big")) / _TWO_63 - 1


def _noise(seed: int, key: str, t_ms: int, bucket_ms: int, octaves: int, first: int = 0) -> Decimal:
    """Sum of linearly interpolated octaves; unit amplitude per sqrt(bucket)."""
    total = Decimal(0)
    for k in range(first, first + octaves):
        period = bucket_ms << k
        knot, into = divmod(t_ms, period)
        a, b = _unit(seed, key, k, knot), _unit(seed, key, k, knot + 1)
        frac = Decimal(into) / period
        total += (a + (b - a) * frac) * Decimal(1 << k).sqrt()
    return total


class PricePath:
    """Prices in USD per whole token, and each venue's offset from them, at any instant."""

    def __init__(
        self,
        seed: int,
        *,
        bucket_ms: int = 1_000,
        octaves: int = 12,
        volatility: Decimal = Decimal("0.00015"),
        venue_dislocation: Decimal = Decimal("0.0012"),
        models: dict[str, TokenPriceModel] | None = None,
    ) -> None:
        self.seed = seed
        self.bucket_ms = bucket_ms
        self.octaves = octaves
        self.volatility = volatility
        self.venue_dislocation = venue_dislocation
        self.models = DEFAULT_PRICE_MODELS if models is None else models

    def has(self, symbol: str) -> bool:
        return symbol in self.models

    def usd(self, symbol: str, t_ms: int) -> Decimal:
        model = self.models[symbol]
        log_move = self.volatility * model.volatility * _noise(self.seed, symbol, t_ms, self.bucket_ms, self.octaves)
        price = model.usd * log_move.exp()
        if model.anchor is not None:
            price *= self.usd(model.anchor, t_ms)
        return price

    def pair_price(self, base: str, quote: str, t_ms: int) -> Decimal:
        """Whole units of `quote` per whole unit of `base`."""
        return self.usd(base, t_ms) / self.usd(quote, t_ms)

    def venue_factor(self, venue: str, pair_key: str, t_ms: int) -> Decimal:
        """Multiplier on the pair price for one venue: other traders' recent flow.

        Octaves start at 2 buckets so the offset drifts over seconds rather than jumping.
        """
        noise = _noise(self.seed, f"{venue}|{pair_key}", t_ms, self.bucket_ms, 4, first=1)
        return (self.venue_dislocation * noise / 4).exp()

    def recent_move(self, base: str, quote: str, t_ms: int, lookback_ms: int) -> Decimal:
        """|log change| of the pair price over the lookback, for the DLMM volatility state."""
        now = self.pair_price(base, quote, t_ms)
        then = self.pair_price(base, quote, t_ms - lookback_ms)
        return abs((now / then).ln())
