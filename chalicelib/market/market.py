"""The simulated market: quotes both venues, routes an order, executes a plan.

Routing rule: take the venue that returns the most; take a split across both when it
returns more than that by at least `split_min_gain_ppm` (a second leg costs compute).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

from .errors import (
    InsufficientLiquidity,
    QuoteExpired,
    SlippageExceeded,
    UnsupportedPair,
    VenueUnavailable,
)
from .plan import Fill, RouteLeg, RoutePlan, VenueQuote, leg_percents, whole_price
from .pools import DEFAULT_POOLS, PoolSpec, find_pool
from .pricepath import PricePath
from .router import best_split
from .tokens import DEFAULT_TOKENS, Token, TokenRegistry
from .venues import METEORA, RAYDIUM, MeteoraVenue, RaydiumVenue, Venue, VenuePool, VenueSwap

__all__ = ["SPLIT", "Market", "MarketConfig"]

SPLIT = "split"
_IMPACT_PLACES = Decimal("0.00000001")


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class MarketConfig:
    seed: int = 7
    quote_delay_ms: tuple[int, int] = (200, 200)  # each venue's quote latency, min..max
    submit_delay_ms: tuple[int, int] = (0, 0)  # execute() waits this when not given now_ms
    quote_ttl_ms: int = 10_000
    raydium_fee_ppm: int = 2_500
    meteora_variable_fee: bool = True
    price_bucket_ms: int = 1_000
    price_volatility: Decimal = Decimal("0.00015")  # log-price spread per sqrt(bucket)
    venue_dislocation: Decimal = Decimal("0.0012")  # scale of each venue's own offset
    split_grid: int = 32
    split_min_gain_ppm: int = 10
    quote_failure_ppm: int = 0  # chance a venue fails to quote, seeded, in millionths
    pools: tuple[PoolSpec, ...] = field(default=DEFAULT_POOLS)


@dataclass(frozen=True)
class _Pair:
    spec: PoolSpec
    base: Token
    quote: Token
    x_to_y: bool


class Market:
    def __init__(
        self,
        config: MarketConfig | None = None,
        registry: TokenRegistry = DEFAULT_TOKENS,
        clock: Callable[[], int] = _wall_clock_ms,
        sleep: Callable[[float], None] = time.sleep,
        venues_down: frozenset[str] = frozenset(),
    ) -> None:
        self.config = config or MarketConfig()
        self.registry = registry
        self.clock = clock
        self.sleep = sleep
        self.venues_down = frozenset(venues_down)
        self.path = PricePath(
            self.config.seed,
            bucket_ms=self.config.price_bucket_ms,
            volatility=self.config.price_volatility,
            venue_dislocation=self.config.venue_dislocation,
        )
        self.venues: dict[str, Venue] = {
            RAYDIUM: RaydiumVenue(self.path, self.config.raydium_fee_ppm),
            METEORA: MeteoraVenue(self.path, self.config.meteora_variable_fee),
        }

    # -- pairs -------------------------------------------------------------------------

    def supports(self, token_in: Token, token_out: Token) -> bool:
        try:
            self._pair(token_in, token_out)
        except UnsupportedPair:
            return False
        return True

    def pairs(self) -> list[tuple[Token, Token]]:
        """Every (token_in, token_out) the market trades, both directions."""
        result = []
        for spec in self.config.pools:
            base, quote = self.registry.resolve(spec.base), self.registry.resolve(spec.quote)
            if base is not None and quote is not None:
                result += [(base, quote), (quote, base)]
        return result

    def _pair(self, token_in: Token, token_out: Token) -> _Pair:
        found = None if token_in == token_out else find_pool(self.config.pools, token_in.symbol, token_out.symbol)
        if found is None:
            raise UnsupportedPair(f"no pool for {token_in.symbol}/{token_out.symbol}")
        spec, x_to_y = found
        base, quote = (token_in, token_out) if x_to_y else (token_out, token_in)
        if self.registry.resolve(base.mint) != base or self.registry.resolve(quote.mint) != quote:
            raise UnsupportedPair(f"{token_in.symbol}/{token_out.symbol} is not in this registry")
        if not (self.path.has(spec.base) and self.path.has(spec.quote)):
            raise UnsupportedPair(f"no price model for {spec.key}")
        return _Pair(spec, base, quote, x_to_y)

    def _pool(self, venue: Venue, pair: _Pair, t_ms: int) -> VenuePool:
        return venue.pool(pair.spec, pair.base, pair.quote, pair.x_to_y, t_ms)

    # -- routing -----------------------------------------------------------------------

    def route(self, token_in: Token, token_out: Token, amount_in: int) -> RoutePlan:
        if amount_in <= 0:
            raise ValueError("amount_in must be positive")
        pair = self._pair(token_in, token_out)
        names = list(self.venues)
        with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="venue-quote") as pool:
            answers = list(pool.map(lambda name: self._quote_venue(name, pair, amount_in), names))
        quote_wait_ms = max((delay for _, _, delay in answers), default=0)
        pools = {name: p for name, (p, _, _) in zip(names, answers, strict=True) if p is not None}
        quotes = tuple(q for _, q, _ in answers)
        if not pools:
            raise VenueUnavailable("no venue answered: " + ", ".join(f"{q.dex}: {q.error}" for q in quotes))

        singles = [q for q in quotes if q.ok and q.amount_out > 0]
        best = max(singles, key=lambda q: q.amount_out, default=None)
        legs: list[tuple[str, int]] = [(best.dex, amount_in)] if best else []
        best_out = best.amount_out if best else 0
        if len(pools) == 2:
            (name_a, pool_a), (name_b, pool_b) = pools.items()
            split = best_split(
                lambda a: pool_a.swap(a).amount_out,
                lambda b: pool_b.swap(b).amount_out,
                amount_in,
                self.config.split_grid,
            )
            threshold = best_out + best_out * self.config.split_min_gain_ppm // 1_000_000
            if 0 < split.amount_a < amount_in and split.total_out > max(threshold, best_out):
                legs = [(name_a, split.amount_a), (name_b, amount_in - split.amount_a)]
        if not legs:
            raise InsufficientLiquidity(f"no output for {amount_in} {token_in.symbol} base units")

        swaps = [(name, a, pools[name].swap(a)) for name, a in legs]
        percents = leg_percents([a for _, a, _ in swaps])
        route_legs = tuple(
            RouteLeg(name, pct, a, s.amount_out) for (name, a, s), pct in zip(swaps, percents, strict=True)
        )
        total_out = sum(leg.amount_out for leg in route_legs)
        impact = sum((_impact(a, s) * a for _, a, s in swaps), Decimal(0)) / amount_in
        quoted_at = self.clock()
        return RoutePlan(
            token_in=token_in,
            token_out=token_out,
            amount_in=amount_in,
            quotes=quotes,
            dex=route_legs[0].dex if len(route_legs) == 1 else SPLIT,
            legs=route_legs,
            amount_out=total_out,
            quoted_at_ms=quoted_at,
            expires_at_ms=quoted_at + self.config.quote_ttl_ms,
            price_impact=impact.quantize(_IMPACT_PLACES),
            quote_wait_ms=quote_wait_ms,
        )

    def _quote_venue(self, name: str, pair: _Pair, amount_in: int) -> tuple[VenuePool | None, VenueQuote, int]:
        rng = random.Random(f"{self.config.seed}|{name}|{amount_in}|{self.clock()}")
        lo, hi = self.config.quote_delay_ms
        delay_ms = rng.randint(lo, hi) if hi > lo else lo
        if delay_ms > 0:
            self.sleep(delay_ms / 1000)
        if name in self.venues_down:
            return None, VenueQuote.failed(name, amount_in, "venue_unavailable"), delay_ms
        if rng.randrange(1_000_000) < self.config.quote_failure_ppm:
            return None, VenueQuote.failed(name, amount_in, "quote_timeout"), delay_ms
        venue_pool = self._pool(self.venues[name], pair, self.clock())
        swap = venue_pool.swap(amount_in)
        if swap.amount_out <= 0:
            return venue_pool, VenueQuote.failed(name, amount_in, "insufficient_liquidity"), delay_ms
        token_in, token_out = (pair.base, pair.quote) if pair.x_to_y else (pair.quote, pair.base)
        return (
            venue_pool,
            VenueQuote(
                dex=name,
                amount_in=amount_in,
                amount_out=swap.amount_out,
                fee=swap.fee,
                price=whole_price(token_in, token_out, amount_in, swap.amount_out),
                price_impact=_impact(amount_in, swap).quantize(_IMPACT_PLACES),
            ),
            delay_ms,
        )

    # -- execution ---------------------------------------------------------------------

    def execute(self, plan: RoutePlan, min_amount_out: int, now_ms: int | None = None) -> Fill:
        if now_ms is None:
            lo, hi = self.config.submit_delay_ms
            delay_ms = random.Random(f"{self.config.seed}|submit|{plan.quoted_at_ms}").randint(lo, hi)
            if delay_ms > 0:
                self.sleep(delay_ms / 1000)
            now_ms = self.clock()
        if now_ms > plan.expires_at_ms:
            raise QuoteExpired(f"plan expired at {plan.expires_at_ms}, now {now_ms}")
        pair = self._pair(plan.token_in, plan.token_out)
        legs = []
        for leg in plan.legs:
            if leg.dex in self.venues_down or leg.dex not in self.venues:
                raise VenueUnavailable(f"{leg.dex} is unavailable")
            out = self._pool(self.venues[leg.dex], pair, now_ms).swap(leg.amount_in).amount_out
            legs.append(RouteLeg(leg.dex, leg.percent, leg.amount_in, out))
        total = sum(leg.amount_out for leg in legs)
        if total < min_amount_out:
            raise SlippageExceeded(f"output {total} below the floor {min_amount_out} (quoted {plan.amount_out})")
        if total <= 0:
            raise InsufficientLiquidity("execution gave no output")
        return Fill(
            amount_out=total,
            executed_price=whole_price(plan.token_in, plan.token_out, plan.amount_in, total),
            legs=tuple(legs),
            executed_at_ms=now_ms,
        )


def _impact(amount_in: int, swap: VenueSwap) -> Decimal:
    """Share of the spot value lost to the trade's size, fees aside."""
    net_in = amount_in - swap.fee
    if net_in <= 0 or swap.spot_price <= 0 or swap.amount_out <= 0:
        return Decimal(0)
    impact = 1 - Decimal(swap.amount_out) / (Decimal(net_in) * swap.spot_price)
    return max(impact, Decimal(0))
