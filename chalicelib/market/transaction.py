"""A real, signed Solana v0 transaction for a route plan, built offline with solders.

One swap instruction per leg, to the venue's real program, with Anchor instruction data
(8-byte discriminator, u64 amount_in, u64 minimum out). Pool, vault and token accounts
are derived as program addresses from the mints, so the same plan always names the same
accounts. The floor is shared across legs in proportion to each leg's quoted output;
the last leg takes the rounding, so the legs' floors add up to `min_amount_out`.

Only the modelled market (SimulatedChain) signs these: no cluster executes them, and
their DLMM leg names a pair derived from the mints, which no real pair is. On a cluster
the swap comes from the pool accounts (`onchain.py`, `chalicelib/landing.py`).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from functools import lru_cache

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from .plan import RouteLeg, RoutePlan
from .venues import METEORA_DLMM_PROGRAM_ID, PROGRAM_IDS, RAYDIUM, RAYDIUM_CPMM_PROGRAM_ID

__all__ = [
    "ASSOCIATED_TOKEN_PROGRAM_ID",
    "SignedSwap",
    "build_swap_transaction",
    "discriminator",
    "leg_floors",
    "verify_signature",
]

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
_U64_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class SignedSwap:
    signature: str  # base58; the transaction id
    raw: bytes  # the serialized signed transaction
    program_ids: tuple[str, ...]  # one per leg, in instruction order
    last_valid_block_height: int | None = None  # on a real cluster: when its blockhash expires


def discriminator(name: str) -> bytes:
    """Anchor's instruction discriminator: sha256("global:<name>")[:8]."""
    return hashlib.sha256(f"global:{name}".encode()).digest()[:8]


_CPMM_SWAP_BASE_INPUT = discriminator("swap_base_input")
_DLMM_SWAP = discriminator("swap")


@lru_cache(maxsize=4_096)
def _pda(program: str, *seeds: bytes) -> Pubkey:
    return Pubkey.find_program_address(list(seeds), Pubkey.from_string(program))[0]


def _ata(owner: Pubkey, mint: Pubkey) -> Pubkey:
    return _pda(str(ASSOCIATED_TOKEN_PROGRAM_ID), bytes(owner), bytes(TOKEN_PROGRAM_ID), bytes(mint))


