"""Watcher benchmark (issue 17): N waiting limit orders across P pairs, trigger latency and calls per tick.

    .venv/bin/python scripts/watcher_bench.py [--orders 10000] [--pairs 20] [--tick 2] [--flips 12]

The store is the in-memory twin, counting what DynamoDB would bill: one Query call
per 1 MB page of waiting orders (their stored JSON size). `--moto` uses the real
DynamoDB adapter (pynamodb) on moto in process instead, every botocore call counted
(moto needs ~55 s to serve a 10 000-item Query here, so its latencies say little). The
pools are synthetic constant-product pools (one snapshot per pair per tick stands for
the two getMultipleAccounts an OnChainMarket snapshot makes). The watcher loop runs as
the scheduled function does (`run(window, tick)`); meanwhile the price of one pair at a
time jumps 2 % at a random moment, and the latency is from that jump to the trigger's
SQS send of each order it made triggerable. Figures are from a shared 2-core machine:
noisy, and moto is slower than DynamoDB per call.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
    os.environ[key] = value
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the figures, not one line per trigger

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402
from watcher_common import count_aws_calls, pct, waiting_item  # noqa: E402

from chalicelib.dynamo import DynamoOrderStore, OrderModel, bind_tables  # noqa: E402
from chalicelib.market import Token, TokenRegistry  # noqa: E402
from chalicelib.market.venues import VenueSwap  # noqa: E402
from chalicelib.memory import MemoryNotifier, MemoryOrderStore, MemoryQueue  # noqa: E402
from chalicelib.orders import OrderRecord, OrderRequest, Status, status_event, utc_now_iso  # noqa: E402
from chalicelib.publisher import StatusPublisher  # noqa: E402
from chalicelib.records import dumps, request_to_json  # noqa: E402
from chalicelib.watcher import OrderWatcher  # noqa: E402

CALLS = count_aws_calls()

SOL = Token("SOL", "So11111111111111111111111111111111111111112", 9)


class Pool:
    def __init__(self, reserve_in: int, reserve_out: int) -> None:
        self.reserve_in, self.reserve_out = reserve_in, reserve_out

    def swap(self, mint_in: str, amount: int) -> VenueSwap:
        net = amount * 9975 // 10000
        out = self.reserve_out * net // (self.reserve_in + net)
        return VenueSwap(out, amount - net, Decimal(self.reserve_out) / Decimal(self.reserve_in))


class BenchMarket:
    """Constant-product pools SOL -> T_i; `jump` multiplies a pair's price."""

    def __init__(self, tokens: list[Token]) -> None:
        self.reserves = {t.mint: [10**9 * 10_000, 10**6 * 1_000_000] for t in tokens}  # 100 T per SOL
        self.snapshots = 0

    def snapshot(self, token_in: Token, token_out: Token) -> dict[str, Pool]:
        self.snapshots += 1
        r_in, r_out = self.reserves[token_out.mint]
        return {"raydium": Pool(r_in, r_out)}

    def jump(self, token: Token, factor: Decimal) -> None:
        self.reserves[token.mint][1] = int(self.reserves[token.mint][1] * factor)

    def price(self, token: Token, amount_in: int) -> Decimal:
        r_in, r_out = self.reserves[token.mint]
        return Decimal(Pool(r_in, r_out).swap(SOL.mint, amount_in).amount_out) / Decimal(amount_in) * 1000


