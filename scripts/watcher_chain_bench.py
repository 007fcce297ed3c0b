"""Watcher benchmark on the real path (issue 17): DynamoDB and SQS on LocalStack, pools on the local cluster.

    .venv/bin/python scripts/watcher_chain_bench.py [--orders 10000] [--pairs 20] [--tick 2] [--moves 16]

- **Store and queue**: LocalStack (its DynamoDB and SQS, started here on a free port and
  stopped after), the table from `infra/resources.json` with its sparse `byWatch` index,
  the engine's own adapters (`DynamoOrderStore`, `SqsQueue`). Every botocore call counted.
- **Pools**: a local cluster (`localnet`, the real CP-Swap and DLMM programs); the 8 genesis
  pairs, plus new pools launched through `/_localnet/launch` up to `--pairs`. The watcher
  reads them with `OnChainMarket` over JSON-RPC, every RPC call counted.
- **Orders**: `--orders` waiting limit orders spread evenly over the pairs, written to
  DynamoDB in BatchWriteItem calls, limits 0.2 % to 4 % above each pair's price.
- **Prices move by real swaps**: while the watcher runs as the scheduled function does
  (`run(window, tick)`), one pair at a time is pushed up ~1.5 % by a swap signed with the
  cluster's wallet, sent and polled until it lands (50 ms polls). The latency of an order is
  from the moment the bench sees the swap that made it triggerable landed, to the watcher's
  SQS send of its trigger. No worker executes the triggers (so orders stay waiting and are
  re-sent every 5 s; only the first send counts).

Figures depend on the machine's load: the script prints the load average beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

for key, value in {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ[key] = value
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the figures, not one line per trigger

import boto3  # noqa: E402
from solders.keypair import Keypair  # noqa: E402
from watcher_common import count_aws_calls, pct, waiting_item  # noqa: E402

from chalicelib.discovery import open_accounts_for_new_mints  # noqa: E402
from chalicelib.dynamo import DynamoOrderStore, OrderModel, bind_tables  # noqa: E402
from chalicelib.landing import ChainLander  # noqa: E402
from chalicelib.market import DEFAULT_TOKENS, Token  # noqa: E402
from chalicelib.market.chainpools import ChainRegistry, load_registry  # noqa: E402
from chalicelib.market.onchain import OnChainMarket  # noqa: E402
from chalicelib.memory import MemoryNotifier  # noqa: E402
from chalicelib.messaging import SqsQueue  # noqa: E402
from chalicelib.orders import OrderRequest  # noqa: E402
from chalicelib.publisher import StatusPublisher  # noqa: E402
from chalicelib.rpc import RpcCluster  # noqa: E402
from chalicelib.triggers import floor_out  # noqa: E402
from chalicelib.watcher import OrderWatcher  # noqa: E402

AWS_CALLS = count_aws_calls()


class CountingRpc(RpcCluster):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.calls: dict[str, int] = {}

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        self.calls[method] = self.calls.get(method, 0) + 1
        return super().call(method, params)


class TimedQueue(SqsQueue):
    """The engine's SQS adapter; notes when each order's first trigger was sent."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.first_sent: dict[str, float] = {}
        self.messages = 0

    def send_batch(self, bodies: list[dict[str, Any]], delay_s: int = 0) -> None:
        super().send_batch(bodies, delay_s)
        now = time.monotonic()
        self.messages += len(bodies)
        for body in bodies:
            self.first_sent.setdefault(body["orderId"], now)


def _launch_pools(rpc_url: str, count: int) -> None:
    from tests.support import http

    pools = []
    for i in range(count):
        body = {"symbol": f"BN{i:02d}", "decimals": 6, "afterMs": 0, "dex": ("raydium", "meteora")[i % 2]}
        status, answer = http("POST", f"{rpc_url}/_localnet/launch", body)
        assert status == 201, answer
        pools.append(answer["pool"])
    rpc = RpcCluster(rpc_url)
    deadline = time.monotonic() + 60
    while any(a is None for a in rpc.accounts(pools)):
        assert time.monotonic() < deadline, "launched pools never appeared"
        time.sleep(0.2)
    time.sleep(1.5)  # CP-Swap pools open a second after creation


def _pairs(registry: ChainRegistry, wanted: int) -> list[tuple[Token, Token]]:
    """(tokenIn, tokenOut) per pair: the wallet buys tokenIn with tokenOut to push the orders' price up.

    A launched token is sold for SOL (the wallet has SOL, not the new token).
    """
    pairs: list[tuple[Token, Token]] = []
    for pool in registry.pools:
        a, b = (registry.tokens.resolve(m) for m in pool.mints)
        assert a is not None and b is not None
        if b.symbol.startswith("BN"):
            a, b = b, a
        if (a, b) not in pairs and (b, a) not in pairs:
            pairs.append((a, b))
    return pairs[:wanted]


