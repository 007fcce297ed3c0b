"""How quickly the local Solana cluster starts and answers.

Starts `python -m localnet` (all genesis pools) `--runs` times on a free port and prints,
per run, the genesis time the cluster reports and the wall time until getHealth answers;
then, on one cluster, the HTTP round trip of getLatestBlockhash, simulateTransaction and
sendTransaction of a CPMM swap, the time from send to `confirmed`, and the depth of the
SOL/USDC pools on both programs (USDC per SOL by order size, from simulations).

    .venv/bin/python scripts/localnet_bench.py [--runs 5] [--calls 200]

Figures depend on the machine's load (it is shared): read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from localnet import ClusterProcess, rpc_call
from tests.localnet.swaps import cpmm_swap, dlmm_swap, find_pool, mint_of, signed


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return f"p50 {_ms(p(0.5))} ms  p90 {_ms(p(0.9))} ms  max {_ms(ordered[-1])} ms  (n={len(ordered)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()

    print(f"command: .venv/bin/python scripts/localnet_bench.py --runs {args.runs} --calls {args.calls}")
    starts, genesis = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            began = time.perf_counter()
            cluster = ClusterProcess(work_dir=tmp).start()
            starts.append(time.perf_counter() - began)
            genesis.append(float(cluster.ready.get("genesisMs", 0)) / 1000)
            pools = cluster.ready.get("pools")
            cluster.stop()
    print(f"genesis ({pools} pools, in the cluster): {_percentiles(genesis)}")
    print(f"start to getHealth ok (process + imports + genesis): {_percentiles(starts)}")

    with tempfile.TemporaryDirectory() as tmp, ClusterProcess(work_dir=tmp) as cluster:
        url = cluster.rpc_url
        registry = cluster.registry()
        wallet = Keypair.from_bytes(bytes(json.loads(cluster.wallet_path.read_text())))
        sol, usdc = mint_of(registry, "SOL"), mint_of(registry, "USDC")
        pool = find_pool(registry, "raydium", sol, usdc)
        samples = []
        for _ in range(args.calls):
            t = time.perf_counter()
            rpc_call(url, "getLatestBlockhash", [{"commitment": "confirmed"}])
            samples.append(time.perf_counter() - t)
        print(f"getLatestBlockhash over HTTP: {_percentiles(samples)}")
        blockhash = rpc_call(url, "getLatestBlockhash", [{"commitment": "confirmed"}])["result"]["value"]["blockhash"]
        sims, sends, confirms = [], [], []
        for i in range(args.calls):
            tx = signed(wallet, [cpmm_swap(registry, pool, wallet.pubkey(), sol, 10**6 + i, 1)], blockhash)
            raw = base64.b64encode(bytes(tx)).decode()
            t = time.perf_counter()
            rpc_call(url, "simulateTransaction", [raw, {"encoding": "base64", "replaceRecentBlockhash": True}])
            sims.append(time.perf_counter() - t)
            if i < 20:
                t = time.perf_counter()
                signature = rpc_call(url, "sendTransaction", [raw, {"encoding": "base64"}])["result"]
                sends.append(time.perf_counter() - t)
                while True:
                    value = rpc_call(url, "getSignatureStatuses", [[signature]])["result"]["value"][0]
                    if value and value["confirmationStatus"] in ("confirmed", "finalized"):
                        break
                    time.sleep(0.01)
                confirms.append(time.perf_counter() - t)
        print(f"simulateTransaction (CPMM swap) over HTTP: {_percentiles(sims)}")
        print(f"sendTransaction with preflight over HTTP: {_percentiles(sends)}")
        print(f"send to confirmed (400 ms slots, landing 1 slot, confirmed 1 slot later): {_percentiles(confirms)}")
        _depth_table(url, registry, wallet)
        _throughput(url, registry)
    return 0


def _throughput(url: str, registry: dict, concurrency: int = 16, seconds: float = 3.0) -> None:
    """Calls per second the one-loop server answers, `concurrency` requests in flight (client on the same cores)."""
    import asyncio

    import aiohttp

    pool = next(p for p in registry["pools"] if p["dex"] == "meteora")
    keys = [pool["address"], *pool["reserves"], *list(pool["binArrays"].values())[:3]]
    requests = {
        "getLatestBlockhash": ["getLatestBlockhash", [{"commitment": "confirmed"}]],
        "getSignatureStatuses (1)": ["getSignatureStatuses", [["1" * 88]]],
        "getMultipleAccounts (DLMM pair, reserves, 3 bin arrays)": [
            "getMultipleAccounts",
            [keys, {"encoding": "base64"}],
        ],
    }

    async def load(body: str) -> float:
        done = 0
        async with aiohttp.ClientSession() as session:
            end = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < end:
                    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                        await resp.read()
                    done += 1

            await asyncio.gather(*[worker() for _ in range(concurrency)])
        return done / seconds

    for name, (method, params) in requests.items():
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        print(f"{name}: {asyncio.run(load(body)):.0f} calls/s ({concurrency} in flight)")


def _depth_table(url: str, registry: dict, wallet: Keypair) -> None:
    """SOL -> USDC on each venue's pool, simulated on the programs: USDC per SOL by size."""
    from solders.token.associated import get_associated_token_address
    from solders.token.state import TokenAccount

    sol, usdc = mint_of(registry, "SOL"), mint_of(registry, "USDC")
    out_account = str(get_associated_token_address(wallet.pubkey(), Pubkey.from_string(usdc)))
    now = int(rpc_call(url, "getTokenAccountBalance", [out_account])["result"]["value"]["amount"])
    blockhash = rpc_call(url, "getLatestBlockhash", [{"commitment": "confirmed"}])["result"]["value"]["blockhash"]
    print("SOL -> USDC on the genesis pools (simulateTransaction), USDC received per SOL:")
    print(f"{'SOL in':>8} {'raydium':>10} {'meteora':>10}")
    for size in ("1", "10", "100", "1000", "2500", "5000"):
        row = []
        for dex, build in (("raydium", cpmm_swap), ("meteora", dlmm_swap)):
            pool = find_pool(registry, dex, sol, usdc)
            lamports = int(size) * 10**9
            tx = signed(wallet, [build(registry, pool, wallet.pubkey(), sol, lamports, 1)], blockhash, cu=1_400_000)
            config = {"encoding": "base64", "replaceRecentBlockhash": True, "accounts": {"addresses": [out_account]}}
            value = rpc_call(url, "simulateTransaction", [base64.b64encode(bytes(tx)).decode(), config])["result"][
                "value"
            ]
            if value["err"] is not None:
                row.append("—")
                continue
            after = TokenAccount.from_bytes(base64.b64decode(value["accounts"][0]["data"][0])).amount
            row.append(f"{(after - now) / 10**6 / int(size):.3f}")
        print(f"{size:>8} {row[0]:>10} {row[1]:>10}")


if __name__ == "__main__":
    sys.exit(main())
