"""The executor on the real programs (LiteSVM in process, through the cluster port's twin).

Orders go through OrderExecutor exactly as on a cluster: quotes read from the pool
accounts, a transaction simulated, sized and signed, sent, rebroadcast, confirmed, and
the fill read from the wallet's token balance changes.
"""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from chalicelib.execution import OrderExecutor
from chalicelib.failures import MemoryFailureStore
from chalicelib.landing import ChainLander, LandingConfig
from chalicelib.market.chainpools import parse_registry
from chalicelib.market.onchain import OnChainMarket
from chalicelib.memory import MemoryNotifier, MemoryOrderStore, MemoryQueue
from chalicelib.orders import OrderRequest, Status
from chalicelib.publisher import StatusPublisher
from chalicelib.service import OrderService

from .world import CPMM, DLMM, PUMP, WSOL, World, build_world

FAST = LandingConfig(poll_interval_s=0, rebroadcast_interval_s=0, unreachable_after_s=0)


class Rig:
    def __init__(self, world: World, dexes: tuple[str, ...] = ("raydium", "meteora")) -> None:
        doc = {**world.registry_doc, "pools": [p for p in world.registry_doc["pools"] if p["dex"] in dexes]}
        self.world = world
        self.registry = parse_registry(doc)
        self.market = OnChainMarket(world.cluster, self.registry)
        self.lander = ChainLander(world.cluster, self.market, world.wallet, FAST, sleep=lambda _s: None)
        self.store = MemoryOrderStore()
        self.queue = MemoryQueue()
        self.executor = OrderExecutor(
            self.store,
            StatusPublisher(self.store, MemoryNotifier()),
            self.market,
            self.lander,
            (0, 0, 0),
            MemoryFailureStore(),
            registry=self.registry.tokens,
        )
        self.orders = OrderService(self.store, self.queue)

    def submit(self, token_in: str, token_out: str, amount: str, slippage: str = "0.01") -> str:
        token = self.registry.tokens.resolve(token_in)
        assert token is not None
        base = int(Decimal(amount).scaleb(token.decimals))
        request = OrderRequest(token_in, token_out, Decimal(amount), base, Decimal(slippage))
        return self.orders.submit(request).record.order_id

    def run(self, order_id: str, delivery: int = 1):
        return self.executor.run(order_id, delivery)

    def confirmed_event(self, order_id: str) -> dict:
        record = self.store.get(order_id)
        assert record is not None
        assert record.status is Status.CONFIRMED, record.history[-1]
        return record.history[-1]


@pytest.fixture
def world() -> World:
    return build_world()


def _balances(world: World) -> tuple[int, int]:
    owner = world.wallet.pubkey()
    return world.token_balance(owner, WSOL), world.token_balance(owner, PUMP)


@pytest.mark.parametrize(
    ("dexes", "expected", "programs"),
    [
        (("raydium",), "raydium", {str(CPMM)}),
        (("meteora",), "meteora", {str(DLMM)}),
        (("raydium", "meteora"), "split", {str(CPMM), str(DLMM)}),
    ],
)
def test_an_order_lands_on_the_venue_programs_and_the_fill_is_what_the_wallet_got(world, dexes, expected, programs):
    rig = Rig(world, dexes)
    sol_before, pump_before = _balances(world)
    # WHEN 1 SOL is sold for the token
    order_id = rig.submit("SOL", "PUMP", "1")
    assert rig.run(order_id).done
    event = rig.confirmed_event(order_id)
    # THEN it went where the quotes said, and the transaction executed on those programs
    assert event["dex"] == expected
    details = world.cluster.transaction(event["txHash"])
    assert details is not None and details.err is None
    invoked = {line.split()[1] for line in details.logs if line.endswith("invoke [1]")}
    assert programs <= invoked
    # AND the wallet paid exactly the amount and got exactly the event's amountOut
    sol_after, pump_after = _balances(world)
    assert sol_before - sol_after == 10**9
    assert pump_after - pump_before == int(Decimal(event["amountOut"]).scaleb(6)) > 0
    assert details.token_change(str(world.wallet.pubkey()), str(PUMP)) == pump_after - pump_before
    # AND the event says where it landed and what it cost
    assert event["slot"] == details.slot and event["fee"] == details.fee > 0
    assert 0 < event["computeUnits"] == details.compute_units