def leg_floors(plan: RoutePlan, min_amount_out: int) -> list[int]:
    """Each leg's share of the floor, by quoted output; they add up to `min_amount_out`."""
    if plan.amount_out <= 0:
        return [0] * (len(plan.legs) - 1) + [min_amount_out]
    shares = [min_amount_out * leg.amount_out // plan.amount_out for leg in plan.legs[:-1]]
    return [*shares, min_amount_out - sum(shares)]


def _cpmm_swap(payer: Pubkey, mint_in: Pubkey, mint_out: Pubkey, leg: RouteLeg, floor: int) -> Instruction:
    program = RAYDIUM_CPMM_PROGRAM_ID
    mint0, mint1 = sorted((mint_in, mint_out), key=bytes)
    amm_config = _pda(program, b"amm_config", (0).to_bytes(2, "big"))
    pool = _pda(program, b"pool", bytes(amm_config), bytes(mint0), bytes(mint1))
    accounts = [
        AccountMeta(payer, is_signer=True, is_writable=True),
        AccountMeta(_pda(program, b"vault_and_lp_mint_auth_seed"), is_signer=False, is_writable=False),
        AccountMeta(amm_config, is_signer=False, is_writable=False),
        AccountMeta(pool, is_signer=False, is_writable=True),
        AccountMeta(_ata(payer, mint_in), is_signer=False, is_writable=True),
        AccountMeta(_ata(payer, mint_out), is_signer=False, is_writable=True),
        AccountMeta(_pda(program, b"pool_vault", bytes(pool), bytes(mint_in)), is_signer=False, is_writable=True),
        AccountMeta(_pda(program, b"pool_vault", bytes(pool), bytes(mint_out)), is_signer=False, is_writable=True),
        AccountMeta(TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
        AccountMeta(TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
        AccountMeta(mint_in, is_signer=False, is_writable=False),
        AccountMeta(mint_out, is_signer=False, is_writable=False),
        AccountMeta(_pda(program, b"observation", bytes(pool)), is_signer=False, is_writable=True),
    ]
    data = _CPMM_SWAP_BASE_INPUT + struct.pack("<QQ", leg.amount_in, floor)
    return Instruction(Pubkey.from_string(program), data, accounts)


def _dlmm_swap(payer: Pubkey, mint_in: Pubkey, mint_out: Pubkey, leg: RouteLeg, floor: int) -> Instruction:
    program = METEORA_DLMM_PROGRAM_ID
    mint_x, mint_y = sorted((mint_in, mint_out), key=bytes)
    lb_pair = _pda(program, bytes(mint_x), bytes(mint_y))
    program_key = Pubkey.from_string(program)
    accounts = [
        AccountMeta(lb_pair, is_signer=False, is_writable=True),
        AccountMeta(program_key, is_signer=False, is_writable=False),  # no bitmap extension
        AccountMeta(_pda(program, bytes(lb_pair), bytes(mint_x)), is_signer=False, is_writable=True),
        AccountMeta(_pda(program, bytes(lb_pair), bytes(mint_y)), is_signer=False, is_writable=True),
        AccountMeta(_ata(payer, mint_in), is_signer=False, is_writable=True),
        AccountMeta(_ata(payer, mint_out), is_signer=False, is_writable=True),
        AccountMeta(mint_x, is_signer=False, is_writable=False),
        AccountMeta(mint_y, is_signer=False, is_writable=False),
        AccountMeta(_pda(program, b"oracle", bytes(lb_pair)), is_signer=False, is_writable=True),
        AccountMeta(program_key, is_signer=False, is_writable=False),  # no host fee account
        AccountMeta(payer, is_signer=True, is_writable=False),
        AccountMeta(TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
        AccountMeta(TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
        AccountMeta(_pda(program, b"__event_authority"), is_signer=False, is_writable=False),
        AccountMeta(program_key, is_signer=False, is_writable=False),
    ]
    data = _DLMM_SWAP + struct.pack("<QQ", leg.amount_in, floor)
    return Instruction(program_key, data, accounts)


def build_swap_transaction(plan: RoutePlan, min_amount_out: int, payer: Keypair, recent_blockhash: Hash) -> SignedSwap:
    """Build and sign the plan's swap; the signature is the transaction id."""
    if not 0 <= min_amount_out <= _U64_MAX:
        raise ValueError("min_amount_out must fit in a u64")
    mint_in = Pubkey.from_string(plan.token_in.mint)
    mint_out = Pubkey.from_string(plan.token_out.mint)
    owner = payer.pubkey()
    instructions = []
    for leg, floor in zip(plan.legs, leg_floors(plan, min_amount_out), strict=True):
        if not 0 < leg.amount_in <= _U64_MAX:
            raise ValueError(f"leg amount {leg.amount_in} does not fit in a u64")
        if leg.dex not in PROGRAM_IDS:
            raise ValueError(f"no program for dex {leg.dex!r}")
        build = _cpmm_swap if leg.dex == RAYDIUM else _dlmm_swap
        instructions.append(build(owner, mint_in, mint_out, leg, floor))
    message = MessageV0.try_compile(owner, instructions, [], recent_blockhash)
    tx = VersionedTransaction(message, [payer])
    return SignedSwap(
        signature=str(tx.signatures[0]),
        raw=bytes(tx),
        program_ids=tuple(PROGRAM_IDS[leg.dex] for leg in plan.legs),
    )


def verify_signature(raw: bytes) -> bool:
    """Whether `raw` is a transaction whose every signature matches its message."""
    try:
        tx = VersionedTransaction.from_bytes(raw)
        results = tx.verify_with_results()
    except (ValueError, TypeError):  # bytes that do not parse are not a signed transaction
        return False
    return bool(results) and all(results)
