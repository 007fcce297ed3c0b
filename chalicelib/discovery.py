"""New pools: the pool registry re-read when the cluster lists a pool (sniper orders).

On the local cluster the registry file (SOLANA_POOLS_FILE) is rewritten by a launch; a
re-read costs one stat() unless the file changed. On mainnet the same hook would list
new pool accounts of either program (getProgramAccounts filtered by mint); see
docs/decisions/012.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from chalicelib.logs import logger
from chalicelib.market.chainpools import ChainRegistry, load_registry

__all__ = ["RegistryRefresher"]


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
