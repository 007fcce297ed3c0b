from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.market import DEFAULT_TOKENS, Token, TokenRegistry

SOL_MINT = "So11111111111111111111111111111111111111112"


def test_resolves_symbols_in_any_case_and_mints_exactly() -> None:
    sol = DEFAULT_TOKENS.resolve("sol")
    assert sol == Token("SOL", SOL_MINT, 9)
    assert DEFAULT_TOKENS.resolve("SoL") == sol
    assert DEFAULT_TOKENS.resolve(SOL_MINT) == sol
    assert DEFAULT_TOKENS.resolve(SOL_MINT.lower()) is None
    assert DEFAULT_TOKENS.resolve("msol") == DEFAULT_TOKENS.resolve("mSOL")
    assert DEFAULT_TOKENS.resolve("DOGE") is None


def test_default_tokens_have_their_real_decimals() -> None:
    decimals = {t.symbol: t.decimals for t in DEFAULT_TOKENS.all()}
    assert decimals["SOL"] == 9 and decimals["USDC"] == 6 and decimals["USDT"] == 6 and decimals["BONK"] == 5
    assert DEFAULT_TOKENS.resolve("USDC").mint == "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"  # type: ignore[union-attr]


def test_to_base_units_converts_whole_units() -> None:
    sol = DEFAULT_TOKENS.resolve("SOL")
    assert sol is not None
    assert TokenRegistry.to_base_units(sol, Decimal("1.5")) == 1_500_000_000
    assert TokenRegistry.to_base_units(sol, Decimal("0.000000001")) == 1
    assert TokenRegistry.to_base_units(sol, Decimal("2.500000000")) == 2_500_000_000


@pytest.mark.parametrize("amount", ["0.0000000001", "1.0000000005", "0", "-1", "NaN", "Infinity"])
def test_to_base_units_rejects_excess_decimals_and_non_positive(amount: str) -> None:
    sol = DEFAULT_TOKENS.resolve("SOL")
    assert sol is not None
    with pytest.raises(ValueError):
        TokenRegistry.to_base_units(sol, Decimal(amount))


def test_to_base_units_rejects_floats() -> None:
    usdc = DEFAULT_TOKENS.resolve("USDC")
    assert usdc is not None
    with pytest.raises(ValueError):
        TokenRegistry.to_base_units(usdc, 1.5)  # type: ignore[arg-type]


@given(st.integers(min_value=1, max_value=10**20), st.sampled_from(DEFAULT_TOKENS.all()))
def test_base_units_round_trip(base_units: int, token: Token) -> None:
    whole = TokenRegistry.to_decimal(token, base_units)
    assert TokenRegistry.to_base_units(token, whole) == base_units


def test_registry_refuses_duplicates() -> None:
    with pytest.raises(ValueError):
        TokenRegistry([Token("A", "m1", 6), Token("a", "m2", 6)])
