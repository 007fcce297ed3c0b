"""The simulated Solana DEX market: tokens, two venues, a router and swap transactions.

Pure domain code: no AWS, no I/O beyond sleeping for simulated latency. Amounts are
integers in base units; prices and fractions are Decimal.
"""

from __future__ import annotations

from .errors import (
    InsufficientLiquidity,
    MarketError,
    PoolNotOpen,
    QuoteExpired,
    SlippageExceeded,
    UnsupportedPair,
    VenueUnavailable,
)
from .market import SPLIT, Market, MarketConfig
from .plan import Fill, RouteLeg, RoutePlan, VenueQuote
from .pools import DEFAULT_POOLS, PoolSpec
from .tokens import DEFAULT_TOKENS, Token, TokenRegistry
from .transaction import SignedSwap, build_swap_transaction, verify_signature
from .venues import METEORA, METEORA_DLMM_PROGRAM_ID, PROGRAM_IDS, RAYDIUM, RAYDIUM_CPMM_PROGRAM_ID

__all__ = [
    "DEFAULT_POOLS",
    "DEFAULT_TOKENS",
    "METEORA",
    "METEORA_DLMM_PROGRAM_ID",
    "PROGRAM_IDS",
    "RAYDIUM",
    "RAYDIUM_CPMM_PROGRAM_ID",
    "SPLIT",
    "Fill",
    "InsufficientLiquidity",
    "Market",
    "MarketConfig",
    "MarketError",
    "PoolNotOpen",
    "PoolSpec",
    "QuoteExpired",
    "RouteLeg",
    "RoutePlan",
    "SignedSwap",
    "SlippageExceeded",
    "Token",
    "TokenRegistry",
    "UnsupportedPair",
    "VenueQuote",
    "VenueUnavailable",
    "build_swap_transaction",
    "verify_signature",
]