def test_the_compute_unit_limit_comes_from_the_simulation_and_the_priority_fee_is_capped(world):
    rig = Rig(world)
    plan = rig.market.route(rig.registry.tokens.resolve("SOL"), rig.registry.tokens.resolve("PUMP"), 10**9)
    signed = rig.lander.build(plan, 0)
    from solders.transaction import VersionedTransaction

    tx = VersionedTransaction.from_bytes(signed.raw)
    limit_ix, price_ix = tx.message.instructions[0], tx.message.instructions[1]
    limit = int.from_bytes(bytes(limit_ix.data)[1:5], "little")
    simulated = world.cluster.simulate_transaction(signed.raw).units_consumed
    assert simulated is not None and simulated < limit <= simulated * 1.2 + 5_000
    price = int.from_bytes(bytes(price_ix.data)[1:9], "little")
    assert price == FAST.priority_fee_microlamports
    capped = ChainLander(world.cluster, rig.market, world.wallet, LandingConfig(priority_fee_cap_lamports=100))
    assert capped.priority_price(limit) * limit // 1_000_000 <= 100


def test_a_large_order_moves_the_next_quote(world):
    rig = Rig(world)
    sol, pump = rig.registry.tokens.resolve("SOL"), rig.registry.tokens.resolve("PUMP")
    before = rig.market.route(sol, pump, 10**8).amount_out
    order_id = rig.submit("SOL", "PUMP", "5")
    assert rig.run(order_id).done and rig.confirmed_event(order_id)
    after = rig.market.route(sol, pump, 10**8).amount_out
    assert after < before * 0.9


class FrontRun:
    """A router whose first quote is overtaken by another trader's swap before it is built."""

    def __init__(self, rig: Rig, other: Rig) -> None:
        self.rig, self.other, self.done = rig, other, False

    def route(self, token_in, token_out, amount_in):
        plan = self.rig.market.route(token_in, token_out, amount_in)
        if not self.done:
            self.done = True
            order = self.other.submit("SOL", "PUMP", "3", slippage="0.5")
            assert self.other.run(order).done
        return plan


def test_a_floor_the_program_refuses_fails_the_attempt_and_the_retry_quotes_afresh(world):
    rig, other = Rig(world, ("raydium",)), Rig(world, ("raydium",))
    rig.executor.market = FrontRun(rig, other)
    order_id = rig.submit("SOL", "PUMP", "1", slippage="0.001")
    # WHEN the pool moves between the quote and the transaction
    first = rig.run(order_id)
    # THEN the program's own check (Raydium 6005 ExceededSlippage, seen in simulation) fails the attempt
    assert not first.done and first.reason == "slippage_exceeded"
    record = rig.store.get(order_id)
    [error] = record.details["errors"]
    assert "ExceededSlippage (6005)" in error["message"] and error["retryable"]
    # AND the next attempt quotes the moved pool and lands
    assert rig.run(order_id, 2).done
    event = rig.confirmed_event(order_id)
    routings = [e for e in record.history if e["status"] == "routing"] + [
        e for e in rig.store.get(order_id).history if e["status"] == "routing"
    ]
    assert event["status"] == "confirmed" and len({r["route"][0]["amountOut"] for r in routings}) == 2


def test_a_dropped_send_is_rebroadcast_and_lands_once(world):
    rig = Rig(world)
    world.cluster.drop_next_sends = 2
    order_id = rig.submit("SOL", "PUMP", "0.5")
    assert rig.run(order_id).done
    tx_hash = rig.confirmed_event(order_id)["txHash"]
    assert world.cluster.sends.count(tx_hash) == 3  # two dropped, the third landed
    assert list(world.cluster.landed) == [tx_hash]


def test_an_expired_blockhash_leads_to_one_new_transaction_and_exactly_one_lands(world):
    rig = Rig(world)
    sol_before, _ = _balances(world)
    world.cluster.drop_next_sends = 10**9  # the cluster drops every send...
    world.cluster.slots_per_poll = 20  # ...while time passes
    order_id = rig.submit("SOL", "PUMP", "0.5")
    first = rig.run(order_id)
    assert not first.done and first.reason == "blockhash_expired"
    old = rig.store.get(order_id).details["failedTransactions"][0]
    world.cluster.drop_next_sends = 0
    assert rig.run(order_id, 2).done
    new = rig.confirmed_event(order_id)["txHash"]
    assert new != old
    # AND the old one can never land now: resending its bytes does nothing
    raw = next(e["transaction"] for e in rig.store.get(order_id).history if e.get("txHash") == old)
    import base64

    world.cluster.send_transaction(base64.b64decode(raw), skip_preflight=True)
    assert list(world.cluster.landed) == [new]
    assert sol_before - _balances(world)[0] == 5 * 10**8


class Crash(BaseException):
    """A worker killed mid-flight: nothing after it runs, no error handling either."""


