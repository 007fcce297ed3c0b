"""Market errors, split by whether a retry of the same order can succeed."""

from __future__ import annotations

__all__ = [
    "InsufficientLiquidity",
    "MarketError",
    "PoolNotOpen",
    "QuoteExpired",
    "SlippageExceeded",
    "UnsupportedPair",
    "VenueUnavailable",
]


class MarketError(Exception):
    """Base of every market failure; `retryable` says whether a new attempt may succeed."""

    retryable: bool = False
    code: str = "market_error"


class VenueUnavailable(MarketError):
    """No venue (or the venue a leg needs) answered."""

    retryable = True
    code = "venue_unavailable"


class SlippageExceeded(MarketError):
    """The executed output fell below the order's floor."""

    retryable = True
    code = "slippage_exceeded"


class QuoteExpired(MarketError):
    """The route plan was executed after its expiry."""

    retryable = True
    code = "quote_expired"


class InsufficientLiquidity(MarketError):
    """The pools cannot give any output for this size."""

    retryable = False
    code = "insufficient_liquidity"


class UnsupportedPair(MarketError):
    """No pool trades this pair."""

    retryable = False
    code = "unsupported_pair"


class PoolNotOpen(MarketError):
    """The pair's pools exist but none is open yet (a Raydium CP-Swap pool before its `open_time`)."""

    retryable = True
    code = "pool_not_open"

    def __init__(self, message: str, opens_at_s: int) -> None:
        super().__init__(message)
        self.opens_at_s = opens_at_s