def _amount_in(market: OnChainMarket, token_in: Token, token_out: Token) -> int:
    """An order size worth quoting: at least 1000 base units of tokenOut, 1 % or less of the pool."""
    amount = 10**token_in.decimals
    for _ in range(12):
        if market.route(token_in, token_out, amount).amount_out >= 1000:
            return amount
        amount *= 10
    return amount


def _seed(market: OnChainMarket, pairs: list[tuple[Token, Token]], per_pair: int) -> dict[str, dict[str, Any]]:
    orders: dict[str, dict[str, Any]] = {}
    with OrderModel.batch_write() as batch:
        for p, (token_in, token_out) in enumerate(pairs):
            amount = _amount_in(market, token_in, token_out)
            out_now = market.route(token_in, token_out, amount).amount_out
            price = Decimal(out_now).scaleb(-token_out.decimals) / Decimal(amount).scaleb(-token_in.decimals)
            for i in range(per_pair):
                factor = Decimal("1.002") + Decimal("0.038") * Decimal(i) / Decimal(per_pair)
                limit = (price * factor).quantize(Decimal(10) ** -12)
                whole = Decimal(amount).scaleb(-token_in.decimals)
                request = OrderRequest(
                    token_in.mint, token_out.mint, whole, amount, Decimal("0.01"), "limit", limit, None, 3600
                )
                order_id = f"p{p:02d}-{i:05d}"
                orders[order_id] = {"pair": p, "floor": floor_out(request, token_out.decimals), "amount": amount}
                batch.save(waiting_item(order_id, request))
    return orders


