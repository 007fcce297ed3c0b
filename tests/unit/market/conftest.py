from __future__ import annotations

import pytest

from chalicelib.market import DEFAULT_TOKENS, Market, MarketConfig, Token

T0 = 1_764_000_000_000  # a fixed instant (ms) so every test replays the same market


def token(symbol: str) -> Token:
    found = DEFAULT_TOKENS.resolve(symbol)
    assert found is not None
    return found


def market_at(t_ms: int = T0, **config: object) -> Market:
    cfg = MarketConfig(quote_delay_ms=(0, 0), **config)  # type: ignore[arg-type]
    return Market(cfg, clock=lambda: t_ms, sleep=lambda _s: None)


@pytest.fixture
def market() -> Market:
    return market_at()
