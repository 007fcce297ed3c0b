"""Wiring: one place builds the engine from settings; tests pass their own parts.

Nothing here touches AWS at import: clients are created on first use, as Lambda wants.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from chalicelib.chain import SimulatedChain, SwapChain
from chalicelib.clients import ChainedDirectory, ClientDirectory, MemoryClientDirectory, parse_api_keys
from chalicelib.config import Settings, load_settings
from chalicelib.dlq import DeadLetterQueue, DeadLetterService
from chalicelib.dynamo import DynamoOrderStore, bind_tables
from chalicelib.execution import OrderExecutor, Router
from chalicelib.failures import DynamoFailureStore, FailureModel, FailureStore
from chalicelib.limits import ConnectionLimiter, FrameLimiter
from chalicelib.market import DEFAULT_TOKENS, Market, MarketConfig, TokenRegistry
from chalicelib.messaging import ApiGatewayNotifier, SqsQueue
from chalicelib.onchain_wiring import build_chain_parts
from chalicelib.ports import MessageQueue, OrderStore, StatusNotifier
from chalicelib.publisher import StatusPublisher
from chalicelib.service import OrderService, SubscriptionService
from chalicelib.stats import EngineStats
from chalicelib.wiring_order_types import OrderCanceller, OrderWatcher, attach_order_types

__all__ = ["Engine", "build_engine", "engine"]


@dataclass
class Engine:
    settings: Settings
    tokens: TokenRegistry
    store: OrderStore
    orders_queue: MessageQueue
    replay_queue: MessageQueue
    notifier: StatusNotifier
    orders: OrderService
    subscriptions: SubscriptionService
    executor: OrderExecutor
    failures: FailureStore
    dead_letters: DeadLetterService
    stats: EngineStats
    clients: ClientDirectory
    wallet: str | None = None  # the public key that signs the engine's swaps
    watcher: OrderWatcher | None = None  # limit and sniper orders (issue 17)
    canceller: OrderCanceller | None = None
    # WebSocket limits (docs/decisions/016): None when LIMITS_TABLE is unset or the limit is 0.
    connection_limits: ConnectionLimiter | None = None
    frame_limits: FrameLimiter | None = None


def _clients(settings: Settings) -> ClientDirectory:
    """API_KEYS first (local runs, tests), then the clients table when the stack has one."""
    directories: list[ClientDirectory] = [MemoryClientDirectory(parse_api_keys(settings.api_keys))]
    if settings.clients_table:
        from chalicelib.client_table import DynamoClientDirectory

        directories.append(DynamoClientDirectory(settings.clients_table))
    return ChainedDirectory(directories)


def build_engine(
    settings: Settings | None = None,
    *,
    store: OrderStore | None = None,
    orders_queue: MessageQueue | None = None,
    replay_queue: MessageQueue | None = None,
    notifier: StatusNotifier | None = None,
    market: Market | None = None,
    failures: FailureStore | None = None,
    dlq: DeadLetterQueue | None = None,
    clients: ClientDirectory | None = None,
) -> Engine:
    settings = settings or load_settings()
    bind_tables(settings.orders_table)
    store = store or DynamoOrderStore()
    orders_queue = orders_queue if orders_queue is not None else SqsQueue(settings.orders_queue_url)
    replay_queue = replay_queue if replay_queue is not None else SqsQueue(settings.replay_queue_url)
    notifier = notifier or ApiGatewayNotifier(settings.websocket_endpoint)
    FailureModel.Meta.table_name = settings.failures_table
    failures = failures or DynamoFailureStore()
    dlq = dlq if dlq is not None else SqsQueue(settings.orders_dlq_url)
    market = market or Market(MarketConfig(seed=settings.market_seed, quote_delay_ms=settings.quote_delay_ms))
    chain = SimulatedChain(
        market,
        settings.submit_delay_ms,
        settings.market_seed,
        drop_ppm=settings.chain_drop_ppm,
        expire_ppm=settings.chain_expire_ppm,
    )
    router: Router = market
    swap_chain: SwapChain = chain
    tokens, wallet = DEFAULT_TOKENS, str(chain.payer.pubkey())
    if settings.solana_rpc_url:  # a real cluster (issue 12): chalicelib/onchain_wiring.py
        parts = build_chain_parts(settings)
        router, swap_chain, tokens, wallet = parts.market, parts.chain, parts.tokens, parts.wallet
    publisher = StatusPublisher(store, notifier)
    executor = OrderExecutor(
        store,
        publisher,
        router,
        swap_chain,
        settings.retry_delays_s,
        failures,
        registry=tokens,
        lease_s=settings.attempt_lease_s,
    )
    eng = Engine(
        settings=settings,
        tokens=tokens,
        store=store,
        orders_queue=orders_queue,
        replay_queue=replay_queue,
        notifier=notifier,
        orders=OrderService(store, orders_queue),
        subscriptions=SubscriptionService(store, notifier, replay_queue),
        executor=executor,
        failures=failures,
        dead_letters=DeadLetterService(failures, dlq, orders_queue, executor, move_task=settings.dlq_move_task),
        stats=EngineStats(store, orders_queue, dlq),
        clients=clients if clients is not None else _clients(settings),
        wallet=wallet,
    )
    attach_order_types(eng, router, publisher)
    _attach_limits(eng)
    return eng


def _attach_limits(eng: Engine) -> None:
    settings = eng.settings
    if not settings.limits_table:
        return
    if settings.ws_max_connections_per_key > 0:
        probe = eng.notifier.connected if isinstance(eng.notifier, ApiGatewayNotifier) else None
        eng.connection_limits = ConnectionLimiter(
            settings.limits_table, settings.ws_max_connections_per_key, probe=probe
        )
    if settings.ws_frame_rate > 0:
        eng.frame_limits = FrameLimiter(settings.limits_table, settings.ws_frame_rate, settings.ws_frame_burst)


_engine: Engine | None = None
_lock = threading.Lock()


def engine() -> Engine:
    """The process-wide engine, built on first use (a Lambda container keeps it warm)."""
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                _engine = build_engine()
    return _engine
