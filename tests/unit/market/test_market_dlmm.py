from __future__ import annotations

import base64
import json
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.market.dlmm import (
    MAX_FEE_RATE,
    Q64,
    DlmmBin,
    DlmmParams,
    DlmmPool,
    base_fee_rate,
    bin_id_for_price,
    bin_price_x64,
    variable_fee_rate,
)
from chalicelib.market.pools import DEFAULT_POOLS
from chalicelib.market.pricepath import PricePath
from chalicelib.market.tokens import DEFAULT_TOKENS
from chalicelib.market.venues import MeteoraVenue

from .conftest import T0


def test_base_fee_by_hand() -> None:
    # base_factor * bin_step * 10 * 10^power over 1e9
    assert base_fee_rate(DlmmParams(bin_step=100, base_factor=10_000)) == 10_000_000  # 1 %
    assert base_fee_rate(DlmmParams(bin_step=10, base_factor=20_000)) == 2_000_000  # 0.2 %
    assert base_fee_rate(DlmmParams(bin_step=1, base_factor=10_000, base_fee_power_factor=1)) == 1_000_000


def test_variable_fee_by_hand() -> None:
    p = DlmmParams(bin_step=10, base_factor=20_000, variable_fee_control=40_000)
    # (50_000 * 10)^2 * 40_000 = 1e16; / 1e11 = 100_000 (0.01 %)
    assert variable_fee_rate(p, 50_000) == 100_000
    # rounds up: (1 * 10)^2 * 40_000 = 4e6 -> ceil(4e6 / 1e11) = 1
    assert variable_fee_rate(p, 1) == 1
    assert variable_fee_rate(DlmmParams(bin_step=10, base_factor=1), 50_000) == 0


def test_total_fee_is_capped_at_ten_percent() -> None:
    from chalicelib.market.dlmm import total_fee_rate

    p = DlmmParams(bin_step=100, base_factor=10_000, variable_fee_control=10**7)
    assert total_fee_rate(p, 10**6) == MAX_FEE_RATE


def test_bin_prices() -> None:
    assert bin_price_x64(100, 0) == Q64
    assert bin_price_x64(100, 1) == Q64 * 101 // 100
    assert bin_price_x64(100, -1) == Q64 * 100 // 101
    assert bin_id_for_price(10, Decimal("0.1423")) == -1951  # 1.001^-1951 ~ 0.14230


def test_two_bin_walk_by_hand() -> None:
    # GIVEN 1 % bins at prices 1.0 (id 0) and 1/1.01 (id -1), 1_000 y each, a 1 % fee, no variable fee
    p = DlmmParams(bin_step=100, base_factor=10_000)
    bins = {0: DlmmBin(0, 1_000, bin_price_x64(100, 0)), -1: DlmmBin(0, 1_000, bin_price_x64(100, -1))}
    pool = DlmmPool(p, 0, bins)
    # WHEN 2_000 x are sold
    swap = pool.swap(2_000, x_to_y=True, now_s=0)
    # THEN bin 0: fee-excluded 1_980 >= 1_000 needed, so it empties; it costs ceil(1_000 / 0.99) = 1_011.
    #      bin -1: 989 left, fee ceil(9.89) = 10, 979 in at 1/1.01 -> floor(969.3) = 969 out.
    assert (swap.amount_out, swap.fee, swap.bins_crossed, swap.remaining_in) == (1_969, 21, 2, 0)


def test_swap_for_x_walks_up() -> None:
    p = DlmmParams(bin_step=100, base_factor=10_000)
    bins = {0: DlmmBin(1_000, 0, bin_price_x64(100, 0)), 1: DlmmBin(1_000, 0, bin_price_x64(100, 1))}
    swap = DlmmPool(p, 0, bins).swap(500, x_to_y=False, now_s=0)
    # fee ceil(5) = 5, 495 y at price 1.0 -> 495 x
    assert (swap.amount_out, swap.fee, swap.bins_crossed) == (495, 5, 1)


