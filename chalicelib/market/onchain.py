"""The market on a real cluster: quotes from pool accounts, swap instructions from them.

Each route reads the pair's pools through the cluster port (two getMultipleAccounts
round trips: the pools and the clock, then their vaults, configs and bin arrays), so an
executed order moves the next quote. Raydium CPMM quotes with the project's integer
curve (`cpmm.py`) on the vault balances and the AmmConfig fee; Meteora DLMM with the
`meteora-dlmm` package on the pair, its bin arrays and the cluster clock. The routing
rule is the modelled market's: the best venue, or a split when it returns more.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from meteora_dlmm import PoolState, quote
from meteora_dlmm.fees import total_fee
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from chalicelib.cluster import Account, Cluster

from .chainpools import (
    CLOCK_SYSVAR,
    ChainPool,
    ChainRegistry,
    CpmmState,
    LbPairState,
    bin_array_address,
    bitmap_extension_address,
    decode_amm_config_fee,
    decode_clock_unix_timestamp,
    decode_token_amount,
    pda,
)
from .cpmm import CpmmPool
from .errors import InsufficientLiquidity, PoolNotOpen, UnsupportedPair, VenueUnavailable
from .market import SPLIT
from .plan import RouteLeg, RoutePlan, VenueQuote, leg_percents, whole_price
from .router import best_split
from .tokens import Token
from .transaction import ASSOCIATED_TOKEN_PROGRAM_ID, discriminator
from .venues import METEORA, RAYDIUM, VenueSwap

__all__ = ["OnChainMarket", "PoolSnapshot"]

_IMPACT_PLACES = Decimal("0.00000001")
_Q64 = 1 << 64
_FEE_PRECISION = 1_000_000_000
_ARRAYS_EACH_SIDE = 2  # bin arrays read each side of the active one
_ARRAYS_PER_SWAP = 3  # bin arrays a swap instruction names, from the active one on
_CPMM_SWAP_BASE_INPUT = discriminator("swap_base_input")
_DLMM_SWAP = discriminator("swap")


def _ata(owner: Pubkey, mint: str, token_program: str) -> Pubkey:
    seeds = [bytes(owner), bytes(Pubkey.from_string(token_program)), bytes(Pubkey.from_string(mint))]
    return Pubkey.find_program_address(seeds, ASSOCIATED_TOKEN_PROGRAM_ID)[0]


def _meta(key: str | Pubkey, writable: bool = False, signer: bool = False) -> AccountMeta:
    pubkey = key if isinstance(key, Pubkey) else Pubkey.from_string(key)
    return AccountMeta(pubkey, is_signer=signer, is_writable=writable)


@dataclass(frozen=True)
class PoolSnapshot:
    """One pool as read at one moment: enough to quote it and to build its swap."""

    pool: ChainPool
    program: str
    quote_fn: Callable[[str, int], VenueSwap]  # (mint_in, amount_in) -> swap
    instruction_fn: Callable[[Pubkey, str, int, int], Instruction]  # (owner, mint_in, in, floor)
    # When the program starts taking swaps (unix s), if not yet at the clock read with the
    # pool: CP-Swap refuses a swap while the Clock's unix_timestamp < the pool's open_time.
    opens_at_s: int | None = None

    @property
    def open(self) -> bool:
        return self.opens_at_s is None

    def swap(self, mint_in: str, amount_in: int) -> VenueSwap:
        if amount_in <= 0:
            return VenueSwap(0, 0, Decimal(0))
        return self.quote_fn(mint_in, amount_in)


class OnChainMarket:
    def __init__(
        self,
        cluster: Cluster,
        registry: ChainRegistry,
        *,
        split_grid: int = 32,
        split_min_gain_ppm: int = 10,
        quote_ttl_ms: int = 10_000,
        clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        reuse_ms: int = 2_000,
    ) -> None:
        self.cluster = cluster
        self.registry = registry
        self.split_grid = split_grid
        self.split_min_gain_ppm = split_min_gain_ppm
        self.quote_ttl_ms = quote_ttl_ms
        self.clock = clock
        # The pools each route read, by pair: building the swap right after reuses them
        # (the program checks the floor against the state it finds, whatever we read).
        self._recent: dict[tuple[str, str], tuple[int, dict[str, PoolSnapshot]]] = {}
        self.reuse_ms = reuse_ms

    # -- pairs -------------------------------------------------------------------------

    def supports(self, token_in: Token, token_out: Token) -> bool:
        return token_in != token_out and bool(self.registry.pools_for(token_in.mint, token_out.mint))

    def pairs(self) -> list[tuple[Token, Token]]:
        return self.registry.pairs()

    # -- reading the pools -------------------------------------------------------------

    def snapshot(self, token_in: Token, token_out: Token) -> dict[str, PoolSnapshot]:
        """Every registry pool of the pair, read now; keyed by dex (one pool per dex)."""
        pools = {p.dex: p for p in self.registry.pools_for(token_in.mint, token_out.mint)}
        if token_in == token_out or not pools:
            raise UnsupportedPair(f"no pool for {token_in.symbol}/{token_out.symbol}")
        first = self.cluster.accounts([p.address for p in pools.values()] + [CLOCK_SYSVAR])
        clock = first[-1]
        now_s = decode_clock_unix_timestamp(clock.data) if clock is not None else int(time.time())
        plans: dict[str, tuple[ChainPool, Account, list[str]]] = {}
        for pool, account in zip(pools.values(), first[:-1], strict=True):
            if account is None or account.owner != self.registry.programs[pool.dex]:
                continue  # a pool the cluster does not hold (or not that program's): skip it
            plans[pool.dex] = (pool, account, self._dependents(pool, account))
        wanted = [a for _, _, deps in plans.values() for a in deps]
        second = dict(zip(wanted, self.cluster.accounts(wanted), strict=True)) if wanted else {}
        result = {}
        for dex, (pool, account, _) in plans.items():
            snap = (
                self._cpmm(pool, account, second, now_s)
                if dex == RAYDIUM
                else self._dlmm(pool, account, second, now_s, token_in, token_out)
            )
            if snap is not None:
                result[dex] = snap
        return result

    def _dependents(self, pool: ChainPool, account: Account) -> list[str]:
        if pool.dex == RAYDIUM:
            state = CpmmState.decode(account.data)
            return [state.amm_config, state.vault_0, state.vault_1]
        pair = LbPairState.decode(account.data)
        program = self.registry.programs[METEORA]
        arrays = range(pair.active_array - _ARRAYS_EACH_SIDE, pair.active_array + _ARRAYS_EACH_SIDE + 1)
        return [bin_array_address(pool.address, i, program) for i in arrays] + [
            bitmap_extension_address(pool.address, program)
        ]

    def _cpmm(
        self, pool: ChainPool, account: Account, deps: dict[str, Account | None], now_s: int
    ) -> PoolSnapshot | None:
        state = CpmmState.decode(account.data)
        config, vault_0, vault_1 = deps.get(state.amm_config), deps.get(state.vault_0), deps.get(state.vault_1)
        if config is None or vault_0 is None or vault_1 is None or not state.swap_enabled:
            return None
        fee_ppm = decode_amm_config_fee(config.data)
        reserve_0, reserve_1 = state.reserves(decode_token_amount(vault_0.data), decode_token_amount(vault_1.data))
        curve = CpmmPool(reserve_0, reserve_1, fee_ppm)
        program = self.registry.programs[RAYDIUM]

        def quote_fn(mint_in: str, amount_in: int) -> VenueSwap:
            result = curve.swap(amount_in, x_to_y=mint_in == state.mint_0)
            return VenueSwap(result.amount_out, result.fee, result.spot_price)

        def instruction_fn(owner: Pubkey, mint_in: str, amount_in: int, floor: int) -> Instruction:
            zero_in = mint_in == state.mint_0
            mint_out = state.mint_1 if zero_in else state.mint_0
            prog_in, prog_out = (
                (state.token_0_program, state.token_1_program)
                if zero_in
                else (state.token_1_program, state.token_0_program)
            )
            vault_in, vault_out = (state.vault_0, state.vault_1) if zero_in else (state.vault_1, state.vault_0)
            accounts = [
                _meta(owner, writable=True, signer=True),
                _meta(pda(program, b"vault_and_lp_mint_auth_seed")),
                _meta(state.amm_config),
                _meta(pool.address, writable=True),
                _meta(_ata(owner, mint_in, prog_in), writable=True),
                _meta(_ata(owner, mint_out, prog_out), writable=True),
                _meta(vault_in, writable=True),
                _meta(vault_out, writable=True),
                _meta(prog_in),
                _meta(prog_out),
                _meta(mint_in),
                _meta(mint_out),
                _meta(state.observation, writable=True),
            ]
            data = _CPMM_SWAP_BASE_INPUT + struct.pack("<QQ", amount_in, floor)
            return Instruction(Pubkey.from_string(program), data, accounts)

        opens_at = state.open_time if now_s < state.open_time else None
        return PoolSnapshot(pool, program, quote_fn, instruction_fn, opens_at)

    def _dlmm(
        self,
        pool: ChainPool,
        account: Account,
        deps: dict[str, Account | None],
        now_s: int,
        token_in: Token,
        token_out: Token,
    ) -> PoolSnapshot | None:
        pair = LbPairState.decode(account.data)
        program = self.registry.programs[METEORA]
        first_index = pair.active_array - _ARRAYS_EACH_SIDE
        arrays: dict[int, tuple[str, bytes]] = {}
        for offset in range(2 * _ARRAYS_EACH_SIDE + 1):
            address = bin_array_address(pool.address, first_index + offset, program)
            found = deps.get(address)
            if found is not None and found.owner == program:
                arrays[first_index + offset] = (address, found.data)
        if pair.active_array not in arrays:
            return None
        bitmap = deps.get(bitmap_extension_address(pool.address, program))
        bitmap_key = bitmap_extension_address(pool.address, program) if bitmap is not None else program
        decimals = {t.mint: t.decimals for t in (token_in, token_out)}
        state = PoolState.from_accounts(
            account.data,
            [data for _, data in arrays.values()],
            decimals.get(pair.token_x_mint, 0),
            decimals.get(pair.token_y_mint, 0),
            lb_pair_key=bytes(Pubkey.from_string(pool.address)),
        )

        def quote_fn(mint_in: str, amount_in: int) -> VenueSwap:
            swap_for_y = mint_in == pair.token_x_mint
            result = quote(state, amount_in, swap_for_y, timestamp=now_s, strict=False)
            active = state.bins.get(state.active_id)
            spot = Decimal(0)
            if active is not None and active.price_x64 > 0:
                spot = Decimal(active.price_x64) / _Q64 if swap_for_y else _Q64 / Decimal(active.price_x64)
            fee = amount_in * total_fee(state.bin_step, state.static_params, state.variable_params) // _FEE_PRECISION
            complete = result.complete and result.remaining_in == 0
            return VenueSwap(int(result.amount_out) if complete else 0, int(fee), spot)

        def instruction_fn(owner: Pubkey, mint_in: str, amount_in: int, floor: int) -> Instruction:
            swap_for_y = mint_in == pair.token_x_mint
            step = -1 if swap_for_y else 1
            crossed = [pair.active_array + step * i for i in range(_ARRAYS_PER_SWAP)]
            remaining = [arrays[i][0] for i in crossed if i in arrays]
            prog_in, prog_out = (
                (pair.token_x_program, pair.token_y_program)
                if swap_for_y
                else (pair.token_y_program, pair.token_x_program)
            )
            mint_out = pair.token_y_mint if swap_for_y else pair.token_x_mint
            accounts = [
                _meta(pool.address, writable=True),
                _meta(bitmap_key),
                _meta(pair.reserve_x, writable=True),
                _meta(pair.reserve_y, writable=True),
                _meta(_ata(owner, mint_in, prog_in), writable=True),
                _meta(_ata(owner, mint_out, prog_out), writable=True),
                _meta(pair.token_x_mint),
                _meta(pair.token_y_mint),
                _meta(pair.oracle, writable=True),
                _meta(program),  # no host fee account
                _meta(owner, signer=True),
                _meta(pair.token_x_program),
                _meta(pair.token_y_program),
                _meta(pda(program, b"__event_authority")),
                _meta(program),
                *(_meta(address, writable=True) for address in remaining),
            ]
            data = _DLMM_SWAP + struct.pack("<QQ", amount_in, floor)
            return Instruction(Pubkey.from_string(program), data, accounts)

        return PoolSnapshot(pool, program, quote_fn, instruction_fn)

    # -- routing -----------------------------------------------------------------------

    def route(self, token_in: Token, token_out: Token, amount_in: int) -> RoutePlan:
        if amount_in <= 0:
            raise ValueError("amount_in must be positive")
        every = self.snapshot(token_in, token_out)
        snaps = {dex: snap for dex, snap in every.items() if snap.open}
        self._recent[(token_in.mint, token_out.mint)] = (self.clock(), snaps)
        if not snaps and every:
            opens_at = min(s.opens_at_s for s in every.values() if s.opens_at_s is not None)
            raise PoolNotOpen(
                f"the {'/'.join(every)} pool of {token_in.symbol}/{token_out.symbol} takes swaps from "
                f"{_iso_s(opens_at)} (its open_time) and the pair has no other pool",
                opens_at,
            )
        if not snaps:
            raise VenueUnavailable(f"no pool of {token_in.symbol}/{token_out.symbol} could be read on chain")
        quotes = []
        for dex in (RAYDIUM, METEORA):
            if dex not in snaps:
                continue
            swap = snaps[dex].swap(token_in.mint, amount_in)
            if swap.amount_out <= 0:
                quotes.append(VenueQuote.failed(dex, amount_in, "insufficient_liquidity"))
                continue
            quotes.append(
                VenueQuote(
                    dex=dex,
                    amount_in=amount_in,
                    amount_out=swap.amount_out,
                    fee=swap.fee,
                    price=whole_price(token_in, token_out, amount_in, swap.amount_out),
                    price_impact=_impact(amount_in, swap).quantize(_IMPACT_PLACES),
                )
            )
        singles = [q for q in quotes if q.ok and q.amount_out > 0]
        best = max(singles, key=lambda q: q.amount_out, default=None)
        legs: list[tuple[str, int]] = [(best.dex, amount_in)] if best else []
        best_out = best.amount_out if best else 0
        if len(snaps) == 2:
            a, b = snaps[RAYDIUM], snaps[METEORA]
            split = best_split(
                lambda x: a.swap(token_in.mint, x).amount_out,
                lambda y: b.swap(token_in.mint, y).amount_out,
                amount_in,
                self.split_grid,
            )
            threshold = best_out + best_out * self.split_min_gain_ppm // 1_000_000
            if 0 < split.amount_a < amount_in and split.total_out > max(threshold, best_out):
                legs = [(RAYDIUM, split.amount_a), (METEORA, amount_in - split.amount_a)]
        if not legs:
            raise InsufficientLiquidity(f"no output for {amount_in} {token_in.symbol} base units")
        swaps = [(dex, amount, snaps[dex].swap(token_in.mint, amount)) for dex, amount in legs]
        percents = leg_percents([amount for _, amount, _ in swaps])
        route_legs = tuple(
            RouteLeg(dex, pct, amount, s.amount_out) for (dex, amount, s), pct in zip(swaps, percents, strict=True)
        )
        impact = sum((_impact(amount, s) * amount for _, amount, s in swaps), Decimal(0)) / amount_in
        quoted_at = self.clock()
        return RoutePlan(
            token_in=token_in,
            token_out=token_out,
            amount_in=amount_in,
            quotes=tuple(quotes),
            dex=route_legs[0].dex if len(route_legs) == 1 else SPLIT,
            legs=route_legs,
            amount_out=sum(leg.amount_out for leg in route_legs),
            quoted_at_ms=quoted_at,
            expires_at_ms=quoted_at + self.quote_ttl_ms,
            price_impact=impact.quantize(_IMPACT_PLACES),
        )

    def swap_instructions(self, plan: RoutePlan, floors: list[int], owner: Pubkey) -> list[Instruction]:
        """One swap instruction per leg, from the pools the route read (re-read when older)."""
        read_at, snaps = self._recent.get((plan.token_in.mint, plan.token_out.mint), (0, {}))
        if self.clock() - read_at > self.reuse_ms or any(leg.dex not in snaps for leg in plan.legs):
            snaps = {d: s for d, s in self.snapshot(plan.token_in, plan.token_out).items() if s.open}
        instructions = []
        for leg, floor in zip(plan.legs, floors, strict=True):
            if leg.dex not in snaps:
                raise VenueUnavailable(f"the {leg.dex} pool of {plan.token_in.symbol}/{plan.token_out.symbol} is gone")
            instructions.append(snaps[leg.dex].instruction_fn(owner, plan.token_in.mint, leg.amount_in, floor))
        return instructions

    def pool_addresses(self, plan: RoutePlan) -> list[str]:
        """The pools the plan's legs write (what prioritization fees are asked for)."""
        dexes = {leg.dex for leg in plan.legs}
        return [p.address for p in self.registry.pools_for(plan.token_in.mint, plan.token_out.mint) if p.dex in dexes]

    def program_of(self, dex: str) -> str:
        return self.registry.programs[dex]


def _impact(amount_in: int, swap: VenueSwap) -> Decimal:
    net_in = amount_in - swap.fee
    if net_in <= 0 or swap.spot_price <= 0 or swap.amount_out <= 0:
        return Decimal(0)
    return max(1 - Decimal(swap.amount_out) / (Decimal(net_in) * swap.spot_price), Decimal(0))


def _iso_s(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
