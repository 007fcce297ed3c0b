"""Tokens the market trades, with their real mints, and base-unit conversion."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["DEFAULT_TOKENS", "Token", "TokenRegistry"]


@dataclass(frozen=True)
class Token:
    symbol: str
    mint: str
    decimals: int

    def to_message(self) -> dict[str, object]:
        return {"symbol": self.symbol, "mint": self.mint, "decimals": self.decimals}


class TokenRegistry:
    """Looks tokens up by symbol (any case) or by exact mint."""

    def __init__(self, tokens: Iterable[Token]) -> None:
        self._tokens = list(tokens)
        self._by_symbol = {t.symbol.upper(): t for t in self._tokens}
        self._by_mint = {t.mint: t for t in self._tokens}
        if len(self._by_symbol) != len(self._tokens) or len(self._by_mint) != len(self._tokens):
            raise ValueError("duplicate token symbol or mint")

    def resolve(self, symbol_or_mint: str) -> Token | None:
        if not isinstance(symbol_or_mint, str):
            return None
        return self._by_mint.get(symbol_or_mint) or self._by_symbol.get(symbol_or_mint.upper())

    def all(self) -> list[Token]:
        return list(self._tokens)

    @staticmethod
    def to_base_units(token: Token, amount: Decimal) -> int:
        """Whole units to base units; refuses amounts <= 0 or finer than the token allows."""
        if not isinstance(amount, Decimal) or not amount.is_finite():
            raise ValueError(f"amount must be a finite Decimal, got {amount!r}")
        if amount <= 0:
            raise ValueError("amount must be positive")
        scaled = amount.scaleb(token.decimals)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{token.symbol} has {token.decimals} decimals; {amount} is finer")
        return int(scaled)

    @staticmethod
    def to_decimal(token: Token, base_units: int) -> Decimal:
        return Decimal(int(base_units)).scaleb(-token.decimals)


SOL = Token("SOL", "So11111111111111111111111111111111111111112", 9)
USDC = Token("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6)
USDT = Token("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6)
JUP = Token("JUP", "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN", 6)
BONK = Token("BONK", "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", 5)
RAY = Token("RAY", "4k3Dyjzvzp8eMZWUXbBCjEvwSkkk59S5iCNLY3QrkX6R", 6)
MSOL = Token("mSOL", "mSoLzYCxHdYgdzU16g5QSh3i5K3z3KZK7ytfqcJm7So", 9)

DEFAULT_TOKENS = TokenRegistry([SOL, USDC, USDT, JUP, BONK, RAY, MSOL])
