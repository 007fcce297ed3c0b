from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.market.cpmm import CpmmPool, swap_without_fees, trading_fee


@pytest.mark.parametrize(
    ("amount_in", "reserve_in", "reserve_out", "expected_out"),
    [
        # The rounding vectors of raydium-cp-swap's constant_product tests.
        (10, 4_000_000, 70_000_000_000, 174_999),
        (20, 30_000 - 20, 10_000, 6),
        (19, 30_000 - 20, 10_000, 6),
        (10, 20_000, 30_000, 14),
        (10, 20_000 - 9, 30_000, 14),
        (10, 20_000 - 10, 30_000, 15),
        (100, 60_000, 30_000, 49),
        (98, 60_000, 30_000, 48),
        (10, 70_000_000_000, 4_000_000, 0),  # too small to give anything
    ],
)
def test_swap_without_fees_matches_the_program_rounding(
    amount_in: int, reserve_in: int, reserve_out: int, expected_out: int
) -> None:
    assert swap_without_fees(amount_in, reserve_in, reserve_out) == expected_out


def test_trading_fee_rounds_up() -> None:
    assert trading_fee(1_000_000, 2_500) == 2_500
    assert trading_fee(1, 2_500) == 1
    assert trading_fee(401, 2_500) == 2  # 1.0025 -> 2
    assert trading_fee(400, 2_500) == 1


def test_swap_with_fee_by_hand() -> None:
    # GIVEN x = 1e9, y = 2e9 and 0.25 %; WHEN 1e6 goes in
    # THEN fee = 2_500, net = 997_500, x + net = 1_000_997_500,
    # ceil(2e18 / 1_000_997_500) = 1_998_006_989 (…988 * divisor < 2e18 < …989 * divisor),
    # out = 2e9 - 1_998_006_989 = 1_993_011.
    swap = CpmmPool(1_000_000_000, 2_000_000_000, 2_500).swap(1_000_000, x_to_y=True)
    assert (swap.amount_out, swap.fee, swap.spot_price) == (1_993_011, 2_500, Decimal(2))
    back = CpmmPool(1_000_000_000, 2_000_000_000, 2_500).swap(2_000_000, x_to_y=False)
    assert back.spot_price == Decimal("0.5")


@given(
    st.integers(min_value=1, max_value=10**15),
    st.integers(min_value=10**6, max_value=10**18),
    st.integers(min_value=10**6, max_value=10**18),
)
def test_invariant_never_decreases(amount_in: int, reserve_in: int, reserve_out: int) -> None:
    out = swap_without_fees(amount_in, reserve_in, reserve_out)
    assert 0 <= out < reserve_out
    assert (reserve_in + amount_in) * (reserve_out - out) >= reserve_in * reserve_out
