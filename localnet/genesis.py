"""Genesis: programs, fixture accounts, mints at their real addresses, a funded wallet and
real pools on both programs, built by sending the programs' own instructions.

The genesis file (`infra/localnet.json` in this project) is data; nothing here knows the
engine that will trade on the result.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from solders.account import Account
from solders.clock import Clock
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata

from . import meteora, raydium
from .spl import NATIVE_MINT, SYSTEM_PROGRAM_ID, ata, mint_account, token_account

__all__ = ["Genesis", "GenesisError", "GenesisResult", "PoolMaker", "TokenSpec", "build", "create_pool", "load_genesis"]

GENESIS_CLOCK_LAG_S = 60  # pools open "now + 1" at creation: create them in the past


class GenesisError(RuntimeError):
    """The genesis file is wrong, or a program refused a genesis transaction."""


@dataclass(frozen=True)
class TokenSpec:
    symbol: str
    mint: Pubkey
    decimals: int

    def base_units(self, whole: str | int | Decimal) -> int:
        return int(Decimal(str(whole)).scaleb(self.decimals).to_integral_value())


@dataclass
class Genesis:
    raw: dict[str, Any]
    base_dir: Path
    tokens: dict[str, TokenSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for t in self.raw.get("tokens", []):
            self.tokens[t["symbol"]] = TokenSpec(t["symbol"], Pubkey.from_string(t["mint"]), int(t["decimals"]))

    def base_units(self, symbol: str, whole: str | int | Decimal) -> int:
        return self.tokens[symbol].base_units(whole)


@dataclass
class GenesisResult:
    registry: dict[str, Any]
    wallet: Pubkey
    seconds: float
    transactions: int
    maker: PoolMaker  # keeps the local authorities, for pools made later (localnet/launch.py)


def load_genesis(path: str | Path) -> Genesis:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GenesisError(f"cannot read genesis file {path}: {exc}") from exc
    return Genesis(raw, path.parent)


def _seeded_keypair(seed: int, role: str) -> Keypair:
    """Local-only authorities (mint, liquidity provider): reproducible from the seed."""
    return Keypair.from_seed(hashlib.sha256(f"localnet|{seed}|{role}".encode()).digest())


class PoolMaker:
    """Sends the programs' pool-creation instructions as the local liquidity provider."""

    def __init__(self, svm: LiteSVM, genesis: Genesis, programs_dir: Path, accounts_dir: Path, seed: int) -> None:
        self.svm = svm
        self.genesis = genesis
        self.programs_dir = programs_dir
        self.accounts_dir = accounts_dir
        self.mint_authority = _seeded_keypair(seed, "mint-authority")
        self.provider = _seeded_keypair(seed, "liquidity-provider")
        self.supply: dict[Pubkey, int] = {}
        self.sent = 0
        self.programs: dict[str, Pubkey] = {}

    # ----------------------------------------------------------- raw accounts
    def rent(self, size: int) -> int:
        return int(self.svm.minimum_balance_for_rent_exemption(size))

    def set_token_account(self, owner: Pubkey, mint: Pubkey, amount: int) -> Pubkey:
        address = ata(owner, mint)
        self.svm.set_account(address, token_account(mint, owner, amount, self.rent(165)))
        self.supply[mint] = self.supply.get(mint, 0) + amount
        return address

    def fund_provider(self, plans: list[_PoolPlan]) -> None:
        """The provider holds exactly what the planned pools will take (its token accounts are rewritten)."""
        need: dict[Pubkey, int] = {}
        for plan in plans:
            for mint, amount in plan.deposits.items():
                need[mint] = need.get(mint, 0) + amount
        for mint, amount in need.items():
            self.set_token_account(self.provider.pubkey(), mint, amount)

    def symbol_of(self, mint: Pubkey) -> str:
        return next(t.symbol for t in self.genesis.tokens.values() if t.mint == mint)

    def set_lamports(self, owner: Pubkey, lamports: int) -> None:
        self.svm.set_account(owner, Account(lamports, b"", SYSTEM_PROGRAM_ID, False))

    def write_mints(self) -> None:
        for token in self.genesis.tokens.values():
            authority = None if token.mint == NATIVE_MINT else self.mint_authority.pubkey()
            supply = self.supply.get(token.mint, 0)
            self.svm.set_account(token.mint, mint_account(authority, supply, token.decimals, self.rent(82)))

    def load_programs(self) -> None:
        for spec in self.genesis.raw["programs"]:
            path = self.programs_dir / spec["file"]
            if not path.is_file():
                raise GenesisError(f"program binary not found: {path}")
            program_id = Pubkey.from_string(spec["id"])
            self.svm.add_program_from_file(program_id, path)
            self.programs[spec["name"]] = program_id

    def load_accounts(self) -> None:
        for spec in self.genesis.raw.get("accounts", []):
            data = bytearray((self.accounts_dir / spec["file"]).read_bytes())
            if spec.get("zeroTokenAmount"):
                data[64:72] = bytes(8)
            lamports = int(spec.get("lamports") or self.rent(len(data)))
            owner = Pubkey.from_string(spec["owner"])
            self.svm.set_account(Pubkey.from_string(spec["address"]), Account(lamports, bytes(data), owner, False))

    # ----------------------------------------------------------- transactions
    def send(self, instructions: list[Instruction], signers: list[Keypair], cu_limit: int) -> None:
        payer = signers[0]
        message = Message.new_with_blockhash(
            [set_compute_unit_limit(cu_limit), *instructions], payer.pubkey(), self.svm.latest_blockhash()
        )
        tx = VersionedTransaction(message, signers)
        result = self.svm.send_transaction(tx)
        self.sent += 1
        if isinstance(result, FailedTransactionMetadata):
            logs = "\n".join(result.meta().logs())
            raise GenesisError(f"genesis transaction failed: {result.err()}\n{logs}")


