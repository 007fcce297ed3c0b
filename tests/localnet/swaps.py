"""Swap transactions built by the tests themselves (plain solders), from the registry alone."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from solders.compute_budget import set_compute_unit_limit
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address
from solders.transaction import VersionedTransaction

TOKEN = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
CPMM_SWAP_BASE_INPUT = hashlib.sha256(b"global:swap_base_input").digest()[:8]
DLMM_SWAP = bytes([248, 198, 158, 145, 225, 117, 135, 200])


def _pda(program: Pubkey, *seeds: bytes) -> Pubkey:
    return Pubkey.find_program_address(list(seeds), program)[0]


def _m(key: Pubkey, writable: bool = False, signer: bool = False) -> AccountMeta:
    return AccountMeta(key, is_signer=signer, is_writable=writable)


def find_pool(registry: dict[str, Any], dex: str, mint_a: str, mint_b: str) -> dict[str, Any]:
    return next(p for p in registry["pools"] if p["dex"] == dex and set(p["mints"]) == {mint_a, mint_b})


def mint_of(registry: dict[str, Any], symbol: str) -> str:
    return next(t["mint"] for t in registry["tokens"] if t["symbol"] == symbol)


def cpmm_swap(registry: dict[str, Any], pool: dict[str, Any], payer: Pubkey, mint_in: str, amount: int, floor: int):
    program = Pubkey.from_string(registry["programs"]["raydium"])
    address = Pubkey.from_string(pool["address"])
    m_in = Pubkey.from_string(mint_in)
    m_out = Pubkey.from_string(next(m for m in pool["mints"] if m != mint_in))
    accounts = [
        _m(payer, writable=True, signer=True),
        _m(_pda(program, b"vault_and_lp_mint_auth_seed")),
        _m(Pubkey.from_string(pool["ammConfig"])),
        _m(address, writable=True),
        _m(get_associated_token_address(payer, m_in), writable=True),
        _m(get_associated_token_address(payer, m_out), writable=True),
        _m(_pda(program, b"pool_vault", bytes(address), bytes(m_in)), writable=True),
        _m(_pda(program, b"pool_vault", bytes(address), bytes(m_out)), writable=True),
        _m(TOKEN),
        _m(TOKEN),
        _m(m_in),
        _m(m_out),
        _m(_pda(program, b"observation", bytes(address)), writable=True),
    ]
    return Instruction(program, CPMM_SWAP_BASE_INPUT + struct.pack("<QQ", amount, floor), accounts)


def dlmm_swap(registry: dict[str, Any], pool: dict[str, Any], payer: Pubkey, mint_in: str, amount: int, floor: int):
    program = Pubkey.from_string(registry["programs"]["meteora"])
    pair = Pubkey.from_string(pool["address"])
    mint_x, mint_y = (Pubkey.from_string(m) for m in pool["mints"])
    m_in = Pubkey.from_string(mint_in)
    m_out = mint_y if m_in == mint_x else mint_x
    active = pool["activeId"] // 70
    # x in: price goes down, bins below; y in: up
    direction = -1 if m_in == mint_x else 1
    arrays = [
        pool["binArrays"][str(active + direction * k)]
        for k in range(3)
        if str(active + direction * k) in pool["binArrays"]
    ]
    accounts = [
        _m(pair, writable=True),
        _m(program),
        _m(_pda(program, bytes(pair), bytes(mint_x)), writable=True),
        _m(_pda(program, bytes(pair), bytes(mint_y)), writable=True),
        _m(get_associated_token_address(payer, m_in), writable=True),
        _m(get_associated_token_address(payer, m_out), writable=True),
        _m(mint_x),
        _m(mint_y),
        _m(_pda(program, b"oracle", bytes(pair)), writable=True),
        _m(program),
        _m(payer, signer=True),
        _m(TOKEN),
        _m(TOKEN),
        _m(_pda(program, b"__event_authority")),
        _m(program),
        *[_m(Pubkey.from_string(a), writable=True) for a in arrays],
    ]
    return Instruction(program, DLMM_SWAP + struct.pack("<QQ", amount, floor), accounts)


def signed(payer: Keypair, instructions: list[Instruction], blockhash: str, cu: int = 400_000) -> VersionedTransaction:
    message = MessageV0.try_compile(
        payer.pubkey(), [set_compute_unit_limit(cu), *instructions], [], Hash.from_string(blockhash)
    )
    return VersionedTransaction(message, [payer])


def create_ata_idempotent(payer: Pubkey, owner: Pubkey, mint: str) -> Instruction:
    """The Associated Token Account program's CreateIdempotent (instruction 1)."""
    program = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
    m = Pubkey.from_string(mint)
    accounts = [
        _m(payer, writable=True, signer=True),
        _m(get_associated_token_address(owner, m), writable=True),
        _m(owner),
        _m(m),
        _m(Pubkey.from_string("11111111111111111111111111111111")),
        _m(TOKEN),
    ]
    return Instruction(program, bytes([1]), accounts)
