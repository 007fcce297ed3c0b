"""Pools found on chain alone (getProgramAccounts with dataSize and memcmp filters), on the local cluster.

What a sniper needs on any cluster: the engine lists a pair's pools without a registry file,
and a pool launched after start is found once it exists, at a cost per pair, not per order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.discovery import ChainDiscovery, discover_registry, find_pools
from chalicelib.market import (
    DEFAULT_POOLS,
    DEFAULT_TOKENS,
    METEORA,
    METEORA_DLMM_PROGRAM_ID,
    RAYDIUM,
    RAYDIUM_CPMM_PROGRAM_ID,
    PoolNotOpen,
    Token,
)
from chalicelib.market.chainpools import ChainRegistry, load_registry
from chalicelib.market.onchain import OnChainMarket
from chalicelib.rpc import RpcCluster
from tests.support import http, local_cluster, solana_programs_available

PROGRAMS = {RAYDIUM: RAYDIUM_CPMM_PROGRAM_ID, METEORA: METEORA_DLMM_PROGRAM_ID}
pytestmark = pytest.mark.skipif(not solana_programs_available(), reason="no Solana program binaries")


class CountingRpc(RpcCluster):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.methods: list[str] = []

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        self.methods.append(method)
        return super().call(method, params)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Any]:
    with local_cluster(tmp_path_factory.mktemp("localnet"), slot_ms=100) as c:
        yield c


def _launch(cluster, **body: Any) -> dict[str, Any]:
    symbol = f"N{time.monotonic_ns() % 10**6}"  # the registry file wants symbols unique
    status, answer = http("POST", f"{cluster.rpc_url}/_localnet/launch", {"symbol": symbol, "decimals": 6, **body})
    assert status == 201, answer
    return answer


def test_every_genesis_pool_is_found_from_chain_with_three_calls_a_pair(cluster):
    rpc = CountingRpc(cluster.rpc_url)
    written = load_registry(cluster.registry_path)
    pairs = [(p.base, p.quote) for p in DEFAULT_POOLS]
    found = discover_registry(rpc, DEFAULT_TOKENS, pairs)
    # THEN the same pools as the registry the cluster wrote, each with its mints in the program's order
    assert {(p.dex, p.address, p.mints) for p in found.pools} == {(p.dex, p.address, p.mints) for p in written.pools}
    assert rpc.methods == ["getProgramAccounts"] * 3 * len(pairs)
    # AND a market on them quotes like one on the registry file
    sol, usdc = DEFAULT_TOKENS.resolve("SOL"), DEFAULT_TOKENS.resolve("USDC")
    assert sol is not None and usdc is not None
    from_chain = OnChainMarket(rpc, found).route(sol, usdc, 10**9)
    from_file = OnChainMarket(rpc, written).route(sol, usdc, 10**9)
    assert from_chain.amount_out == from_file.amount_out > 0


def test_a_launched_pool_is_found_once_it_exists_and_looked_up_at_most_once_per_interval(cluster):
    rpc = CountingRpc(cluster.rpc_url)
    registry = [discover_registry(rpc, DEFAULT_TOKENS, [("SOL", "USDC")])]
    now = [0]
    discovery = ChainDiscovery(rpc, lambda: registry[-1], registry.append, interval_ms=2_000, clock_ms=lambda: now[0])
    launch = _launch(cluster, afterMs=1500, dex="meteora", decimals=7)
    pair = [("SOL", launch["mint"])]
    rpc.methods.clear()
    # GIVEN no pool yet: one look (three calls), then none until the interval has passed
    assert discovery(pair) is False and rpc.methods == ["getProgramAccounts"] * 3
    now[0] += 1_000
    assert discovery(pair * 50) is False and len(rpc.methods) == 3  # the same pair, many orders: no call
    # WHEN the pool is created
    deadline = time.monotonic() + 10
    while rpc.accounts([launch["pool"]])[0] is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    now[0] += 2_000
    # THEN the next look finds it, with the new mint's decimals read from its account
    assert discovery(pair) is True
    latest: ChainRegistry = registry[-1]
    token = latest.tokens.resolve(launch["mint"])
    assert token is not None and token.decimals == 7
    assert [p.address for p in latest.pools_for(token.mint, "So11111111111111111111111111111111111111112")] == [
        launch["pool"]
    ]
    # AND a listed pair costs nothing more
    calls = len(rpc.methods)
    now[0] += 10_000
    assert discovery(pair) is False and len(rpc.methods) == calls


def test_a_cpmm_pool_before_its_open_time_is_not_routable(cluster):
    rpc = RpcCluster(cluster.rpc_url)
    launch = _launch(cluster, afterMs=0, dex="raydium", openInS=30)
    deadline = time.monotonic() + 10
    while rpc.accounts([launch["pool"]])[0] is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    found = find_pools(rpc, "So11111111111111111111111111111111111111112", launch["mint"])
    assert [p.address for p in found] == [launch["pool"]]
    sol, new = DEFAULT_TOKENS.resolve("SOL"), Token(launch["mint"], launch["mint"], 6)
    assert sol is not None
    market = OnChainMarket(rpc, ChainRegistry("local", dict(PROGRAMS), DEFAULT_TOKENS, tuple(found)))
    # THEN the snapshot says when it opens, and a route is a clear refusal, not a swap the program refuses
    [snap] = market.snapshot(sol, new).values()
    assert snap.opens_at_s is not None and snap.opens_at_s >= time.time() + 25
    with pytest.raises(PoolNotOpen) as refused:
        market.route(sol, new, 10**8)
    assert refused.value.opens_at_s == snap.opens_at_s and refused.value.code == "pool_not_open"
