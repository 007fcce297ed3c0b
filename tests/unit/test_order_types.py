"""Limit and sniper orders against the in-memory twins and the modelled market (issue 17)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.bootstrap import build_engine
from chalicelib.cancel import NotCancellable
from chalicelib.config import Settings
from chalicelib.errors import InvalidOrder, OrderNotFound
from chalicelib.failures import MemoryFailureStore
from chalicelib.market import DEFAULT_TOKENS, Market, MarketConfig
from chalicelib.memory import MemoryNotifier, MemoryOrderStore, MemoryQueue
from chalicelib.orders import Status
from chalicelib.validation import parse_order


class Clock:
    def __init__(self) -> None:
        import time

        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def eng():
    engine = build_engine(
        Settings(submit_delay_ms=(0, 0), quote_delay_ms=(0, 0), retry_delays_s=(2, 4, 8)),
        store=MemoryOrderStore(),
        orders_queue=MemoryQueue(),
        replay_queue=MemoryQueue(),
        notifier=MemoryNotifier(),
        market=Market(MarketConfig(seed=1, quote_delay_ms=(0, 0))),
        failures=MemoryFailureStore(),
        dlq=MemoryQueue(),
    )
    clock = Clock()
    engine.watcher.clock_ms = clock
    engine.executor.clock_ms = clock
    engine.clock = clock  # type: ignore[attr-defined]
    return engine


def _market_price(eng, amount: str = "1") -> Decimal:
    sol, usdc = DEFAULT_TOKENS.resolve("SOL"), DEFAULT_TOKENS.resolve("USDC")
    plan = eng.executor.market.route(sol, usdc, int(Decimal(amount).scaleb(9)))
    return Decimal(plan.amount_out).scaleb(-6) / Decimal(amount)


def _limit(eng, limit_price: Decimal, expires: int = 600):
    body = {
        "type": "limit",
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amount": Decimal("1"),
        "slippage": Decimal("0.01"),
        "limitPrice": str(limit_price),
        "expiresInS": Decimal(expires),
    }
    record = eng.orders.submit(parse_order(body, eng.tokens)).record
    _deliver(eng)
    return record.order_id


def _deliver(eng) -> None:
    """Run every queued order message once, as the worker would."""
    queue = eng.orders_queue
    for message in queue.receive(100):
        body = message["body"]
        eng.executor.run(body["orderId"], 1, int(body.get("round", 1)))
        queue.delete([message["receipt"]])


def _statuses(eng, order_id: str) -> list[str]:
    return [e["status"] for e in eng.store.get(order_id).history]


def test_validation_of_the_new_fields(eng):
    base = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1", "slippage": "0.01"}
    with pytest.raises(InvalidOrder) as err:
        parse_order({**base, "type": "limit"}, eng.tokens)
    assert err.value.field == "limitPrice"
    with pytest.raises(InvalidOrder) as err:
        parse_order({**base, "limitPrice": "100"}, eng.tokens)
    assert err.value.field == "limitPrice"  # a market order has no limit
    with pytest.raises(InvalidOrder) as err:
        parse_order({**base, "type": "limit", "limitPrice": "-1"}, eng.tokens)
    assert err.value.field == "limitPrice"
    with pytest.raises(InvalidOrder) as err:
        parse_order({**base, "type": "limit", "limitPrice": "1", "expiresInS": Decimal("0")}, eng.tokens)
    assert err.value.field == "expiresInS"
    with pytest.raises(InvalidOrder) as err:
        parse_order({**base, "type": "sniper", "tokenOut": "not-a-mint", "maxPrice": "1"}, eng.tokens)
    assert err.value.field == "tokenOut"
    mint = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
    sniper = parse_order({**base, "type": "sniper", "tokenOut": mint, "maxPrice": "0.001"}, eng.tokens)
    assert sniper.token_out == mint and sniper.max_price == Decimal("0.001") and sniper.expires_in_s == 86_400


def test_a_limit_above_the_market_waits_and_one_below_confirms_at_or_above_its_limit(eng):
    price = _market_price(eng)
    high = _limit(eng, price * Decimal("1.5"))
    low = _limit(eng, price * Decimal("0.9"))
    assert _statuses(eng, high) == ["pending", "waiting"] and _statuses(eng, low) == ["pending", "waiting"]
    report = eng.watcher.tick()
    assert report.triggered == [low] and report.pairs == 1 and report.pool_reads == 1
    _deliver(eng)
    order = eng.store.get(low).to_public()
    assert order["status"] == "confirmed", order["history"]
    assert Decimal(order["executedPrice"]) >= Decimal(order["limitPrice"])
    assert _statuses(eng, low) == ["pending", "waiting", "routing", "building", "submitted", "confirmed"]
    assert eng.store.get(high).status is Status.WAITING
    listed, _ = eng.orders.list_recent(20, "waiting", None)
    assert [r.order_id for r in listed] == [high]


def test_a_trigger_sent_twice_executes_once(eng):
    order_id = _limit(eng, _market_price(eng) * Decimal("0.9"))
    eng.orders_queue.send({"orderId": order_id, "round": 1})
    eng.orders_queue.send({"orderId": order_id, "round": 1})
    _deliver(eng)
    history = _statuses(eng, order_id)
    assert history.count("routing") == 1 and history.count("confirmed") == 1, history


def test_a_waiting_order_cancels_and_then_never_executes(eng):
    order_id = _limit(eng, _market_price(eng) * Decimal("1.5"))
    cancelled = eng.canceller.cancel(order_id)
    assert cancelled.status is Status.CANCELLED
    with pytest.raises(NotCancellable):
        eng.canceller.cancel(order_id)
    eng.orders_queue.send({"orderId": order_id, "round": 1})  # a late trigger
    _deliver(eng)
    assert _statuses(eng, order_id) == ["pending", "waiting", "cancelled"]
    assert eng.watcher.tick().waiting == 0


def test_a_market_order_is_not_cancellable(eng):
    order = parse_order({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1", "slippage": "0.01"}, eng.tokens)
    order_id = eng.orders.submit(order).record.order_id
    with pytest.raises(NotCancellable):
        eng.canceller.cancel(order_id)


def test_an_order_whose_time_runs_out_expires(eng):
    order_id = _limit(eng, _market_price(eng) * Decimal("1.5"), expires=5)
    assert eng.watcher.tick().expired == []
    eng.clock.now += 6_000
    report = eng.watcher.tick()
    assert report.expired == [order_id]
    assert _statuses(eng, order_id) == ["pending", "waiting", "expired"]


def test_the_watcher_reads_each_pair_once_whatever_the_number_of_orders(eng):
    price = _market_price(eng)
    for factor in ("1.5", "1.6", "1.7", "1.8"):
        _limit(eng, price * Decimal(factor))
    report = eng.watcher.tick()
    assert report.waiting == 4 and report.pairs == 1 and report.pool_reads == 1 and report.triggered == []
    # AND the next tick reads only what is new in the index (one query)
    assert eng.watcher.tick().store_queries == 1


def test_another_clients_order_cannot_be_cancelled(eng):
    body = {"type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1", "slippage": "0.01"}
    order = parse_order({**body, "limitPrice": "1000000"}, eng.tokens)
    order_id = eng.orders.submit(order, client="alice").record.order_id
    _deliver(eng)
    with pytest.raises(OrderNotFound):
        eng.canceller.cancel(order_id, "mallory")
    assert eng.canceller.cancel(order_id, "alice").status is Status.CANCELLED


class _RefuseOnce:
    """The chain refuses the next confirmation the way a program refuses a floor (one shot)."""

    def __init__(self, chain, error: Exception, before=lambda: None) -> None:
        self.chain, self.error, self.used, self.before = chain, error, False, before

    def __getattr__(self, name):
        return getattr(self.chain, name)

    def confirm(self, plan, min_amount_out, submission):
        if not self.used:
            self.used = True
            self.before()
            raise self.error
        return self.chain.confirm(plan, min_amount_out, submission)


def _seqs_in_order(eng, order_id: str) -> bool:
    seqs = [e["seq"] for e in eng.store.get(order_id).history]
    return seqs == list(range(1, len(seqs) + 1))


def test_a_fill_the_program_refuses_returns_the_order_to_waiting_and_a_later_trigger_executes_it_once(eng):
    from chalicelib.landing import ProgramError

    order_id = _limit(eng, _market_price(eng) * Decimal("0.9"))
    refused = ProgramError("raydium refused the swap: ExceededSlippage (6005)", "slippage_exceeded", {})
    eng.executor.chain = _RefuseOnce(eng.executor.chain, refused)
    assert eng.watcher.tick().triggered == [order_id]
    _deliver(eng)
    # THEN it waits again, saying why, with its trigger; nothing is left to confirm
    record = eng.store.get(order_id)
    assert record.status is Status.WAITING, _statuses(eng, order_id)
    assert _statuses(eng, order_id) == ["pending", "waiting", "routing", "building", "submitted", "waiting"]
    again = record.history[-1]
    assert again["reason"] == "slippage_exceeded" and "ExceededSlippage" in again["error"]
    assert again["trigger"] == record.history[1]["trigger"] and again["expiresAt"] == record.history[1]["expiresAt"]
    assert "txHash" not in record.details and not record.details.get("leaseUntilMs")
    # AND a trigger sent twice from here executes once
    eng.clock.now += 6_000  # past the watcher's re-send pause
    assert eng.watcher.tick().triggered == [order_id]
    eng.orders_queue.send({"orderId": order_id, "round": 1})
    _deliver(eng)
    history = _statuses(eng, order_id)
    assert history[-4:] == ["routing", "building", "submitted", "confirmed"], history
    assert history.count("confirmed") == 1 and _seqs_in_order(eng, order_id)


def test_a_refused_fill_after_the_order_ran_out_of_time_ends_expired(eng):
    from chalicelib.market import SlippageExceeded

    order_id = _limit(eng, _market_price(eng) * Decimal("0.9"), expires=5)
    assert eng.watcher.tick().triggered == [order_id]

    def time_runs_out() -> None:  # while the transaction is in flight
        eng.clock.now += 6_000

    refused = SlippageExceeded("output below the floor")
    eng.executor.chain = _RefuseOnce(eng.executor.chain, refused, time_runs_out)
    _deliver(eng)
    assert _statuses(eng, order_id)[-2:] == ["submitted", "expired"], _statuses(eng, order_id)
    assert eng.store.get(order_id).history[-1]["reason"] == "expired"


def test_a_retry_that_finds_the_price_past_the_limit_returns_to_waiting_not_failed(eng):
    from dataclasses import replace

    from chalicelib.errors import RetryableExecutionError

    order_id = _limit(eng, _market_price(eng) * Decimal("0.9"))
    dropped = RetryableExecutionError("the transaction was dropped", reason="transaction_dropped")
    eng.executor.chain = _RefuseOnce(eng.executor.chain, dropped)
    assert eng.watcher.tick().triggered == [order_id]
    _deliver(eng)  # a fault, not the market: retried like a market order
    assert eng.store.get(order_id).status is Status.SUBMITTED
    route = eng.executor.market.route
    eng.executor.market.route = lambda *a: replace(route(*a), amount_out=1)  # the price fell meanwhile
    eng.executor.run(order_id, 2)
    record = eng.store.get(order_id)
    assert record.status is Status.WAITING and record.history[-1]["reason"] == "price_moved", _statuses(eng, order_id)
    assert _seqs_in_order(eng, order_id)


class _Pool:
    def __init__(self, out: int, opens_at_s: int | None) -> None:
        self.out, self.opens_at_s = out, opens_at_s

    @property
    def open(self) -> bool:
        return self.opens_at_s is None

    def swap(self, mint_in: str, amount: int):
        from chalicelib.market.venues import VenueSwap

        return VenueSwap(self.out, 0, Decimal(1))


class _OpeningMarket:
    """A pair whose only pool exists but opens later (CP-Swap's open_time)."""

    def __init__(self, opens_at_s: int | None) -> None:
        self.opens_at_s = opens_at_s

    def snapshot(self, token_in, token_out):
        return {"raydium": _Pool(10**12, self.opens_at_s)}


def test_the_watcher_holds_a_trigger_until_the_pool_opens(eng):
    order_id = _limit(eng, _market_price(eng) * Decimal("0.9"))
    opens_at_s = eng.clock.now // 1000 + 3
    eng.watcher.market = lambda: _OpeningMarket(opens_at_s)
    report = eng.watcher.tick()
    # THEN it is sent now, held back by SQS until the pool opens, and not sent again meanwhile
    assert report.triggered == [order_id]
    sent = eng.orders_queue.sent[-1]
    assert sent["trigger"]["heldForOpenS"] in (3, 4), sent
    assert list(eng.orders_queue.delays.values())[-1] == sent["trigger"]["heldForOpenS"]
    eng.clock.now += 2_000
    assert eng.watcher.tick().triggered == []
    # AND an open pool triggers at once, with no hold
    eng.clock.now += 10_000
    eng.watcher.market = lambda: _OpeningMarket(None)
    assert eng.watcher.tick().triggered == [order_id]
    assert "heldForOpenS" not in eng.orders_queue.sent[-1]["trigger"]


def test_a_trigger_delivered_before_the_pool_opens_comes_back_then_and_routes_as_attempt_one(eng):
    from chalicelib.market import PoolNotOpen

    order_id = _limit(eng, _market_price(eng) * Decimal("0.9"))
    route = eng.executor.market.route
    opens_at_s = eng.clock.now // 1000 + 2
    calls = []

    def not_open_yet(*args):
        calls.append(args)
        if len(calls) == 1:
            raise PoolNotOpen("the raydium pool takes swaps from later (its open_time)", opens_at_s)
        return route(*args)

    eng.executor.market.route = not_open_yet
    outcome = eng.executor.run(order_id, 1)
    # THEN the message comes back when the pool opens, and nothing is written meanwhile
    assert not outcome.done and outcome.reason == "pool_not_open" and outcome.retry_in_s in (2, 3), outcome
    assert _statuses(eng, order_id) == ["pending", "waiting"]
    eng.clock.now = opens_at_s * 1000
    assert eng.executor.run(order_id, 2).done
    record = eng.store.get(order_id)
    assert record.status is Status.CONFIRMED, _statuses(eng, order_id)
    assert [e["attempt"] for e in record.history if e["status"] == "routing"] == [1]
