"""Meteora DLMM pairs, created the way a pool creator does: `initialize_lb_pair2`, bin arrays,
positions and `add_liquidity` (layouts from the program's IDL, lb_clmm 0.12)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal

from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.sysvar import RENT

from .spl import SYSTEM_PROGRAM_ID, TOKEN_PROGRAM_ID

__all__ = [
    "BINS_PER_ARRAY",
    "DlmmPair",
    "DlmmPreset",
    "add_liquidity",
    "bin_array_index",
    "initialize_bin_array",
    "initialize_pair",
    "initialize_position",
    "pair_address",
    "preset_account",
    "preset_address",
]

BINS_PER_ARRAY = 70
BIN_ARRAY_MARGIN = 2  # arrays initialised beyond the liquidity on each side (a swap names up to 3)
MAX_POSITION_WIDTH = 70
BIN_ARRAY_CU_LIMIT = 400_000  # initialize_bin_array uses ~235k
LIQUIDITY_CU_LIMIT = 1_400_000
_PRESET2_DISCRIMINATOR = bytes([171, 236, 148, 115, 162, 113, 222, 174])
_INITIALIZE_LB_PAIR2 = bytes([73, 59, 36, 120, 237, 83, 108, 198])
_INITIALIZE_BIN_ARRAY = bytes([35, 86, 19, 185, 78, 212, 75, 211])
_INITIALIZE_POSITION = bytes([219, 192, 234, 71, 190, 191, 102, 80])
_ADD_LIQUIDITY = bytes([181, 157, 89, 67, 143, 182, 52, 72])


@dataclass(frozen=True)
class DlmmPreset:
    """A PresetParameter2 account's fields (only the admin creates these on mainnet)."""

    index: int
    bin_step: int
    base_factor: int
    variable_fee_control: int = 0
    max_volatility_accumulator: int = 350_000
    filter_period: int = 30
    decay_period: int = 600
    reduction_factor: int = 5_000
    protocol_share: int = 500
    base_fee_power_factor: int = 0


@dataclass(frozen=True)
class DlmmPair:
    address: Pubkey
    mint_x: Pubkey
    mint_y: Pubkey
    reserve_x: Pubkey
    reserve_y: Pubkey
    oracle: Pubkey
    preset: Pubkey
    active_id: int
    bin_step: int


def _pda(program: Pubkey, *seeds: bytes) -> Pubkey:
    return Pubkey.find_program_address(list(seeds), program)[0]


def _meta(key: Pubkey, writable: bool = False, signer: bool = False) -> AccountMeta:
    return AccountMeta(key, is_signer=signer, is_writable=writable)


def event_authority(program: Pubkey) -> Pubkey:
    return _pda(program, b"__event_authority")


def preset_address(program: Pubkey, index: int) -> Pubkey:
    return _pda(program, b"preset_parameter2", struct.pack("<H", index))


def preset_account(preset: DlmmPreset, program: Pubkey, rent_lamports: int) -> Account:
    body = struct.pack(
        "<HHHHIIHHHBBB7x",
        preset.bin_step,
        preset.base_factor,
        preset.filter_period,
        preset.decay_period,
        preset.variable_fee_control,
        preset.max_volatility_accumulator,
        preset.reduction_factor,
        preset.protocol_share,
        preset.index,
        preset.base_fee_power_factor,
        0,  # concrete_function_type: none
        0,  # collect_fee_mode: input only
    )
    data = _PRESET2_DISCRIMINATOR + body + bytes(8 * 19)
    assert len(data) == 192
    return Account(lamports=rent_lamports, data=data, owner=program, executable=False)


def pair_address(program: Pubkey, preset: Pubkey, mint_a: Pubkey, mint_b: Pubkey) -> Pubkey:
    low, high = sorted((mint_a, mint_b), key=bytes)
    return _pda(program, bytes(preset), bytes(low), bytes(high))


def active_id_for_price(price: Decimal, bin_step: int, decimals_x: int, decimals_y: int) -> int:
    """The bin whose price, (1 + bin_step/1e4)^id in base units of y per base unit of x, is nearest `price`."""
    per_base_unit = price.scaleb(decimals_y - decimals_x)
    return int((per_base_unit.ln() / (1 + Decimal(bin_step) / 10_000).ln()).to_integral_value())


def curve_deposits(total_value_y: int, active_id: int, half_width: int, bin_step: int) -> list[tuple[int, int, int]]:
    """(bin, x, y) base units for a curve around the active bin: weight (half_width + 1 - |d|)^2,
    y below the active bin, x above (worth the same at each bin's price), half of each in it."""
    weights = {d: (half_width + 1 - abs(d)) ** 2 for d in range(-half_width, half_width + 1)}
    total_weight = sum(weights.values())
    step = 1 + Decimal(bin_step) / 10_000
    out = []
    for d, weight in weights.items():
        value_y = total_value_y * weight // total_weight
        price = step ** (active_id + d)  # base units of y per base unit of x
        if d < 0:
            out.append((active_id + d, 0, value_y))
        elif d > 0:
            out.append((active_id + d, int(value_y / price), 0))
        else:
            half = value_y // 2
            out.append((active_id, int((value_y - half) / price), half))
    return out


