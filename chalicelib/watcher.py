"""The watcher: waiting limit and sniper orders, their pools read once per pair per tick.

One scheduled function (docs/decisions/012) runs `run()`: a loop of ticks for most of a
minute. Each tick reads the waiting orders added since the last one (a sparse index),
groups every waiting order by pair, reads each pair's pools once (two RPC round trips,
whatever the number of orders on it), quotes each order's amount on that one snapshot
in memory, and queues the orders whose floor is reached. The order worker makes the
conditional write `waiting -> routing`, so a trigger sent twice executes once. Orders
whose time ran out are written `expired` here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import StaleWrite
from chalicelib.logs import logger
from chalicelib.market import MarketError, Token, TokenRegistry
from chalicelib.orders import OrderRecord, Status, status_event
from chalicelib.ports import MessageQueue, OrderStore
from chalicelib.publisher import StatusPublisher
from chalicelib.triggers import expired, floor_out

__all__ = ["OrderWatcher", "PairQuote", "TickReport", "pair_quoter"]

Quoter = Callable[[int], int]  # amount in (base units) -> best amount out on one snapshot
_MAX_DELAY_S = 900  # SQS DelaySeconds at most


@dataclass(frozen=True)
class PairQuote:
    """One read of a pair's pools: the best out of the pools open now, and of those opening later."""

    now: Quoter
    later: Quoter | None = None  # pools that exist but take no swap yet (CP-Swap open_time)
    opens_at_s: int | None = None  # when the first of those opens (unix s)


def pair_quoter(market: Any, token_in: Token, token_out: Token) -> PairQuote:
    """Read the pair's pools once; the returned quoters quote any amount on that state."""
    snapshot = getattr(market, "snapshot", None)
    if snapshot is None:  # the modelled market: one route per quote (no chain to read)
        return PairQuote(lambda amount: int(market.route(token_in, token_out, amount).amount_out))
    pools = snapshot(token_in, token_out)
    open_now = [p for p in pools.values() if getattr(p, "open", True)]
    opening = [p for p in pools.values() if not getattr(p, "open", True)]

    def best(among: list[Any]) -> Quoter:
        return lambda amount: max((p.swap(token_in.mint, amount).amount_out for p in among), default=0)

    if not opening:
        return PairQuote(best(open_now))
    return PairQuote(best(open_now), best(opening), min(p.opens_at_s for p in opening))


def _listed(market: Any, registry: TokenRegistry, symbol_in: str, symbol_out: str) -> bool:
    token_in, token_out = registry.resolve(symbol_in), registry.resolve(symbol_out)
    if token_in is None or token_out is None:
        return False
    supports = getattr(market, "supports", None)
    return supports is None or bool(supports(token_in, token_out))