class Mover:
    """Pushes one pair's price up with a real swap: buys tokenIn with tokenOut, ~1.5 % impact."""

    def __init__(self, rpc_url: str, registry: ChainRegistry, wallet: Keypair) -> None:
        self.rpc = RpcCluster(rpc_url)
        self.market = OnChainMarket(self.rpc, registry)
        open_accounts_for_new_mints(self.market, {t.mint for t in DEFAULT_TOKENS.all()})  # buys launched tokens
        self.lander = ChainLander(self.rpc, self.market, wallet)
        self.holdings = json.loads((ROOT / "infra" / "localnet.json").read_text())["wallet"]["tokens"]

    def push(self, token_in: Token, token_out: Token) -> float:
        """Swap tokenOut -> tokenIn (at most 2 % of what genesis gave the wallet); when it is seen landed."""
        cap = int(Decimal(self.holdings[token_out.symbol]).scaleb(token_out.decimals)) // 50
        amount = 10**token_out.decimals
        plan = self.market.route(token_out, token_in, amount)
        while plan.price_impact < Decimal("0.015") and amount * 3 // 2 <= cap:
            amount = amount * 3 // 2
            plan = self.market.route(token_out, token_in, amount)
        signed = self.lander.build(plan, 1, memo=f"bench-{time.monotonic_ns()}")
        self.rpc.send_transaction(signed.raw)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = self.rpc.signature_statuses([signed.signature])[0]
            if status is not None:
                assert status.err is None, status.err
                return time.monotonic()
            time.sleep(0.05)
        raise AssertionError(f"the push swap {signed.signature} never landed")

    def out(self, token_in: Token, token_out: Token, amount: int) -> int:
        return self.market.route(token_in, token_out, amount).amount_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--tick", type=float, default=2.0)
    parser.add_argument("--moves", type=int, default=16)
    args = parser.parse_args()
    from localnet import ClusterProcess
    from offline.localstack import start_localstack

    work = Path(tempfile.mkdtemp(prefix="watcher-chain-bench-"))
    begun = time.monotonic()
    emulator = start_localstack(init_dir=None, log_path=work / "localstack.log")
    cluster = ClusterProcess(work_dir=work / "localnet").start()
    try:
        os.environ["AWS_ENDPOINT_URL"] = emulator.endpoint
        print(f"LocalStack {emulator.endpoint} and cluster {cluster.rpc_url} up in {time.monotonic() - begun:.1f} s")
        genesis_pairs = len({frozenset(p["mints"]) for p in cluster.registry()["pools"]})
        _launch_pools(cluster.rpc_url, max(0, args.pairs - genesis_pairs))
        registry = load_registry(cluster.registry_path)
        props = json.loads((ROOT / "infra" / "resources.json").read_text())["Resources"]["OrdersTable"]["Properties"]
        table = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")}
        name = f"bench-orders-{os.getpid()}-{int(time.time())}"  # LocalStack's DynamoDB may keep earlier tables
        boto3.client("dynamodb").create_table(TableName=name, **table)
        bind_tables(name)
        queue_url = boto3.client("sqs").create_queue(QueueName=name)["QueueUrl"]
        rpc = CountingRpc(cluster.rpc_url)
        market = OnChainMarket(rpc, registry)
        pairs = _pairs(registry, args.pairs)
        started = time.monotonic()
        orders = _seed(market, pairs, args.orders // len(pairs))
        writes = AWS_CALLS.get("BatchWriteItem", 0)
        print(
            f"seeded {len(orders)} waiting orders across {len(pairs)} pairs in {time.monotonic() - started:.1f} s "
            f"({writes} BatchWriteItem calls)"
        )
        store = DynamoOrderStore()
        queue = TimedQueue(queue_url)
        watcher = OrderWatcher(
            store, queue, StatusPublisher(store, MemoryNotifier()), lambda: market, lambda: registry.tokens
        )
        ticks: list[dict[str, Any]] = []
        real_tick = watcher.tick

        def timed_tick() -> Any:
            aws, chain, at = dict(AWS_CALLS), dict(rpc.calls), time.monotonic()
            report = real_tick()
            ticks.append(
                {
                    "ms": (time.monotonic() - at) * 1000,
                    "aws": {k: v - aws.get(k, 0) for k, v in AWS_CALLS.items() if v != aws.get(k, 0)},
                    "rpc": {k: v - chain.get(k, 0) for k, v in rpc.calls.items() if v != chain.get(k, 0)},
                    "report": report,
                }
            )
            return report

        watcher.tick = timed_tick  # type: ignore[method-assign]
        mover = Mover(cluster.rpc_url, registry, Keypair.from_bytes(bytes(json.loads(cluster.wallet_path.read_text()))))
        watcher.tick()  # the function's first tick: the full read of the index, before anything moves
        window = args.tick * (args.moves * 1.5 + 4)
        loop = threading.Thread(target=watcher.run, args=(window, args.tick), daemon=True)
        loop.start()
        triggerable_at: dict[str, float] = {}
        for move in range(args.moves):
            p = move % len(pairs)
            token_in, token_out = pairs[p]
            landed = mover.push(token_in, token_out)
            amounts = {o["amount"] for o in orders.values() if o["pair"] == p}
            outs = {a: mover.out(token_in, token_out, a) for a in amounts}
            for order_id, o in orders.items():
                if o["pair"] == p and order_id not in triggerable_at and outs[o["amount"]] >= o["floor"]:
                    triggerable_at[order_id] = landed
            time.sleep(args.tick * 0.5)
        loop.join()
        latencies = [
            queue.first_sent[o] - at
            for o, at in triggerable_at.items()
            if o in queue.first_sent and queue.first_sent[o] >= at
        ]
        early = [o for o, at in triggerable_at.items() if o in queue.first_sent and queue.first_sent[o] < at]
        missed = [o for o in triggerable_at if o not in queue.first_sent]
        full, later = ticks[0], ticks[1:]
        load = os.getloadavg()
        print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (1/5/15 min), 2 cores shared")
        print(f"ticks: {len(ticks)} every {args.tick} s over {len(pairs)} pairs")
        print(f"first (full) read: {full['ms']:.0f} ms, AWS {full['aws']}, RPC {full['rpc']}")
        durations = [t["ms"] for t in later]
        print(f"later ticks: duration p50 {pct(durations, 0.5):.0f} ms, p99 {pct(durations, 0.99):.0f} ms")
        for kind in ("aws", "rpc"):
            per_tick: dict[str, list[int]] = {}
            for t in later:
                for op in t[kind]:
                    per_tick.setdefault(op, [])
            for t in later:
                for op in per_tick:
                    per_tick[op].append(t[kind].get(op, 0))
            for op, counts in sorted(per_tick.items()):
                print(f"  {kind.upper()} {op} per tick: mean {statistics.mean(counts):.2f}, max {max(counts)}")
        print(
            f"  SQS: {queue.messages} trigger messages, {len(queue.first_sent)} orders triggered "
            "(the rest: 5 s re-sends, as no worker executes the orders here)"
        )
        print(
            f"trigger latency (push swap seen landed -> SQS send) over {len(latencies)} orders, {args.moves} swaps: "
            f"p50 {pct(latencies, 0.5) * 1000:.0f} ms, p99 {pct(latencies, 0.99) * 1000:.0f} ms, "
            f"max {max(latencies, default=0) * 1000:.0f} ms; sent before seen landed: {len(early)}; "
            f"not triggered: {len(missed)}"
        )
        print("repeat: .venv/bin/python scripts/watcher_chain_bench.py " + " ".join(sys.argv[1:]))
    finally:
        cluster.stop()
        emulator.stop()


if __name__ == "__main__":
    main()