def bin_array_index(bin_id: int) -> int:
    return bin_id // BINS_PER_ARRAY


def bin_array_address(program: Pubkey, pair: Pubkey, index: int) -> Pubkey:
    return _pda(program, b"bin_array", bytes(pair), struct.pack("<q", index))


def initialize_pair(
    program: Pubkey, preset: DlmmPreset, mint_x: Pubkey, mint_y: Pubkey, active_id: int, funder: Pubkey
) -> tuple[DlmmPair, Instruction]:
    preset_key = preset_address(program, preset.index)
    pair = pair_address(program, preset_key, mint_x, mint_y)
    reserve_x = _pda(program, bytes(pair), bytes(mint_x))
    reserve_y = _pda(program, bytes(pair), bytes(mint_y))
    oracle = _pda(program, b"oracle", bytes(pair))
    accounts = [
        _meta(pair, writable=True),
        _meta(program),  # no bin array bitmap extension
        _meta(mint_x),
        _meta(mint_y),
        _meta(reserve_x, writable=True),
        _meta(reserve_y, writable=True),
        _meta(oracle, writable=True),
        _meta(preset_key),
        _meta(funder, writable=True, signer=True),
        _meta(program),  # no token badge x
        _meta(program),  # no token badge y
        _meta(TOKEN_PROGRAM_ID),
        _meta(TOKEN_PROGRAM_ID),
        _meta(SYSTEM_PROGRAM_ID),
        _meta(event_authority(program)),
        _meta(program),
    ]
    data = _INITIALIZE_LB_PAIR2 + struct.pack("<i", active_id) + bytes(96)
    info = DlmmPair(pair, mint_x, mint_y, reserve_x, reserve_y, oracle, preset_key, active_id, preset.bin_step)
    return info, Instruction(program, data, accounts)


def initialize_bin_array(program: Pubkey, pair: Pubkey, index: int, funder: Pubkey) -> Instruction:
    accounts = [
        _meta(pair),
        _meta(bin_array_address(program, pair, index), writable=True),
        _meta(funder, writable=True, signer=True),
        _meta(SYSTEM_PROGRAM_ID),
    ]
    return Instruction(program, _INITIALIZE_BIN_ARRAY + struct.pack("<q", index), accounts)


def initialize_position(
    program: Pubkey, pair: Pubkey, position: Pubkey, owner: Pubkey, lower_bin_id: int, width: int
) -> Instruction:
    accounts = [
        _meta(owner, writable=True, signer=True),
        _meta(position, writable=True, signer=True),
        _meta(pair),
        _meta(owner, signer=True),
        _meta(SYSTEM_PROGRAM_ID),
        _meta(RENT),
        _meta(event_authority(program)),
        _meta(program),
    ]
    return Instruction(program, _INITIALIZE_POSITION + struct.pack("<ii", lower_bin_id, width), accounts)


def add_liquidity(
    program: Pubkey,
    pair: DlmmPair,
    position: Pubkey,
    owner: Pubkey,
    owner_token_x: Pubkey,
    owner_token_y: Pubkey,
    lower_bin_id: int,
    deposits: list[tuple[int, int, int]],
) -> Instruction:
    """Deposit `deposits` [(bin_id, amount_x, amount_y)] into a position starting at `lower_bin_id`."""
    amount_x = sum(d[1] for d in deposits)
    amount_y = sum(d[2] for d in deposits)
    dist = b"".join(
        struct.pack(
            "<iHH",
            bin_id,
            x * 10_000 // amount_x if amount_x else 0,
            y * 10_000 // amount_y if amount_y else 0,
        )
        for bin_id, x, y in deposits
    )
    data = _ADD_LIQUIDITY + struct.pack("<QQI", amount_x, amount_y, len(deposits)) + dist
    lower = bin_array_index(lower_bin_id)
    accounts = [
        _meta(position, writable=True),
        _meta(pair.address, writable=True),
        _meta(program),  # no bin array bitmap extension
        _meta(owner_token_x, writable=True),
        _meta(owner_token_y, writable=True),
        _meta(pair.reserve_x, writable=True),
        _meta(pair.reserve_y, writable=True),
        _meta(pair.mint_x),
        _meta(pair.mint_y),
        _meta(bin_array_address(program, pair.address, lower), writable=True),
        _meta(bin_array_address(program, pair.address, lower + 1), writable=True),
        _meta(owner, signer=True),
        _meta(TOKEN_PROGRAM_ID),
        _meta(TOKEN_PROGRAM_ID),
        _meta(event_authority(program)),
        _meta(program),
    ]
    return Instruction(program, data, accounts)