def test_variable_fee_grows_with_bins_crossed() -> None:
    flat = DlmmParams(bin_step=10, base_factor=20_000)
    ramp = DlmmParams(bin_step=10, base_factor=20_000, variable_fee_control=40_000)
    bins = {-i: DlmmBin(0, 1_000_000, bin_price_x64(10, -i)) for i in range(60)}
    small_flat = DlmmPool(flat, 0, bins).swap(500_000, True, 0)
    small_ramp = DlmmPool(ramp, 0, bins).swap(500_000, True, 0)
    big_flat = DlmmPool(flat, 0, bins).swap(40_000_000, True, 0)
    big_ramp = DlmmPool(ramp, 0, bins).swap(40_000_000, True, 0)
    assert small_flat.amount_out == small_ramp.amount_out  # no bin crossed, no variable fee
    assert big_ramp.amount_out < big_flat.amount_out and big_ramp.fee > big_flat.fee


def _reference() -> dict[str, Any]:
    with resources.files("meteora_dlmm").joinpath("_reference.json").open() as f:
        data: dict[str, Any] = json.load(f)
    return data


def _as_ours(lib_pool: Any) -> DlmmPool:
    sp, vp = lib_pool.static_params, lib_pool.variable_params
    params = DlmmParams(
        lib_pool.bin_step,
        sp.base_factor,
        sp.base_fee_power_factor,
        sp.variable_fee_control,
        sp.max_volatility_accumulator,
        sp.filter_period,
        sp.decay_period,
        sp.reduction_factor,
    )
    bins = {i: DlmmBin(b.amount_x, b.amount_y, b.price_x64) for i, b in lib_pool.bins.items()}
    return DlmmPool(
        params,
        lib_pool.active_id,
        bins,
        vp.volatility_accumulator,
        vp.volatility_reference,
        vp.index_reference,
        vp.last_update_timestamp,
    )


def test_reproduces_the_on_chain_program_on_a_captured_pool() -> None:
    meteora_dlmm = pytest.importorskip("meteora_dlmm")
    ref = _reference()
    lib_pool = meteora_dlmm.PoolState.from_accounts(
        base64.b64decode(ref["lbPairB64"]),
        [base64.b64decode(a["data"]) for a in ref["binArraysB64"]],
        ref["decX"],
        ref["decY"],
    )
    ours = _as_ours(lib_pool)
    checked = 0
    for result in ref["results"]:
        swap = ours.swap(int(result["inAmount"]), bool(ref["swapForY"]), int(ref["clockTs"]))
        if swap.remaining_in == 0:  # the largest one leaves the captured bin window
            assert swap.amount_out == int(result["outAmount"])
            checked += 1
    assert checked == 3


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=3_000 * 10**9), st.booleans(), st.integers(min_value=0, max_value=10**8))
def test_matches_meteora_dlmm_on_simulated_pools(amount_in: int, x_to_y: bool, dt_ms: int) -> None:
    meteora_dlmm = pytest.importorskip("meteora_dlmm")
    spec = DEFAULT_POOLS[0]
    sol, usdc = DEFAULT_TOKENS.resolve("SOL"), DEFAULT_TOKENS.resolve("USDC")
    assert sol is not None and usdc is not None
    if not x_to_y:
        amount_in = amount_in // 1_000 * 142  # USDC base units of a similar size
    ours = MeteoraVenue(PricePath(7)).dlmm_pool(spec, sol, usdc, T0 + dt_ms)
    arrays = {i // 70 for i in ours.bins}
    lib_bins = {i: meteora_dlmm.Bin(i, b.amount_x, b.amount_y, b.price_x64) for i, b in ours.bins.items()}
    p = ours.params
    lib_pool = meteora_dlmm.PoolState(
        active_id=ours.active_id,
        bin_step=p.bin_step,
        decimals_x=9,
        decimals_y=6,
        static_params=meteora_dlmm.StaticParams(
            p.base_factor,
            0,
            p.variable_fee_control,
            p.max_volatility_accumulator,
            p.filter_period,
            p.decay_period,
            p.reduction_factor,
        ),
        variable_params=meteora_dlmm.VariableParams(
            ours.volatility_accumulator, ours.volatility_reference, ours.index_reference, ours.last_update_ts
        ),
        bins=lib_bins,
        loaded_arrays=arrays,
        exhaustive=True,
    )
    now_s = (T0 + dt_ms) // 1000
    expected = meteora_dlmm.quote(lib_pool, amount_in, x_to_y, timestamp=now_s, strict=False)
    got = ours.swap(amount_in, x_to_y, now_s)
    assert got.amount_out == expected.amount_out
    assert (got.remaining_in == 0) == (expected.remaining_in == 0)
