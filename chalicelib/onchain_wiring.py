"""Wiring for a real cluster: SOLANA_RPC_URL, the pool registry, the wallet, the lander."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.config import Settings
from chalicelib.discovery import discover_registry
from chalicelib.landing import ChainLander, LandingConfig
from chalicelib.market import DEFAULT_POOLS, DEFAULT_TOKENS, TokenRegistry
from chalicelib.market.chainpools import load_registry
from chalicelib.market.onchain import OnChainMarket
from chalicelib.rpc import RpcCluster
from chalicelib.wallet import load_wallet

__all__ = ["ChainParts", "build_chain_parts"]


@dataclass(frozen=True)
class ChainParts:
    market: OnChainMarket
    chain: ChainLander
    tokens: TokenRegistry
    wallet: str


def build_chain_parts(settings: Settings) -> ChainParts:
    if not settings.solana_rpc_url:
        raise ValueError("no SOLANA_RPC_URL")
    cluster = RpcCluster(settings.solana_rpc_url)
    if settings.solana_pools_file:
        registry = load_registry(settings.solana_pools_file)
    else:  # no registry file: the known tokens' pools are listed from chain (getProgramAccounts)
        registry = discover_registry(cluster, DEFAULT_TOKENS, [(p.base, p.quote) for p in DEFAULT_POOLS])
    market = OnChainMarket(cluster, registry)
    config = LandingConfig(
        priority_fee_microlamports=settings.priority_fee_microlamports,
        priority_fee_cap_lamports=settings.priority_fee_cap_lamports,
    )
    if settings.wallet_keypair_path or not settings.wallet_secret_id:
        # A local key file: read it now (a missing one fails the start, plainly).
        wallet = load_wallet(settings.wallet_keypair_path, settings.wallet_secret_id)
        lander = ChainLander(cluster, market, wallet, config)
        return ChainParts(market, lander, registry.tokens, lander.wallet_address)
    # Deployed: the secret is fetched by the first build (the order worker), never by
    # functions that only read; WALLET_PUBLIC_KEY names the signer for GET /health.
    secret_id = settings.wallet_secret_id
    lander = ChainLander(
        cluster, market, lambda: load_wallet(None, secret_id), config, owner=settings.wallet_public_key
    )
    return ChainParts(market, lander, registry.tokens, settings.wallet_public_key or "")
