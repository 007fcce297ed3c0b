"""Wiring for limit and sniper orders: the watcher, cancel, and new pools picked up."""

from __future__ import annotations

from typing import Any

from chalicelib.cancel import OrderCanceller
from chalicelib.discovery import ChainDiscovery, RegistryRefresher, open_accounts_for_new_mints
from chalicelib.market import DEFAULT_TOKENS
from chalicelib.market.chainpools import ChainRegistry
from chalicelib.publisher import StatusPublisher
from chalicelib.watcher import OrderWatcher

__all__ = ["OrderCanceller", "OrderWatcher", "attach_order_types"]


def attach_order_types(eng: Any, router: Any, publisher: StatusPublisher) -> None:
    """Give the engine its watcher and canceller; on a cluster, a registry that follows launches."""
    executor = eng.executor
    discover: RegistryRefresher | ChainDiscovery | None = None
    pools_file = eng.settings.solana_pools_file
    if eng.settings.solana_rpc_url and hasattr(router, "registry"):

        def apply(registry: ChainRegistry) -> None:
            router.registry = registry
            executor.registry = registry.tokens
            eng.tokens = registry.tokens

        if pools_file:  # a registry file the local cluster rewrites on a launch
            discover = RegistryRefresher(pools_file, apply)
        else:  # no registry: new pools are found on chain (getProgramAccounts), on any cluster
            discover = ChainDiscovery(router.cluster, lambda: router.registry, apply)
        # The wallet's standing tokens have their accounts; any other mint (a launch, even one
        # listed in the registry before this function started) gets CreateIdempotent first.
        open_accounts_for_new_mints(router, {t.mint for t in DEFAULT_TOKENS.all()})
        executor.discover = discover
    eng.watcher = OrderWatcher(
        eng.store,
        eng.orders_queue,
        publisher,
        lambda: executor.market,
        lambda: executor.registry,
        discover=discover,
    )
    eng.canceller = OrderCanceller(eng.store, publisher)
