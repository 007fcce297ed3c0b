"""The pool registry file and the on-chain account layouts the engine reads.

The registry (SOLANA_POOLS_FILE) names tokens and pool addresses only; every other fact
(vaults, fee, bin step, active bin, reserves, oracle, bin arrays) comes from the
accounts on chain, as it must on mainnet. Layouts: raydium-io/raydium-cp-swap
`PoolState`/`AmmConfig`, MeteoraAg DLMM `LbPair` (IDL 0.12), SPL Token `Account`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solders.pubkey import Pubkey

from .tokens import Token, TokenRegistry
from .venues import METEORA, METEORA_DLMM_PROGRAM_ID, RAYDIUM, RAYDIUM_CPMM_PROGRAM_ID

__all__ = [
    "BINS_PER_ARRAY",
    "CLOCK_SYSVAR",
    "ChainPool",
    "ChainRegistry",
    "CpmmState",
    "LbPairState",
    "bin_array_address",
    "decode_clock_unix_timestamp",
    "decode_token_amount",
    "load_registry",
    "pda",
]

TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022_PROGRAM = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PazqKqHvCHmMxQD"
CLOCK_SYSVAR = "SysvarC1ock11111111111111111111111111111111"
BINS_PER_ARRAY = 70


def pda(program: str, *seeds: bytes) -> str:
    return str(Pubkey.find_program_address(list(seeds), Pubkey.from_string(program))[0])


@dataclass(frozen=True)
class ChainPool:
    dex: str  # raydium | meteora
    address: str
    mints: tuple[str, str]  # raydium: (mint0, mint1); meteora: (token_x, token_y)


@dataclass(frozen=True)
class ChainRegistry:
    cluster: str
    programs: dict[str, str]
    tokens: TokenRegistry
    pools: tuple[ChainPool, ...]

    def pools_for(self, mint_a: str, mint_b: str) -> list[ChainPool]:
        return [p for p in self.pools if set(p.mints) == {mint_a, mint_b}]

    def pairs(self) -> list[tuple[Token, Token]]:
        seen: list[tuple[Token, Token]] = []
        for pool in self.pools:
            a, b = (self.tokens.resolve(m) for m in pool.mints)
            if a is None or b is None:
                continue
            for pair in ((a, b), (b, a)):
                if pair not in seen:
                    seen.append(pair)
        return seen


def parse_registry(doc: dict[str, Any]) -> ChainRegistry:
    programs = {str(k): str(v) for k, v in (doc.get("programs") or {}).items()}
    programs.setdefault(RAYDIUM, RAYDIUM_CPMM_PROGRAM_ID)
    programs.setdefault(METEORA, METEORA_DLMM_PROGRAM_ID)
    tokens = TokenRegistry(Token(str(t["symbol"]), str(t["mint"]), int(t["decimals"])) for t in doc["tokens"])
    pools = []
    for p in doc.get("pools", []):
        dex, mints = str(p["dex"]), p["mints"]
        if dex not in (RAYDIUM, METEORA) or len(mints) != 2:
            raise ValueError(f"registry pool {p!r}: want dex raydium|meteora and two mints")
        pools.append(ChainPool(dex, str(p["address"]), (str(mints[0]), str(mints[1]))))
    return ChainRegistry(str(doc.get("cluster", "")), programs, tokens, tuple(pools))


def load_registry(path: str | Path) -> ChainRegistry:
    return parse_registry(json.loads(Path(path).read_text()))


def _key(data: bytes, offset: int) -> str:
    return str(Pubkey.from_bytes(data[offset : offset + 32]))


@dataclass(frozen=True)
class CpmmState:
    """Raydium CP-Swap `PoolState` (8-byte discriminator, then packed fields)."""

    amm_config: str
    vault_0: str
    vault_1: str
    mint_0: str
    mint_1: str
    token_0_program: str
    token_1_program: str
    observation: str
    status: int
    protocol_fees: tuple[int, int]
    fund_fees: tuple[int, int]
    open_time: int

    @classmethod
    def decode(cls, data: bytes) -> CpmmState:
        if len(data) < 381:
            raise ValueError(f"CPMM pool state too short: {len(data)} bytes")
        proto0, proto1, fund0, fund1, open_time = struct.unpack_from("<QQQQQ", data, 341)
        return cls(
            amm_config=_key(data, 8),
            vault_0=_key(data, 72),
            vault_1=_key(data, 104),
            mint_0=_key(data, 168),
            mint_1=_key(data, 200),
            token_0_program=_key(data, 232),
            token_1_program=_key(data, 264),
            observation=_key(data, 296),
            status=data[329],
            protocol_fees=(proto0, proto1),
            fund_fees=(fund0, fund1),
            open_time=open_time,
        )

    @property
    def swap_enabled(self) -> bool:
        return not self.status & 0b100

    def reserves(self, vault_0_amount: int, vault_1_amount: int) -> tuple[int, int]:
        """The vault balances the curve trades against: minus the fees owed out of them."""
        return (
            vault_0_amount - self.protocol_fees[0] - self.fund_fees[0],
            vault_1_amount - self.protocol_fees[1] - self.fund_fees[1],
        )


def decode_amm_config_fee(data: bytes) -> int:
    """`AmmConfig.trade_fee_rate`, in millionths."""
    return int(struct.unpack_from("<Q", data, 12)[0])


@dataclass(frozen=True)
class LbPairState:
    """What the swap instruction needs from a DLMM `LbPair` (quotes decode it with meteora-dlmm)."""

    active_id: int
    bin_step: int
    token_x_mint: str
    token_y_mint: str
    reserve_x: str
    reserve_y: str
    oracle: str
    token_x_program: str
    token_y_program: str

    @classmethod
    def decode(cls, data: bytes) -> LbPairState:
        if len(data) < 904:
            raise ValueError(f"LbPair too short: {len(data)} bytes")
        programs = (TOKEN_PROGRAM, TOKEN_2022_PROGRAM)
        return cls(
            active_id=int(struct.unpack_from("<i", data, 76)[0]),
            bin_step=int(struct.unpack_from("<H", data, 80)[0]),
            token_x_mint=_key(data, 88),
            token_y_mint=_key(data, 120),
            reserve_x=_key(data, 152),
            reserve_y=_key(data, 184),
            oracle=_key(data, 552),
            token_x_program=programs[data[880]],
            token_y_program=programs[data[881]],
        )

    @property
    def active_array(self) -> int:
        return self.active_id // BINS_PER_ARRAY


def bin_array_address(lb_pair: str, index: int, program: str = METEORA_DLMM_PROGRAM_ID) -> str:
    return pda(program, b"bin_array", bytes(Pubkey.from_string(lb_pair)), struct.pack("<q", index))


def bitmap_extension_address(lb_pair: str, program: str = METEORA_DLMM_PROGRAM_ID) -> str:
    return pda(program, b"bitmap", bytes(Pubkey.from_string(lb_pair)))


def decode_token_amount(data: bytes) -> int:
    """SPL Token `Account.amount` (mint 32, owner 32, amount u64)."""
    return int(struct.unpack_from("<Q", data, 64)[0])


def decode_clock_unix_timestamp(data: bytes) -> int:
    """The Clock sysvar: slot, epoch_start_timestamp, epoch, leader_schedule_epoch, unix_timestamp."""
    return int(struct.unpack_from("<q", data, 32)[0])
