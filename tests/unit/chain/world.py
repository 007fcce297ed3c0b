"""An in-process chain for unit tests: the real programs on LiteSVM, two real pools of one pair.

Meteora: the mainnet DLMM pair EtAdV... (a pump token / SOL), as snapshotted in
../shared/solana/accounts. Raydium: a CP-Swap pool of the same pair, created through the
program's `initialize`. A wallet holds the token and pre-wrapped SOL in its ATAs.
Skips when the program binaries are not on this machine.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from chalicelib.market.chainpools import parse_registry
from chalicelib.svm_cluster import SvmCluster


def _shared() -> Path:
    """`../shared/solana` from the project, or from any folder above it (a git worktree)."""
    for folder in Path(__file__).resolve().parents[3:]:
        if (folder / "shared" / "solana").is_dir():
            return folder / "shared" / "solana"
    return Path(__file__).resolve().parents[4] / "shared" / "solana"


SHARED = _shared()
PROGRAMS = Path(os.environ.get("SOLANA_PROGRAMS_DIR") or SHARED / "programs")
ACCOUNTS = Path(os.environ.get("SOLANA_ACCOUNTS_DIR") or SHARED / "accounts")

CPMM = Pubkey.from_string("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C")
DLMM = Pubkey.from_string("LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo")
TOKEN = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ATA_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
SYSTEM = Pubkey.from_string("11111111111111111111111111111111")
RENT = Pubkey.from_string("SysvarRent111111111111111111111111111111111")
WSOL = Pubkey.from_string("So11111111111111111111111111111111111111112")
PUMP = Pubkey.from_string("Df6yfrKC8kZE3KNkrHERKzAetSxbrWeniQfyJY4Jpump")
LB_PAIR = Pubkey.from_string("EtAdVRLFH22rjWh3mcUasKFF27WtHhsaCvK27tPFFWig")
AMM_CONFIG = Pubkey.from_string("D4FPEruKEHrG5TenZ2mpDGEfu1iUvTiqBxvpU8HLBvC2")
FEE_RECEIVER = Pubkey.from_string("DNXgeM9EiiaAbaWvwjHj9fQQLAX5ZsfHyvmYUNRAdNC8")


def pda(program: Pubkey, *seeds: bytes) -> Pubkey:
    return Pubkey.find_program_address(list(seeds), program)[0]


def ata(owner: Pubkey, mint: Pubkey) -> Pubkey:
    return pda(ATA_PROGRAM, bytes(owner), bytes(TOKEN), bytes(mint))


def _mint_data(decimals: int, supply: int = 0) -> bytes:
    return struct.pack("<I32sQBBI32s", 0, bytes(32), supply, decimals, 1, 0, bytes(32))


def _token_data(mint: Pubkey, owner: Pubkey, amount: int, native_rent: int | None) -> bytes:
    native = struct.pack("<IQ", 1, native_rent) if native_rent is not None else struct.pack("<IQ", 0, 0)
    return (
        bytes(mint)
        + bytes(owner)
        + struct.pack("<Q", amount)
        + struct.pack("<I32s", 0, bytes(32))
        + bytes([1])
        + native
        + struct.pack("<Q", 0)
        + struct.pack("<I32s", 0, bytes(32))
    )


@dataclass
class World:
    svm: LiteSVM
    cluster: SvmCluster
    wallet: Keypair
    registry_doc: dict
    cpmm_pool: Pubkey

    @property
    def registry(self):
        return parse_registry(self.registry_doc)

    def token_balance(self, owner: Pubkey, mint: Pubkey) -> int:
        account = self.svm.get_account(ata(owner, mint))
        return struct.unpack_from("<Q", bytes(account.data), 64)[0] if account else 0


def fund_token(svm: LiteSVM, owner: Pubkey, mint: Pubkey, amount: int) -> Pubkey:
    address = ata(owner, mint)
    rent = svm.minimum_balance_for_rent_exemption(165)
    native = rent if mint == WSOL else None
    lamports = rent + (amount if mint == WSOL else 0)
    svm.set_account(address, Account(lamports, _token_data(mint, owner, amount, native), TOKEN, False, 0))
    return address


def _send(svm: LiteSVM, payer: Keypair, instructions: list[Instruction]) -> None:
    message = MessageV0.try_compile(payer.pubkey(), instructions, [], svm.latest_blockhash())
    result = svm.send_transaction(VersionedTransaction(message, [payer]))
    if hasattr(result, "err"):
        raise AssertionError(f"setup transaction failed: {result.err()} {result.meta().logs()}")


def _create_cpmm_pool(svm: LiteSVM, creator: Keypair, init_0: int, init_1: int) -> Pubkey:
    mint_0, mint_1 = sorted((WSOL, PUMP), key=bytes)
    pool = pda(CPMM, b"pool", bytes(AMM_CONFIG), bytes(mint_0), bytes(mint_1))
    lp_mint = pda(CPMM, b"pool_lp_mint", bytes(pool))
    accounts = [
        AccountMeta(creator.pubkey(), True, True),
        AccountMeta(AMM_CONFIG, False, False),
        AccountMeta(pda(CPMM, b"vault_and_lp_mint_auth_seed"), False, False),
        AccountMeta(pool, False, True),
        AccountMeta(mint_0, False, False),
        AccountMeta(mint_1, False, False),
        AccountMeta(lp_mint, False, True),
        AccountMeta(ata(creator.pubkey(), mint_0), False, True),
        AccountMeta(ata(creator.pubkey(), mint_1), False, True),
        AccountMeta(ata(creator.pubkey(), lp_mint), False, True),
        AccountMeta(pda(CPMM, b"pool_vault", bytes(pool), bytes(mint_0)), False, True),
        AccountMeta(pda(CPMM, b"pool_vault", bytes(pool), bytes(mint_1)), False, True),
        AccountMeta(FEE_RECEIVER, False, True),
        AccountMeta(pda(CPMM, b"observation", bytes(pool)), False, True),
        AccountMeta(TOKEN, False, False),
        AccountMeta(TOKEN, False, False),
        AccountMeta(TOKEN, False, False),
        AccountMeta(ATA_PROGRAM, False, False),
        AccountMeta(SYSTEM, False, False),
        AccountMeta(RENT, False, False),
    ]
    data = hashlib.sha256(b"global:initialize").digest()[:8] + struct.pack("<QQQ", init_0, init_1, 0)
    from solders.compute_budget import set_compute_unit_limit

    _send(svm, creator, [set_compute_unit_limit(400_000), Instruction(CPMM, data, accounts)])
    return pool


def build_world(wallet_sol: int = 50 * 10**9, wallet_pump: int = 200_000 * 10**6, cpmm_sol: int = 10 * 10**9) -> World:
    if not (PROGRAMS / "raydium_cp_swap.so").exists() or not (PROGRAMS / "meteora_dlmm.so").exists():
        pytest.skip(f"no program binaries in {PROGRAMS}")
    svm = LiteSVM()
    svm.add_program_from_file(CPMM, str(PROGRAMS / "raydium_cp_swap.so"))
    svm.add_program_from_file(DLMM, str(PROGRAMS / "meteora_dlmm.so"))
    clock = svm.get_clock()
    clock.unix_timestamp = int(time.time())
    svm.set_clock(clock)

    def put(address: Pubkey, data: bytes, owner: Pubkey) -> None:
        svm.set_account(address, Account(svm.minimum_balance_for_rent_exemption(len(data)), data, owner, False, 0))

    put(WSOL, _mint_data(9), TOKEN)
    put(PUMP, (ACCOUNTS / "meteora-dlmm-EtAdV" / "token_x_mint.bin").read_bytes(), TOKEN)
    snap = ACCOUNTS / "meteora-dlmm-EtAdV"
    put(LB_PAIR, (snap / "lb_pair.bin").read_bytes(), DLMM)
    put(pda(DLMM, b"oracle", bytes(LB_PAIR)), (snap / "oracle.bin").read_bytes(), DLMM)
    put(pda(DLMM, bytes(LB_PAIR), bytes(PUMP)), (snap / "reserve_x.bin").read_bytes(), TOKEN)
    reserve_y = (snap / "reserve_y.bin").read_bytes()  # wrapped SOL: its lamports back its amount
    rent = svm.minimum_balance_for_rent_exemption(165)
    amount_y = struct.unpack_from("<Q", reserve_y, 64)[0]
    svm.set_account(pda(DLMM, bytes(LB_PAIR), bytes(WSOL)), Account(rent + amount_y, reserve_y, TOKEN, False, 0))
    for name in ("bin_array_1.bin", "bin_array_2.bin"):
        data = (snap / name).read_bytes()
        index = struct.unpack_from("<q", data, 8)[0]
        put(pda(DLMM, b"bin_array", bytes(LB_PAIR), struct.pack("<q", index)), data, DLMM)
    put(AMM_CONFIG, (ACCOUNTS / "raydium" / "raydium-amm-config").read_bytes(), CPMM)
    receiver = bytearray((ACCOUNTS / "raydium" / "raydium-create-pool-fee-receive").read_bytes())
    receiver[64:72] = bytes(8)
    put(FEE_RECEIVER, bytes(receiver), TOKEN)

    creator = Keypair()
    svm.airdrop(creator.pubkey(), 100 * 10**9)
    price_num, price_den = 650 * 10**6, 10**9  # pump base units per lamport, near the DLMM pair's
    fund_token(svm, creator.pubkey(), WSOL, cpmm_sol)
    fund_token(svm, creator.pubkey(), PUMP, cpmm_sol * price_num // price_den)
    mint_0, _ = sorted((WSOL, PUMP), key=bytes)
    pump_side = cpmm_sol * price_num // price_den
    init = (cpmm_sol, pump_side) if mint_0 == WSOL else (pump_side, cpmm_sol)
    pool = _create_cpmm_pool(svm, creator, *init)
    clock = svm.get_clock()
    clock.unix_timestamp += 5  # swaps open at initialize's block time + 1
    svm.set_clock(clock)

    wallet = Keypair()
    svm.airdrop(wallet.pubkey(), 10 * 10**9)
    fund_token(svm, wallet.pubkey(), WSOL, wallet_sol)
    fund_token(svm, wallet.pubkey(), PUMP, wallet_pump)
    registry = {
        "cluster": "litesvm",
        "programs": {"raydium": str(CPMM), "meteora": str(DLMM)},
        "tokens": [
            {"symbol": "SOL", "mint": str(WSOL), "decimals": 9},
            {"symbol": "PUMP", "mint": str(PUMP), "decimals": 6},
        ],
        "pools": [
            {"dex": "raydium", "address": str(pool), "mints": [str(m) for m in sorted((WSOL, PUMP), key=bytes)]},
            {"dex": "meteora", "address": str(LB_PAIR), "mints": [str(PUMP), str(WSOL)]},
        ],
    }
    return World(svm, SvmCluster(svm), wallet, registry, pool)
