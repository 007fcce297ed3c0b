"""New pools: the pool registry re-read when the cluster lists a pool (sniper orders).

On the local cluster the registry file (SOLANA_POOLS_FILE) is rewritten by a launch; a
re-read costs one stat() unless the file changed. On mainnet the same hook would list
new pool accounts of either program (getProgramAccounts filtered by mint); see
docs/decisions/012.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from chalicelib.logs import logger
from chalicelib.market.chainpools import TOKEN_PROGRAM, ChainRegistry, load_registry
from chalicelib.market.transaction import ASSOCIATED_TOKEN_PROGRAM_ID

__all__ = ["RegistryRefresher", "create_token_account_idempotent", "open_accounts_for_new_mints"]


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

    def __call__(self) -> bool:
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