@dataclass
class TickReport:
    waiting: int = 0
    pairs: int = 0
    triggered: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    store_queries: int = 0  # DynamoDB Query calls this tick
    pool_reads: int = 0  # pair snapshots (each two getMultipleAccounts on a cluster)
    queue_sends: int = 0  # SQS calls (SendMessageBatch: ten triggers each)
    status_writes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class OrderWatcher:
    def __init__(
        self,
        store: OrderStore,
        queue: MessageQueue,
        publisher: StatusPublisher,
        market: Callable[[], Any],
        tokens: Callable[[], TokenRegistry],
        *,
        discover: Callable[[list[tuple[str, str]]], bool] | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        retrigger_ms: int = 5_000,
        full_refresh_ms: int = 30_000,
    ) -> None:
        self.store = store
        self.queue = queue
        self.publisher = publisher
        self.market = market
        self.tokens = tokens
        self.discover = discover
        self.clock_ms = clock_ms
        self.retrigger_ms = retrigger_ms
        self.full_refresh_ms = full_refresh_ms
        self._book: dict[str, OrderRecord] = {}
        self._newest: str | None = None
        self._refreshed_at = 0
        self._sent_at: dict[str, int] = {}
        self._outbox: list[dict[str, Any]] = []

    # -- the book of waiting orders ------------------------------------------------------

    def _refresh(self, report: TickReport) -> None:
        now = self.clock_ms()
        full = self._newest is None or now - self._refreshed_at >= self.full_refresh_ms
        found = self.store.waiting_since(None if full else self._newest)
        report.store_queries += 1
        if full:
            self._book = {}
            self._refreshed_at = now
        for record in found:
            self._book[record.order_id] = record
            if self._newest is None or record.created_at > self._newest:
                self._newest = record.created_at
        if full and not found:
            self._newest = ""

    # -- one tick --------------------------------------------------------------------------

    def tick(self) -> TickReport:
        report = TickReport()
        self._refresh(report)
        now = self.clock_ms()
        by_pair: dict[tuple[str, str], list[OrderRecord]] = {}
        for record in list(self._book.values()):
            if expired(record, now):
                self._expire(record, report)
                continue
            by_pair.setdefault((record.request.token_in, record.request.token_out), []).append(record)
        report.waiting = sum(len(v) for v in by_pair.values())
        report.pairs = len(by_pair)
        registry = self.tokens()
        market = self.market()
        if self.discover is not None:
            unlisted = [pair for pair in by_pair if not _listed(market, registry, *pair)]
            if unlisted and self.discover(unlisted):  # a sniper's pair may have its pool now
                registry, market = self.tokens(), self.market()
        for (symbol_in, symbol_out), records in by_pair.items():
            token_in, token_out = registry.resolve(symbol_in), registry.resolve(symbol_out)
            if token_in is None or token_out is None:
                continue  # no pool lists this mint yet
            try:
                report.pool_reads += 1
                best = pair_quoter(market, token_in, token_out)
            except MarketError:
                continue  # no pool for the pair (yet)
            for record in records:
                if now - self._sent_at.get(record.order_id, -self.retrigger_ms) < self.retrigger_ms:
                    continue  # triggered a moment ago: the worker has it
                floor = floor_out(record.request, token_out.decimals)
                try:
                    out = best.now(record.request.amount_in)
                    if out >= floor > 0:
                        self._trigger(record, out, report)
                        continue
                    if best.later is None or best.opens_at_s is None:
                        continue
                    # A pool that will open: the trigger is held back by SQS until it does.
                    delay_s = max(1, -(-(best.opens_at_s * 1000 - self.clock_ms()) // 1000))
                    later = best.later(record.request.amount_in)
                    if delay_s <= _MAX_DELAY_S and later >= floor > 0:
                        self._trigger(record, later, report, delay_s=delay_s)
                except MarketError:
                    continue
        self._send(report)
        if report.triggered or report.expired:
            logger.info("watcher tick", extra=report.to_dict())
        return report

    def _trigger(self, record: OrderRecord, quoted_out: int, report: TickReport, delay_s: int = 0) -> None:
        trigger: dict[str, Any] = {"quotedOut": str(quoted_out)}
        if delay_s:
            trigger["heldForOpenS"] = delay_s
        self._outbox.append({"orderId": record.order_id, "round": record.round, "trigger": trigger})
        # Not sent again before the held-back one is due, and the worker has had it a moment.
        self._sent_at[record.order_id] = self.clock_ms() + delay_s * 1000
        report.triggered.append(record.order_id)
        logger.info("triggered", extra={"orderId": record.order_id, **trigger})

    def _send(self, report: TickReport) -> None:
        """The tick's triggers, ten per SendMessageBatch where the queue can batch (one batch per delay)."""
        bodies, self._outbox = self._outbox, []
        if not bodies:
            return
        batch = getattr(self.queue, "send_batch", None)
        if batch is None:
            for body in bodies:
                self.queue.send(body)
            report.queue_sends += len(bodies)
            return
        by_delay: dict[int, list[dict[str, Any]]] = {}
        for body in bodies:
            by_delay.setdefault(int(body["trigger"].get("heldForOpenS", 0)), []).append(body)
        for delay_s, group in by_delay.items():
            if delay_s:
                batch(group, delay_s=delay_s)
            else:
                batch(group)  # a queue without delays (the benchmarks' timed queues) takes this too
            report.queue_sends += -(-len(group) // 10)

    def _expire(self, record: OrderRecord, report: TickReport) -> None:
        event = status_event(record.order_id, Status.EXPIRED, record.seq + 1, reason="expired")
        try:
            written = self.store.append_status(record, event, {})
        except StaleWrite:
            pass  # it moved since the book read it; a full refresh brings it back if it still waits
        else:
            report.status_writes += 1
            self.publisher.publish(written, event)
            report.expired.append(record.order_id)
            logger.info("expired", extra={"orderId": record.order_id})
        self._book.pop(record.order_id, None)
        self._sent_at.pop(record.order_id, None)

    # -- the scheduled function -------------------------------------------------------

    def run(self, window_s: float, tick_s: float, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
        """Tick every `tick_s` for `window_s` (0: one tick); what the ticks did, summed."""
        started = time.monotonic()
        ticks, triggered, expired_ids, queries, reads = 0, 0, 0, 0, 0
        while True:
            begun = time.monotonic()
            report = self.tick()
            ticks += 1
            triggered += len(report.triggered)
            expired_ids += len(report.expired)
            queries += report.store_queries
            reads += report.pool_reads
            if time.monotonic() - started + tick_s > window_s:
                break
            sleep(max(0.0, tick_s - (time.monotonic() - begun)))
        return {
            "ticks": ticks,
            "triggered": triggered,
            "expired": expired_ids,
            "storeQueries": queries,
            "poolReads": reads,
        }
