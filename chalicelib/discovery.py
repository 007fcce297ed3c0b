"""New pools: found on chain (getProgramAccounts), or in the registry file a local cluster rewrites.

Without a registry file (SOLANA_POOLS_FILE unset) the engine lists its pools from chain:
per pair, one `getProgramAccounts` on CP-Swap (its PoolState size and both mints, sorted,
at their offsets) and two on DLMM (LbPair size, token x and y either way), keys only
(a zero `dataSlice`). A sniper's pair that no pool lists yet is looked up the same way,
at most once per `interval_ms` per pair: the cost grows with the pairs watched, not with
the orders on them (docs/decisions/017). With a registry file, a launch on the local
cluster rewrites it; a re-read costs one stat() unless the file changed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from chalicelib.cluster import Account
from chalicelib.logs import logger
from chalicelib.market import Token, TokenRegistry
from chalicelib.market.chainpools import TOKEN_2022_PROGRAM, TOKEN_PROGRAM, ChainPool, ChainRegistry, load_registry
from chalicelib.market.transaction import ASSOCIATED_TOKEN_PROGRAM_ID
from chalicelib.market.venues import METEORA, METEORA_DLMM_PROGRAM_ID, RAYDIUM, RAYDIUM_CPMM_PROGRAM_ID

__all__ = [
    "ChainDiscovery",
    "RegistryRefresher",
    "create_token_account_idempotent",
    "discover_registry",
    "find_pools",
    "open_accounts_for_new_mints",
]

# Account layouts (raydium-io/raydium-cp-swap `PoolState::LEN`; DLMM IDL 0.12 `LbPair`).
CPMM_POOL_SIZE = 637
CPMM_MINT_OFFSETS = (168, 200)  # token_0_mint, token_1_mint (token_0 < token_1 by bytes)
LB_PAIR_SIZE = 904
LB_PAIR_MINT_OFFSETS = (88, 120)  # token_x_mint, token_y_mint (either order)
_MINT_DECIMALS_OFFSET = 44  # SPL Mint: mint_authority (36), supply (8), then decimals
_PROGRAMS = {RAYDIUM: RAYDIUM_CPMM_PROGRAM_ID, METEORA: METEORA_DLMM_PROGRAM_ID}


class PoolLister(Protocol):
    def program_account_keys(self, program: str, filters: list[dict[str, Any]]) -> list[str]: ...

    def accounts(self, addresses: list[str]) -> list[Account | None]: ...


def _memcmp(offset: int, mint: str) -> dict[str, Any]:
    return {"memcmp": {"offset": offset, "bytes": mint}}  # base58, Solana's default encoding


def find_pools(
    cluster: PoolLister, mint_a: str, mint_b: str, programs: dict[str, str] | None = None
) -> list[ChainPool]:
    """The pair's pools on either program: three getProgramAccounts calls, keys only.

    One pool per program is kept (the lowest address when a pair has several).
    """
    programs = {**_PROGRAMS, **(programs or {})}
    low, high = sorted((mint_a, mint_b), key=lambda m: bytes(Pubkey.from_string(m)))
    found: list[ChainPool] = []
    cpmm = [{"dataSize": CPMM_POOL_SIZE}, _memcmp(CPMM_MINT_OFFSETS[0], low), _memcmp(CPMM_MINT_OFFSETS[1], high)]
    keys = sorted(cluster.program_account_keys(programs[RAYDIUM], cpmm))
    if keys:
        found.append(ChainPool(RAYDIUM, keys[0], (low, high)))
    dlmm: list[ChainPool] = []
    for x, y in ((mint_a, mint_b), (mint_b, mint_a)):
        filters = [{"dataSize": LB_PAIR_SIZE}, _memcmp(LB_PAIR_MINT_OFFSETS[0], x), _memcmp(LB_PAIR_MINT_OFFSETS[1], y)]
        dlmm += [ChainPool(METEORA, key, (x, y)) for key in cluster.program_account_keys(programs[METEORA], filters)]
    if dlmm:
        found.append(min(dlmm, key=lambda p: p.address))
    return found


def discover_registry(
    cluster: PoolLister, tokens: TokenRegistry, pairs: Iterable[tuple[str, str]], cluster_name: str = "discovered"
) -> ChainRegistry:
    """A registry of `tokens` with the pools chain has for `pairs` (symbols): no registry file."""
    pools: list[ChainPool] = []
    pairs = list(pairs)
    for a, b in pairs:
        token_a, token_b = tokens.resolve(a), tokens.resolve(b)
        if token_a is None or token_b is None:
            raise ValueError(f"pair {a}/{b}: unknown token")
        pools += find_pools(cluster, token_a.mint, token_b.mint)
    logger.info("pools listed from chain", extra={"pools": len(pools), "calls": 3 * len(pairs)})
    return ChainRegistry(cluster_name, dict(_PROGRAMS), tokens, tuple(pools))


def _mint_key(value: str, tokens: TokenRegistry) -> str | None:
    known = tokens.resolve(value)
    if known is not None:
        return known.mint
    try:
        Pubkey.from_string(value)
    except ValueError:
        return None
    return value


class ChainDiscovery:
    """Call it with the pairs a sniper waits for; new pools on chain reach `apply` as a new registry.

    A pair already listed costs nothing; an unlisted one three getProgramAccounts calls, at
    most once per `interval_ms`; a new mint one getMultipleAccounts for its decimals.
    """

    def __init__(
        self,
        cluster: PoolLister,
        registry: Callable[[], ChainRegistry],
        apply: Callable[[ChainRegistry], None],
        *,
        interval_ms: int = 2_000,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.cluster = cluster
        self.registry = registry
        self.apply = apply
        self.interval_ms = interval_ms
        self.clock_ms = clock_ms
        self.calls = 0  # RPC calls made, for the watcher's report and the benchmark
        self._looked: dict[tuple[str, str], int] = {}

    def __call__(self, pairs: Iterable[tuple[str, str]] = ()) -> bool:
        registry = self.registry()
        changed = False
        for a, b in pairs:
            mint_a, mint_b = _mint_key(a, registry.tokens), _mint_key(b, registry.tokens)
            if mint_a is None or mint_b is None or mint_a == mint_b or registry.pools_for(mint_a, mint_b):
                continue
            key = (min(mint_a, mint_b), max(mint_a, mint_b))
            now = self.clock_ms()
            if now - self._looked.get(key, now - self.interval_ms) < self.interval_ms:
                continue  # looked a moment ago
            self._looked[key] = now
            self.calls += 3
            pools = find_pools(self.cluster, mint_a, mint_b, registry.programs)
            if not pools:
                continue
            new_tokens = self._tokens([m for m in (mint_a, mint_b) if registry.tokens.resolve(m) is None])
            if new_tokens is None:
                continue
            registry = ChainRegistry(
                registry.cluster,
                registry.programs,
                TokenRegistry([*registry.tokens.all(), *new_tokens]),
                (*registry.pools, *pools),
            )
            self.apply(registry)
            changed = True
            logger.info("pools found on chain", extra={"pools": [p.address for p in pools], "mints": list(key)})
        return changed

    def _tokens(self, mints: list[str]) -> list[Token] | None:
        """New mints as tokens (the mint address stands for the symbol); None if one cannot be used."""
        if not mints:
            return []
        self.calls += 1
        accounts = self.cluster.accounts(mints)
        tokens = []
        for mint, account in zip(mints, accounts, strict=True):
            if account is None or account.owner not in (TOKEN_PROGRAM, TOKEN_2022_PROGRAM) or len(account.data) < 82:
                logger.warning("new pool's mint not readable", extra={"mint": mint})
                return None
            tokens.append(Token(mint, mint, account.data[_MINT_DECIMALS_OFFSET]))
        return tokens


class RegistryRefresher:
    """Call it to pick up a rewritten registry file; `apply` gets the new registry."""

    def __init__(self, path: str, apply: Callable[[ChainRegistry], None]) -> None:
        self.path = path
        self.apply = apply
        self._seen: int | None = self._mtime()

    def _mtime(self) -> int | None:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return None

    def __call__(self, pairs: Iterable[tuple[str, str]] = ()) -> bool:
        mtime = self._mtime()
        if mtime is None or mtime == self._seen:
            return False
        try:
            registry = load_registry(self.path)
        except (OSError, ValueError, KeyError) as exc:  # half-written or odd: try again next time
            logger.warning("pool registry not re-read", extra={"error": str(exc)})
            return False
        self._seen = mtime
        self.apply(registry)
        logger.info("pool registry re-read", extra={"pools": len(registry.pools)})
        return True


_SYSTEM_PROGRAM = "11111111111111111111111111111111"
_CREATE_IDEMPOTENT = bytes([1])  # the Associated Token Account program's CreateIdempotent


def create_token_account_idempotent(payer: Pubkey, mint: str, token_program: str = TOKEN_PROGRAM) -> Instruction:
    """The payer's token account for a mint it has never held (a new launch); a no-op if it exists."""
    program = Pubkey.from_string(token_program)
    mint_key = Pubkey.from_string(mint)
    account = Pubkey.find_program_address([bytes(payer), bytes(program), bytes(mint_key)], ASSOCIATED_TOKEN_PROGRAM_ID)[
        0
    ]
    metas = [
        AccountMeta(payer, is_signer=True, is_writable=True),
        AccountMeta(account, is_signer=False, is_writable=True),
        AccountMeta(payer, is_signer=False, is_writable=False),
        AccountMeta(mint_key, is_signer=False, is_writable=False),
        AccountMeta(Pubkey.from_string(_SYSTEM_PROGRAM), is_signer=False, is_writable=False),
        AccountMeta(program, is_signer=False, is_writable=False),
    ]
    return Instruction(ASSOCIATED_TOKEN_PROGRAM_ID, _CREATE_IDEMPOTENT, metas)


def open_accounts_for_new_mints(router: Any, known_mints: set[str]) -> None:
    """Swaps into a mint listed after start (a launch) first create the wallet's token account for it."""
    build = router.swap_instructions

    def swap_instructions(plan: Any, floors: list[int], owner: Pubkey) -> list[Instruction]:
        swaps = list(build(plan, floors, owner))
        if plan.token_out.mint not in known_mints:
            return [create_token_account_idempotent(owner, plan.token_out.mint), *swaps]
        return swaps

    router.swap_instructions = swap_instructions