def _clock(svm: LiteSVM, unix_timestamp: int) -> None:
    c = svm.get_clock()
    svm.set_clock(Clock(c.slot, c.epoch_start_timestamp, c.epoch, c.leader_schedule_epoch, unix_timestamp))


def build(
    svm: LiteSVM,
    genesis: Genesis,
    wallet: Pubkey,
    programs_dir: Path,
    accounts_dir: Path,
    seed: int = 0,
) -> GenesisResult:
    """Fill `svm` from `genesis`; the registry of what was created."""
    started = time.perf_counter()
    b = PoolMaker(svm, genesis, programs_dir, accounts_dir, seed)
    b.load_programs()
    b.load_accounts()
    _clock(svm, int(time.time()) - GENESIS_CLOCK_LAG_S)
    b.write_mints()  # pools read the mints' decimals; supplies are rewritten at the end

    b.set_lamports(b.provider.pubkey(), 1_000_000 * 10**9)
    fund = genesis.raw.get("wallet", {})
    b.set_lamports(wallet, int(fund.get("lamports", 100 * 10**9)))
    for symbol, amount in fund.get("tokens", {}).items():
        b.set_token_account(wallet, genesis.tokens[symbol].mint, genesis.base_units(symbol, amount))

    plans = [_plan_pool(genesis, spec) for spec in genesis.raw.get("pools", [])]
    b.fund_provider(plans)
    pools = [_create(b, plan, index) for index, plan in enumerate(plans)]
    b.write_mints()
    _clock(svm, int(time.time()))

    registry = {
        "cluster": "localnet",
        "programs": {name: str(pid) for name, pid in b.programs.items()},
        "tokens": [{"symbol": t.symbol, "mint": str(t.mint), "decimals": t.decimals} for t in genesis.tokens.values()],
        "pools": pools,
    }
    return GenesisResult(registry, wallet, time.perf_counter() - started, b.sent, b)


# --------------------------------------------------------------------- pools
@dataclass
class _PoolPlan:
    dex: str
    spec: dict[str, Any]
    base: TokenSpec
    quote: TokenSpec
    deposits: dict[Pubkey, int]
    bins: list[tuple[int, int, int]] = field(default_factory=list)  # DLMM: (bin, x, y)
    active_id: int = 0


def _plan_pool(genesis: Genesis, spec: dict[str, Any]) -> _PoolPlan:
    base, quote = genesis.tokens[spec["base"]], genesis.tokens[spec["quote"]]
    price = Decimal(spec["price"])  # whole quote per whole base
    dex = spec["dex"]
    if dex == "raydium":
        depth = Decimal(spec["baseDepth"])
        deposits = {
            base.mint: base.base_units(depth),
            quote.mint: quote.base_units(depth * price),
        }
        return _PoolPlan(dex, spec, base, quote, deposits)
    if dex == "meteora":
        bin_step, half = int(spec["binStep"]), int(spec.get("halfWidth", 60))
        active = meteora.active_id_for_price(price, bin_step, base.decimals, quote.decimals)
        bins = meteora.curve_deposits(quote.base_units(Decimal(spec["quoteValue"])), active, half, bin_step)
        deposits = {base.mint: sum(b[1] for b in bins), quote.mint: sum(b[2] for b in bins)}
        return _PoolPlan(dex, spec, base, quote, deposits, bins, active)
    raise GenesisError(f"unknown dex {dex!r} in genesis pool {spec}")


