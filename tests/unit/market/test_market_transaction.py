from __future__ import annotations

import hashlib
import struct

import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.transaction import VersionedTransaction

from chalicelib.market import (
    METEORA_DLMM_PROGRAM_ID,
    RAYDIUM_CPMM_PROGRAM_ID,
    Market,
    RoutePlan,
    build_swap_transaction,
    verify_signature,
)
from chalicelib.market.transaction import leg_floors

from .conftest import token

PAYER = Keypair.from_seed(bytes(range(32)))
BLOCKHASH = Hash.from_string("4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziofM")


def _split_plan(market: Market) -> RoutePlan:
    plan = market.route(token("SOL"), token("USDC"), 5_000 * 10**9)
    assert plan.dex == "split"
    return plan


def test_builds_a_signed_v0_transaction_with_one_swap_per_leg(market: Market) -> None:
    plan = _split_plan(market)
    floor = plan.min_amount_out(50)
    signed = build_swap_transaction(plan, floor, PAYER, BLOCKHASH)
    assert verify_signature(signed.raw)
    tx = VersionedTransaction.from_bytes(signed.raw)
    assert str(tx.signatures[0]) == signed.signature
    assert tx.message.recent_blockhash == BLOCKHASH
    assert tx.message.account_keys[0] == PAYER.pubkey()
    assert signed.program_ids == (RAYDIUM_CPMM_PROGRAM_ID, METEORA_DLMM_PROGRAM_ID)
    keys = tx.message.account_keys
    programs = [str(keys[ix.program_id_index]) for ix in tx.message.instructions]
    assert programs == list(signed.program_ids)
    discriminators = {
        RAYDIUM_CPMM_PROGRAM_ID: hashlib.sha256(b"global:swap_base_input").digest()[:8],
        METEORA_DLMM_PROGRAM_ID: hashlib.sha256(b"global:swap").digest()[:8],
    }
    floors = []
    for ix, program, leg in zip(tx.message.instructions, programs, plan.legs, strict=True):
        data = bytes(ix.data)
        assert data[:8] == discriminators[program]
        amount_in, leg_floor = struct.unpack("<QQ", data[8:])
        assert amount_in == leg.amount_in
        floors.append(leg_floor)
    assert sum(floors) == floor


def test_same_plan_same_key_same_signature(market: Market) -> None:
    plan = market.route(token("USDC"), token("SOL"), 25 * 10**6)
    a = build_swap_transaction(plan, plan.min_amount_out(100), PAYER, BLOCKHASH)
    b = build_swap_transaction(plan, plan.min_amount_out(100), PAYER, BLOCKHASH)
    assert a == b  # ed25519 is deterministic
    c = build_swap_transaction(plan, plan.min_amount_out(101), PAYER, BLOCKHASH)
    assert c.signature != a.signature


def test_tampering_breaks_the_signature(market: Market) -> None:
    plan = market.route(token("SOL"), token("USDC"), 10**9)
    raw = bytearray(build_swap_transaction(plan, plan.min_amount_out(100), PAYER, BLOCKHASH).raw)
    assert verify_signature(bytes(raw))
    raw[-1] ^= 0x01  # the last byte of the floor in the swap's data
    assert not verify_signature(bytes(raw))
    raw[-1] ^= 0x01
    raw[5] ^= 0x01  # inside the signature
    assert not verify_signature(bytes(raw))


@pytest.mark.parametrize("raw", [b"", b"\x00" * 10, b"\x01" + b"\x00" * 64, b"garbage" * 40])
def test_garbage_does_not_verify(raw: bytes) -> None:
    assert not verify_signature(raw)


def test_leg_floors_add_up_to_the_floor(market: Market) -> None:
    plan = _split_plan(market)
    for floor in (0, 1, 7, plan.amount_out - 1, plan.amount_out):
        floors = leg_floors(plan, floor)
        assert sum(floors) == floor and all(f >= 0 for f in floors)


def test_rejects_amounts_beyond_u64(market: Market) -> None:
    plan = market.route(token("SOL"), token("USDC"), 10**9)
    with pytest.raises(ValueError):
        build_swap_transaction(plan, 1 << 64, PAYER, BLOCKHASH)


def test_program_ids_are_real_keys() -> None:
    from solders.pubkey import Pubkey

    for program in (RAYDIUM_CPMM_PROGRAM_ID, METEORA_DLMM_PROGRAM_ID):
        assert Pubkey.from_string(program).is_on_curve()  # deployed from a keypair, so on the curve