class PagedMemoryStore(MemoryOrderStore):
    """The in-memory twin; `waiting_since` counts the 1 MB Query pages DynamoDB would return."""

    def waiting_since(self, created_after: str | None) -> list[OrderRecord]:
        found = super().waiting_since(created_after)
        size = sum(len(request_to_json(r.request)) + len(dumps(list(r.history))) + 200 for r in found)
        CALLS["Query"] = CALLS.get("Query", 0) + max(1, -(-size // 1_000_000))
        return found


class TimedQueue(MemoryQueue):
    def __init__(self) -> None:
        super().__init__()
        self.first_sent: dict[str, float] = {}

    def send(self, body: dict[str, Any]) -> None:
        super().send(body)
        self.first_sent.setdefault(body["orderId"], time.monotonic())

    def send_batch(self, bodies: list[dict[str, Any]]) -> None:
        self.batches = getattr(self, "batches", 0) + -(-len(bodies) // 10)
        for body in bodies:
            self.send(body)


def _create_table() -> None:
    props = json.loads((ROOT / "infra" / "resources.json").read_text())["Resources"]["OrdersTable"]["Properties"]
    kwargs = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")}
    boto3.client("dynamodb", region_name="us-east-1").create_table(TableName="bench-orders", **kwargs)
    bind_tables("bench-orders")


def _seed(
    tokens: list[Token], per_pair: int, market: BenchMarket, memory: MemoryOrderStore | None
) -> dict[str, tuple[Token, Decimal]]:
    """Waiting limit orders of 1 SOL, limits 0.5 % to 10 % above each pair's price now."""
    orders: dict[str, tuple[Token, Decimal]] = {}
    rng = random.Random(17)
    with OrderModel.batch_write() as batch:  # writes nothing unless saved to (memory: never)
        for token in tokens:
            now_price = market.price(token, 10**9)
            for i in range(per_pair):
                limit = (now_price * (Decimal("1.005") + Decimal(rng.random()) * Decimal("0.095"))).quantize(
                    Decimal("0.000001")
                )
                request = OrderRequest(
                    "SOL", token.symbol, Decimal(1), 10**9, Decimal("0.01"), "limit", limit, None, 3600
                )
                order_id = f"{token.symbol}-{i:05d}"
                created = utc_now_iso()
                record = OrderRecord(order_id, request, Status.WAITING, 2, created)
                events = [status_event(order_id, Status.PENDING, 1), status_event(order_id, Status.WAITING, 2)]
                orders[order_id] = (token, limit)
                if memory is not None:
                    memory.create(record.with_(history=tuple(events), version=1))
                    continue
                batch.save(waiting_item(order_id, request))
    return orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--tick", type=float, default=2.0)
    parser.add_argument("--flips", type=int, default=12)
    parser.add_argument("--moto", action="store_true", help="the DynamoDB adapter on moto (slow)")
    args = parser.parse_args()
    tokens = [Token(f"T{i:02d}", f"Mint{i:02d}" + "1" * 38, 6) for i in range(args.pairs)]
    registry = TokenRegistry([SOL, *tokens])
    with mock_aws():
        _create_table()
        market = BenchMarket(tokens)
        started = time.monotonic()
        memory = None if args.moto else PagedMemoryStore()
        orders = _seed(tokens, args.orders // args.pairs, market, memory)
        print(f"seeded {len(orders)} waiting orders across {args.pairs} pairs in {time.monotonic() - started:.1f} s")
        store: Any = memory if memory is not None else DynamoOrderStore()
        queue = TimedQueue()
        watcher = OrderWatcher(store, queue, StatusPublisher(store, MemoryNotifier()), lambda: market, lambda: registry)
        ticks: list[dict[str, Any]] = []
        real_tick = watcher.tick

        def timed_tick() -> Any:
            before, begun = dict(CALLS), time.monotonic()
            report = real_tick()
            calls = {k: CALLS.get(k, 0) - before.get(k, 0) for k in CALLS if CALLS.get(k, 0) != before.get(k, 0)}
            ticks.append({"ms": (time.monotonic() - begun) * 1000, "calls": calls, "report": report})
            return report

        watcher.tick = timed_tick  # type: ignore[method-assign]
        window = args.tick * (args.flips * 2 + 3)
        loop = threading.Thread(target=watcher.run, args=(window, args.tick), daemon=True)
        loop.start()
        rng = random.Random(5)
        jumps: list[tuple[float, Token, Decimal, Decimal]] = []
        time.sleep(args.tick * 2)  # the first (full) read done
        for flip in range(args.flips):
            time.sleep(args.tick * rng.random() + args.tick)
            token = tokens[flip % len(tokens)]
            before = market.price(token, 10**9)
            market.jump(token, Decimal("1.02"))
            jumps.append((time.monotonic(), token, before, market.price(token, 10**9)))
        loop.join()
        latencies = []
        for moment, token, _, after in jumps:
            for order_id, (order_token, limit) in orders.items():
                if order_token == token and limit <= after and order_id in queue.first_sent:
                    sent = queue.first_sent[order_id]
                    if sent >= moment:
                        latencies.append(sent - moment)
        missed = sum(
            1
            for moment, token, _, after in jumps
            for order_id, (t, limit) in orders.items()
            if t == token and limit <= after and order_id not in queue.first_sent
        )
        full, incremental = ticks[0], ticks[1:]
        print(f"ticks: {len(ticks)} every {args.tick} s; pairs read per tick: {ticks[-1]['report'].pool_reads}")
        print(f"first (full) read: {full['ms']:.0f} ms, AWS calls {full['calls']}")
        durations = [t["ms"] for t in incremental]
        print(f"later ticks: duration p50 {pct(durations, 0.5):.0f} ms, p99 {pct(durations, 0.99):.0f} ms")
        per_tick: dict[str, list[int]] = {}
        for t in incremental:
            for op in {*t["calls"], "Query"}:
                per_tick.setdefault(op, []).append(t["calls"].get(op, 0))
        for op, counts in sorted(per_tick.items()):
            print(f"  AWS {op} per tick: mean {statistics.mean(counts):.2f}, max {max(counts)}")
        print(
            f"  SQS: {len(queue.sent)} trigger messages in {getattr(queue, 'batches', 0)} SendMessageBatch calls over "
            f"{len(ticks)} ticks, {len(queue.first_sent)} first triggers "
            "(the rest: 5 s re-sends, as no worker executes the orders here)"
        )
        print(f"  pool snapshots per tick (x2 getMultipleAccounts on a cluster): {ticks[-1]['report'].pool_reads}")
        print(
            f"trigger latency (price jump -> SQS send) over {len(latencies)} orders, {len(jumps)} jumps: "
            f"p50 {pct(latencies, 0.5) * 1000:.0f} ms, p99 {pct(latencies, 0.99) * 1000:.0f} ms, "
            f"max {max(latencies, default=0) * 1000:.0f} ms; not triggered: {missed}"
        )
        print("repeat: .venv/bin/python scripts/watcher_bench.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