def create_pool(maker: PoolMaker, spec: dict[str, Any], preset_index: int) -> dict[str, Any]:
    """One more pool after genesis (same rules as genesis pools); its registry entry."""
    plan = _plan_pool(maker.genesis, spec)
    maker.fund_provider([plan])
    entry = _create(maker, plan, preset_index)
    maker.write_mints()
    return entry


def _create(b: PoolMaker, plan: _PoolPlan, index: int) -> dict[str, Any]:
    return _create_cpmm(b, plan) if plan.dex == "raydium" else _create_dlmm(b, plan, index)


def _create_cpmm(b: PoolMaker, plan: _PoolPlan) -> dict[str, Any]:
    rd = b.genesis.raw["raydium"]
    pool, ix = raydium.initialize_pool(
        b.programs["raydium"],
        Pubkey.from_string(rd["ammConfig"]),
        Pubkey.from_string(rd["createPoolFeeReceiver"]),
        b.provider.pubkey(),
        plan.deposits,
        # a launch may open later (the pool's open_time); 0: the program makes it now + 1
        open_time=int(time.time()) + int(plan.spec["openInS"]) if plan.spec.get("openInS") else 0,
    )
    b.send([ix], [b.provider], raydium.CREATE_CU_LIMIT)
    return {
        "dex": "raydium",
        "address": str(pool.address),
        "mints": [str(pool.mint_0), str(pool.mint_1)],
        "symbols": [b.symbol_of(pool.mint_0), b.symbol_of(pool.mint_1)],
        "ammConfig": str(pool.amm_config),
        "vaults": [str(pool.vault_0), str(pool.vault_1)],
        "observation": str(pool.observation),
    }


def _create_dlmm(b: PoolMaker, plan: _PoolPlan, index: int) -> dict[str, Any]:
    program = b.programs["meteora"]
    spec = plan.spec
    preset = meteora.DlmmPreset(
        index=index,
        bin_step=int(spec["binStep"]),
        base_factor=int(spec["baseFactor"]),
        variable_fee_control=int(spec.get("variableFeeControl", 0)),
        max_volatility_accumulator=int(spec.get("maxVolatilityAccumulator", 350_000)),
    )
    b.svm.set_account(meteora.preset_address(program, index), meteora.preset_account(preset, program, b.rent(192)))
    provider = b.provider
    pair, ix = meteora.initialize_pair(
        program, preset, plan.base.mint, plan.quote.mint, plan.active_id, provider.pubkey()
    )
    b.send([ix], [provider], meteora.BIN_ARRAY_CU_LIMIT)
    low_bin, high_bin = plan.bins[0][0], plan.bins[-1][0]
    margin = meteora.BIN_ARRAY_MARGIN  # the active array and two more either way always exist
    arrays = range(meteora.bin_array_index(low_bin) - margin, meteora.bin_array_index(high_bin) + margin + 1)
    for array in arrays:
        b.send(
            [meteora.initialize_bin_array(program, pair.address, array, provider.pubkey())],
            [provider],
            meteora.BIN_ARRAY_CU_LIMIT,
        )
    owner = provider.pubkey()
    token_x, token_y = ata(owner, pair.mint_x), ata(owner, pair.mint_y)
    for start in range(0, len(plan.bins), meteora.MAX_POSITION_WIDTH):
        chunk = plan.bins[start : start + meteora.MAX_POSITION_WIDTH]
        position = Keypair()
        lower = chunk[0][0]
        b.send(
            [
                meteora.initialize_position(program, pair.address, position.pubkey(), owner, lower, len(chunk)),
                meteora.add_liquidity(program, pair, position.pubkey(), owner, token_x, token_y, lower, chunk),
            ],
            [provider, position],
            meteora.LIQUIDITY_CU_LIMIT,
        )
    return {
        "dex": "meteora",
        "address": str(pair.address),
        "mints": [str(pair.mint_x), str(pair.mint_y)],
        "symbols": [plan.base.symbol, plan.quote.symbol],
        "binStep": pair.bin_step,
        "activeId": pair.active_id,
        "reserves": [str(pair.reserve_x), str(pair.reserve_y)],
        "oracle": str(pair.oracle),
        "binArrays": {str(i): str(meteora.bin_array_address(program, pair.address, i)) for i in arrays},
    }