def test_a_worker_killed_after_the_write_ahead_is_followed_by_one_that_lands_that_very_transaction(world):
    rig = Rig(world)
    sol_before, _ = _balances(world)
    real_confirm = rig.lander.confirm

    def crash(plan, min_out, submission):
        raise Crash

    rig.executor.chain.confirm = crash  # type: ignore[method-assign]
    order_id = rig.submit("SOL", "PUMP", "0.5")
    with pytest.raises(Crash):
        rig.run(order_id)
    record = rig.store.get(order_id)
    assert record.status is Status.SUBMITTED and record.details["rawTransaction"]
    rig.executor.chain.confirm = real_confirm  # type: ignore[method-assign]
    # WHEN the dead worker's lease has run out and the message comes back
    later = rig.executor.clock_ms() + 60_000
    rig.executor.clock_ms = lambda: later
    assert rig.run(order_id, 2).done
    assert rig.confirmed_event(order_id)["txHash"] == record.details["txHash"]
    assert list(world.cluster.landed) == [record.details["txHash"]]
    assert sol_before - _balances(world)[0] == 5 * 10**8


def test_a_cluster_that_stops_answering_leaves_the_transaction_on_the_order(world):
    rig = Rig(world)
    from chalicelib.cluster import ClusterError

    def down(*_a, **_k):
        raise ClusterError("connection refused")

    order_id = rig.submit("SOL", "PUMP", "0.5")
    world.cluster.drop_next_sends = 1
    world.cluster.slots_per_poll = 20
    world.cluster.signature_statuses = down  # type: ignore[method-assign]
    outcome = rig.run(order_id)
    assert not outcome.done and outcome.reason == "cluster_unavailable"
    record = rig.store.get(order_id)
    assert record.details["txHash"] and not record.details.get("failedTransactions")


def test_two_equal_orders_are_two_transactions_and_both_land(world):
    rig = Rig(world, ("raydium",))
    sol_before, _ = _balances(world)
    sol, pump = rig.registry.tokens.resolve("SOL"), rig.registry.tokens.resolve("PUMP")
    # GIVEN two orders alike in every field, built on the same state with the same blockhash
    plan = rig.market.route(sol, pump, 5 * 10**8)
    floor = plan.amount_out * 9 // 10
    signed = [rig.lander.build(plan, floor, memo=f"{order}/1/1") for order in ("order-a", "order-b")]
    # THEN each is its own transaction (the memo names the order)...
    assert signed[0].signature != signed[1].signature
    # ...and each swaps, once
    for swap in signed:
        rig.lander.confirm(plan, floor, rig.lander.submit(swap))
    assert set(world.cluster.landed) == {s.signature for s in signed}
    assert sol_before - _balances(world)[0] == 2 * 5 * 10**8


def test_the_priority_fee_follows_what_writing_the_pools_costs_lately_within_the_cap(world):
    rig = Rig(world)
    plan = rig.market.route(rig.registry.tokens.resolve("SOL"), rig.registry.tokens.resolve("PUMP"), 10**9)

    def unit_price(lander: ChainLander) -> int:
        from solders.transaction import VersionedTransaction

        tx = VersionedTransaction.from_bytes(lander.build(plan, 0).raw)
        return int.from_bytes(bytes(tx.message.instructions[1].data)[1:9], "little")

    # An idle cluster: the configured price
    assert unit_price(rig.lander) == FAST.priority_fee_microlamports
    # A busy one: the 75th percentile of the recent fees on the legs' pools
    world.cluster.prioritization_fees = [0, 5_000, 40_000, 50_000, 60_000, 900_000]
    assert unit_price(rig.lander) == 60_000
    # ...but never more than the cap allows in lamports for the transaction
    capped = ChainLander(world.cluster, rig.market, world.wallet, LandingConfig(priority_fee_cap_lamports=1_000))
    tx_price = unit_price(capped)
    assert 0 < tx_price < 60_000


def test_the_dlq_gives_a_pending_transaction_no_verdict_and_confirms_a_landed_one_at_one_look(world):
    rig = Rig(world)

    def crash(plan, min_out, submission):
        raise Crash

    real_confirm = rig.lander.confirm
    rig.executor.chain.confirm = crash  # type: ignore[method-assign]
    order_id = rig.submit("SOL", "PUMP", "0.5")
    with pytest.raises(Crash):
        rig.run(order_id)
    rig.executor.chain.confirm = real_confirm  # type: ignore[method-assign]
    # WHEN its message reaches the DLQ while the transaction was never sent (its blockhash lives on)
    heights = world.cluster.height
    assert rig.executor.finish_dead_letter(order_id) is False
    # THEN the order is left as it is: no failure, no waiting on the chain
    assert rig.store.get(order_id).status is Status.SUBMITTED and world.cluster.height == heights
    # AND once the transaction landed, one look confirms it
    details = rig.store.get(order_id).details
    world.cluster.send_transaction(base64.b64decode(details["rawTransaction"]))
    assert rig.executor.finish_dead_letter(order_id) is True
    assert rig.confirmed_event(order_id)["txHash"] == details["txHash"]
    assert list(world.cluster.landed) == [details["txHash"]]
