"""Raydium CP-Swap pools, created through the program's own `initialize` instruction."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.sysvar import RENT

from .spl import ASSOCIATED_TOKEN_PROGRAM_ID, SYSTEM_PROGRAM_ID, TOKEN_PROGRAM_ID, ata

__all__ = ["CpmmPool", "initialize_pool"]

CREATE_CU_LIMIT = 300_000  # initialize uses ~126k


def _anchor_ix(name: str) -> bytes:
    return hashlib.sha256(f"global:{name}".encode()).digest()[:8]


_INITIALIZE = _anchor_ix("initialize")


def _pda(program: Pubkey, *seeds: bytes) -> Pubkey:
    return Pubkey.find_program_address(list(seeds), program)[0]


@dataclass(frozen=True)
class CpmmPool:
    address: Pubkey
    mint_0: Pubkey
    mint_1: Pubkey
    vault_0: Pubkey
    vault_1: Pubkey
    lp_mint: Pubkey
    observation: Pubkey
    amm_config: Pubkey


def initialize_pool(
    program: Pubkey,
    amm_config: Pubkey,
    fee_receiver: Pubkey,
    creator: Pubkey,
    amounts: dict[Pubkey, int],
    open_time: int = 0,
) -> tuple[CpmmPool, Instruction]:
    """The pool's addresses and the `initialize` instruction depositing `amounts` (by mint)."""
    mint_0, mint_1 = sorted(amounts, key=bytes)
    pool = _pda(program, b"pool", bytes(amm_config), bytes(mint_0), bytes(mint_1))
    authority = _pda(program, b"vault_and_lp_mint_auth_seed")
    lp_mint = _pda(program, b"pool_lp_mint", bytes(pool))
    vault_0 = _pda(program, b"pool_vault", bytes(pool), bytes(mint_0))
    vault_1 = _pda(program, b"pool_vault", bytes(pool), bytes(mint_1))
    observation = _pda(program, b"observation", bytes(pool))

    def meta(key: Pubkey, writable: bool = False, signer: bool = False) -> AccountMeta:
        return AccountMeta(key, is_signer=signer, is_writable=writable)

    accounts = [
        meta(creator, writable=True, signer=True),
        meta(amm_config),
        meta(authority),
        meta(pool, writable=True),
        meta(mint_0),
        meta(mint_1),
        meta(lp_mint, writable=True),
        meta(ata(creator, mint_0), writable=True),
        meta(ata(creator, mint_1), writable=True),
        meta(ata(creator, lp_mint), writable=True),
        meta(vault_0, writable=True),
        meta(vault_1, writable=True),
        meta(fee_receiver, writable=True),
        meta(observation, writable=True),
        meta(TOKEN_PROGRAM_ID),
        meta(TOKEN_PROGRAM_ID),
        meta(TOKEN_PROGRAM_ID),
        meta(ASSOCIATED_TOKEN_PROGRAM_ID),
        meta(SYSTEM_PROGRAM_ID),
        meta(RENT),
    ]
    data = _INITIALIZE + struct.pack("<QQQ", amounts[mint_0], amounts[mint_1], open_time)
    info = CpmmPool(pool, mint_0, mint_1, vault_0, vault_1, lp_mint, observation, amm_config)
    return info, Instruction(program, data, accounts)
