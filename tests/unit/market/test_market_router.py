from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.market import (
    DEFAULT_TOKENS,
    InsufficientLiquidity,
    Market,
    MarketConfig,
    MarketError,
    QuoteExpired,
    RoutePlan,
    SlippageExceeded,
    Token,
    TokenRegistry,
    UnsupportedPair,
    VenueUnavailable,
)
from chalicelib.market.router import best_split

from .conftest import T0, market_at, token

PAIRS = [("SOL", "USDC"), ("USDC", "SOL"), ("SOL", "BONK"), ("JUP", "SOL"), ("USDT", "USDC"), ("mSOL", "SOL")]
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sized(symbol: str, usd: int) -> int:
    """Roughly `usd` dollars of the token, in base units."""
    per_usd: dict[str, Decimal] = {
        "SOL": Decimal("0.007"),
        "mSOL": Decimal("0.0055"),
        "JUP": Decimal(2),
        "BONK": Decimal(46_000),
    }
    t = token(symbol)
    return max(1, int((usd * per_usd.get(symbol, Decimal(1))).scaleb(t.decimals)))


# -- the split search --------------------------------------------------------------------


def test_best_split_finds_the_optimum_of_two_concave_venues() -> None:
    # out_a(a) = 2a - a^2/1000, out_b(b) = b: marginal 2 - a/500 equals 1 at a = 500
    split = best_split(lambda a: 2 * a - a * a // 1000, lambda b: b, 1_000)
    assert split.amount_a == 500
    assert split.total_out == 1_250
    assert split.evaluations < 80


def test_best_split_keeps_a_single_venue_when_it_dominates() -> None:
    assert best_split(lambda a: a, lambda b: b // 2, 10**12).amount_a == 10**12
    assert best_split(lambda a: 0, lambda b: b, 10**12).amount_a == 0


# -- routing properties ------------------------------------------------------------------


@FAST
@given(st.sampled_from(PAIRS), st.integers(min_value=1, max_value=3_000_000), st.integers(0, 10**9))
def test_router_never_returns_less_than_the_best_single_venue(pair: tuple[str, str], usd: int, dt: int) -> None:
    m = market_at(T0 + dt)
    t_in, t_out = token(pair[0]), token(pair[1])
    amount = sized(pair[0], usd)
    try:
        plan = m.route(t_in, t_out, amount)
    except InsufficientLiquidity:
        return
    singles = [q.amount_out for q in plan.quotes if q.error is None]
    assert plan.amount_out >= max(singles, default=0)
    # legs add up exactly: nothing created, nothing lost
    assert sum(leg.amount_in for leg in plan.legs) == plan.amount_in == amount
    assert sum(leg.amount_out for leg in plan.legs) == plan.amount_out
    assert sum(leg.percent for leg in plan.legs) == 100
    assert all(leg.amount_in > 0 for leg in plan.legs)
    if plan.dex == "split":
        assert len(plan.legs) == 2 and {leg.dex for leg in plan.legs} == {"raydium", "meteora"}
        # a split never returns less than its best leg's venue would for the whole order
        assert plan.amount_out > max(singles, default=0)
    else:
        assert len(plan.legs) == 1 and plan.legs[0].dex == plan.dex
        assert plan.amount_out == max(singles)


def test_venues_are_comparable() -> None:
    """Over time either venue wins small orders, and large ones are split."""
    sol, usdc = token("SOL"), token("USDC")
    small = {market_at(T0 + i * 37_000).route(sol, usdc, 10**9).dex for i in range(40)}
    assert {"raydium", "meteora"} <= small
    large = market_at().route(sol, usdc, 5_000 * 10**9)
    assert large.dex == "split"


def test_routing_is_deterministic_under_a_seed() -> None:
    sol, usdc = token("SOL"), token("USDC")
    a = market_at().route(sol, usdc, 123_456_789_000)
    b = market_at().route(sol, usdc, 123_456_789_000)
    assert a == b
    other_seed = market_at(seed=8).route(sol, usdc, 123_456_789_000)
    assert other_seed.amount_out != a.amount_out


def test_quotes_and_plan_are_stamped_with_expiry(market: Market) -> None:
    plan = market.route(token("SOL"), token("USDC"), 10**9)
    assert plan.quoted_at_ms == T0 and plan.expires_at_ms == T0 + 10_000
    assert [q.dex for q in plan.quotes] == ["raydium", "meteora"]
    for q in plan.quotes:
        assert q.amount_in == 10**9 and q.fee > 0 and q.price > 0 and q.price_impact >= 0


def test_quotes_sleep_the_configured_delay_concurrently() -> None:
    import threading

    sleeps: list[float] = []
    lock = threading.Lock()
    # Both quotes must be waiting at the same moment: one after the other, the first would
    # wait here alone and break the barrier (no wall-clock bound, so a busy machine cannot fail it).
    both_waiting = threading.Barrier(2, timeout=10)

    def fake_sleep(s: float) -> None:
        with lock:
            sleeps.append(s)
        both_waiting.wait()

    m = Market(MarketConfig(quote_delay_ms=(200, 200)), clock=lambda: T0, sleep=fake_sleep)
    m.route(token("SOL"), token("USDC"), 10**9)
    assert sleeps == [0.2, 0.2]
    assert not both_waiting.broken  # both waited at once


# -- failures ----------------------------------------------------------------------------


def test_one_venue_down_is_tolerated() -> None:
    m = Market(MarketConfig(quote_delay_ms=(0, 0)), clock=lambda: T0, venues_down=frozenset({"meteora"}))
    plan = m.route(token("SOL"), token("USDC"), 10**9)
    assert plan.dex == "raydium"
    failed = next(q for q in plan.quotes if q.dex == "meteora")
    assert failed.error == "venue_unavailable" and failed.amount_out == 0
    assert failed.to_message(token("SOL"), token("USDC")) == {"dex": "meteora", "error": "venue_unavailable"}


def test_no_venue_is_unavailable_and_retryable() -> None:
    m = Market(MarketConfig(quote_delay_ms=(0, 0)), clock=lambda: T0, venues_down=frozenset({"meteora", "raydium"}))
    with pytest.raises(VenueUnavailable) as err:
        m.route(token("SOL"), token("USDC"), 10**9)
    assert err.value.retryable


def test_unknown_pair_is_unsupported_and_final(market: Market) -> None:
    with pytest.raises(UnsupportedPair) as err:
        market.route(token("BONK"), token("JUP"), 10**9)
    assert not err.value.retryable
    with pytest.raises(UnsupportedPair):
        market.route(token("SOL"), token("SOL"), 10**9)
    stranger = Token("XYZ", "11111111111111111111111111111111", 6)
    with pytest.raises(UnsupportedPair):
        market.route(stranger, token("USDC"), 10**9)


def test_dust_gives_insufficient_liquidity(market: Market) -> None:
    with pytest.raises(InsufficientLiquidity) as err:
        market.route(token("BONK"), token("SOL"), 1)  # 0.00001 BONK is worth no lamport
    assert not err.value.retryable


def test_error_classes_say_what_is_retryable() -> None:
    retryable = {VenueUnavailable, SlippageExceeded, QuoteExpired}
    for cls in (VenueUnavailable, SlippageExceeded, QuoteExpired, InsufficientLiquidity, UnsupportedPair):
        assert issubclass(cls, MarketError)
        assert cls("x").retryable == (cls in retryable)


# -- execution ---------------------------------------------------------------------------


@FAST
@given(st.sampled_from(PAIRS[:4]), st.integers(min_value=1, max_value=500_000), st.integers(0, 9_000))
def test_execute_honours_the_floor(pair: tuple[str, str], usd: int, later_ms: int) -> None:
    m = market_at()
    plan = m.route(token(pair[0]), token(pair[1]), sized(pair[0], usd))
    fill_now = market_at().execute(plan, 0, now_ms=T0 + later_ms)
    assert sum(leg.amount_out for leg in fill_now.legs) == fill_now.amount_out
    assert [leg.amount_in for leg in fill_now.legs] == [leg.amount_in for leg in plan.legs]
    # the floor at exactly what it gives passes; one unit above fails
    assert m.execute(plan, fill_now.amount_out, now_ms=T0 + later_ms) == fill_now
    with pytest.raises(SlippageExceeded) as err:
        m.execute(plan, fill_now.amount_out + 1, now_ms=T0 + later_ms)
    assert err.value.retryable


def test_execution_reprices_against_the_moved_market(market: Market) -> None:
    plan = market.route(token("SOL"), token("USDC"), 10 * 10**9)
    same_instant = market.execute(plan, 0, now_ms=T0)
    later = market.execute(plan, 0, now_ms=T0 + 3_000)
    assert same_instant.amount_out == plan.amount_out
    assert later.amount_out != plan.amount_out
    assert abs(later.amount_out - plan.amount_out) < plan.amount_out // 100  # modest: under 1 %
    assert later.executed_price == Decimal(later.amount_out).scaleb(-6) / 10
    assert market.execute(plan, 0, now_ms=T0 + 3_000) == later  # deterministic


def test_execute_after_expiry_raises(market: Market) -> None:
    plan = market.route(token("SOL"), token("USDC"), 10**9)
    market.execute(plan, 0, now_ms=plan.expires_at_ms)
    with pytest.raises(QuoteExpired):
        market.execute(plan, 0, now_ms=plan.expires_at_ms + 1)


def test_execute_with_a_leg_venue_down_raises() -> None:
    plan = market_at().route(token("SOL"), token("USDC"), 10**9)
    down = Market(MarketConfig(quote_delay_ms=(0, 0)), clock=lambda: T0, venues_down=frozenset({plan.legs[0].dex}))
    with pytest.raises(VenueUnavailable):
        down.execute(plan, 0, now_ms=T0)


def test_min_amount_out_floors(market: Market) -> None:
    plan = market.route(token("SOL"), token("USDC"), 10**9)
    assert plan.min_amount_out(0) == plan.amount_out
    assert plan.min_amount_out(100) == plan.amount_out * 9_900 // 10_000
    assert plan.min_amount_out(10_000) == 0
    with pytest.raises(ValueError):
        plan.min_amount_out(10_001)


# -- wire and storage forms --------------------------------------------------------------


def test_plan_round_trips_through_json(market: Market) -> None:
    plan = market.route(token("SOL"), token("USDC"), 5_000 * 10**9)
    assert plan.dex == "split"
    stored = json.loads(json.dumps(plan.to_dict()))
    assert RoutePlan.from_dict(stored, DEFAULT_TOKENS) == plan


def test_plan_from_dict_accepts_dynamodb_numbers(market: Market) -> None:
    plan = market.route(token("USDC"), token("SOL"), 10**6)
    d = plan.to_dict()
    d["quotedAtMs"], d["expiresAtMs"] = Decimal(plan.quoted_at_ms), Decimal(plan.expires_at_ms)
    assert RoutePlan.from_dict(d, DEFAULT_TOKENS) == plan
    with pytest.raises(ValueError):
        RoutePlan.from_dict(d, TokenRegistry([]))


def test_routing_message_has_the_contract_shape(market: Market) -> None:
    plan = market.route(token("SOL"), token("USDC"), 5_000 * 10**9)
    msg = plan.to_message()
    assert msg["dex"] == "split"
    for q in msg["quotes"]:
        assert set(q) == {"dex", "amountOut", "price", "fee", "priceImpact"}
        for key in ("amountOut", "price", "fee", "priceImpact"):
            Decimal(q[key])  # a decimal string
            assert "E" not in q[key] and "e" not in q[key]
    assert [set(leg) for leg in msg["route"]] == [{"dex", "percent", "amountIn", "amountOut"}] * 2
    assert sum(Decimal(leg["amountIn"]) for leg in msg["route"]) == Decimal(5_000)
    assert sum(Decimal(leg["percent"]) for leg in msg["route"]) == 100
    json.dumps(msg)
    quote = plan.quotes[0]
    assert Decimal(msg["quotes"][0]["amountOut"]) == Decimal(quote.amount_out).scaleb(-6)
    assert Decimal(msg["quotes"][0]["fee"]) == Decimal(quote.fee).scaleb(-9)
