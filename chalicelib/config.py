"""Every setting the engine reads, from the environment, in one place.

`.chalice/config.json` and `infra/resources.json` set these on AWS; the local
runtime sets the same variables from the same files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.clients import DEFAULT_API_KEYS

__all__ = ["Settings", "load_settings", "parse_delay_ms"]


def _deployed(env: Mapping[str, str]) -> bool:
    """On AWS Lambda, not in the local runtime's functions (which set OFFLINE_RUNTIME, as SAM sets AWS_SAM_LOCAL)."""
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) and not env.get("OFFLINE_RUNTIME")


def parse_delay_ms(text: str, default: tuple[int, int]) -> tuple[int, int]:
    """Parse `200` or `2000-3000` (milliseconds) into an inclusive range."""
    text = (text or "").strip()
    if not text:
        return default
    if "-" in text:
        low, high = (int(part) for part in text.split("-", 1))
    else:
        low = high = int(text)
    if low < 0 or high < low:
        raise ValueError(f"bad delay range {text!r}: want N or MIN-MAX with 0 <= MIN <= MAX")
    return low, high


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    stage: str = "dev"
    orders_table: str = "solana-exec-orders"
    failures_table: str = "solana-exec-failures"
    orders_queue_url: str = ""
    orders_dlq_url: str = ""
    replay_queue_url: str = ""
    websocket_endpoint: str | None = None
    # Where the web console's browser opens the WebSocket, when the request's host cannot
    # say: WS_PUBLIC_URL (a proxy in front of the local runtime) or WEBSOCKET_API_URL (AWS).
    console_websocket_url: str | None = None
    ws_port: int = 8001  # the local runtime's WebSocket port
    quote_delay_ms: tuple[int, int] = (200, 200)
    submit_delay_ms: tuple[int, int] = (2000, 3000)
    market_seed: int = 7
    retry_delays_s: tuple[int, ...] = (2, 4, 8)
    # DLQ redrive by StartMessageMoveTask (decision 013): DLQ_MOVE_TASK=on|off|auto; auto is on
    # against AWS itself, off against an emulator (AWS_ENDPOINT_URL): LocalStack's moved
    # messages keep their receive count, so its redrive policy dead-letters them again at once.
    dlq_move_task: bool = False
    test_endpoints: bool = False
    attempt_lease_s: int = 30
    chain_drop_ppm: int = 0
    chain_expire_ppm: int = 0
    stranded_after_s: int = 30
    max_body_bytes: int = 16 * 1024
    # The watcher of limit and sniper orders (issue 17, docs/decisions/012).
    watch_window_s: float = 50.0
    watch_tick_s: float = 2.0
    # Clients and limits (issue 15, docs/threat-model.md). API_KEYS defaults to one local admin
    # `dev:dev-key:admin` only off Lambda; deployed, keys live hashed in the clients table.
    api_keys: str = ""
    clients_table: str = ""
    max_frame_bytes: int = 4 * 1024
    # WebSocket limits (docs/decisions/016), kept in LIMITS_TABLE; 0 turns one off.
    limits_table: str = ""
    ws_max_connections_per_key: int = 100
    ws_frame_rate: float = 50.0
    ws_frame_burst: int = 100
    # A real cluster (issue 12): unset SOLANA_RPC_URL keeps the modelled market.
    solana_rpc_url: str | None = None
    solana_pools_file: str | None = None
    wallet_keypair_path: str | None = None
    wallet_secret_id: str | None = None
    wallet_public_key: str | None = None  # deployed: the secret's public key, for GET /health
    priority_fee_microlamports: int = 10_000
    priority_fee_cap_lamports: int = 100_000
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def max_attempts(self) -> int:
        """One first attempt plus one per retry delay; the DLQ redrive count must match."""
        return len(self.retry_delays_s) + 1


def _move_task(env: Mapping[str, str]) -> bool:
    choice = (env.get("DLQ_MOVE_TASK") or "auto").strip().lower()
    if choice == "auto":
        return not env.get("AWS_ENDPOINT_URL")
    return _flag(choice)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    delays = tuple(int(x) for x in env.get("RETRY_DELAYS_S", "2,4,8").split(",") if x.strip())
    return Settings(
        stage=env.get("STAGE", "dev"),
        orders_table=env.get("ORDERS_TABLE", Settings.orders_table),
        failures_table=env.get("FAILURES_TABLE", Settings.failures_table),
        orders_queue_url=env.get("ORDERS_QUEUE_URL", ""),
        orders_dlq_url=env.get("ORDERS_DLQ_URL", ""),
        replay_queue_url=env.get("REPLAY_QUEUE_URL", ""),
        websocket_endpoint=env.get("WEBSOCKET_API_ENDPOINT") or None,
        quote_delay_ms=parse_delay_ms(env.get("DEX_QUOTE_MS", ""), (200, 200)),
        submit_delay_ms=parse_delay_ms(env.get("DEX_SUBMIT_MS", ""), (2000, 3000)),
        market_seed=int(env.get("MARKET_SEED", "7")),
        retry_delays_s=delays,
        dlq_move_task=_move_task(env),
        test_endpoints=_flag(env.get("ENABLE_TEST_ENDPOINTS")),
        attempt_lease_s=int(env.get("ATTEMPT_LEASE_S", "30")),
        chain_drop_ppm=int(env.get("CHAIN_DROP_PPM", "0")),
        chain_expire_ppm=int(env.get("CHAIN_EXPIRE_PPM", "0")),
        stranded_after_s=int(env.get("STRANDED_AFTER_S", "30")),
        console_websocket_url=env.get("WS_PUBLIC_URL") or env.get("WEBSOCKET_API_URL") or None,
        ws_port=int(env.get("WS_PORT") or 8001),
        watch_window_s=float(env.get("WATCH_WINDOW_S") or 50.0),
        watch_tick_s=float(env.get("WATCH_TICK_S") or 2.0),
        api_keys=env.get("API_KEYS", "" if _deployed(env) else DEFAULT_API_KEYS),
        clients_table=env.get("CLIENTS_TABLE", ""),
        max_body_bytes=int(env.get("MAX_BODY_BYTES") or Settings.max_body_bytes),
        max_frame_bytes=int(env.get("MAX_FRAME_BYTES") or Settings.max_frame_bytes),
        limits_table=env.get("LIMITS_TABLE", ""),
        ws_max_connections_per_key=int(env.get("WS_MAX_CONNECTIONS_PER_KEY") or Settings.ws_max_connections_per_key),
        ws_frame_rate=float(env.get("WS_FRAME_RATE") or Settings.ws_frame_rate),
        ws_frame_burst=int(env.get("WS_FRAME_BURST") or Settings.ws_frame_burst),
        solana_rpc_url=env.get("SOLANA_RPC_URL") or None,
        solana_pools_file=env.get("SOLANA_POOLS_FILE") or None,
        wallet_keypair_path=env.get("WALLET_KEYPAIR_PATH") or None,
        wallet_secret_id=env.get("WALLET_SECRET_ID") or None,
        wallet_public_key=env.get("WALLET_PUBLIC_KEY") or None,
        priority_fee_microlamports=int(env.get("PRIORITY_FEE_MICROLAMPORTS") or 10_000),
        priority_fee_cap_lamports=int(env.get("PRIORITY_FEE_CAP_LAMPORTS") or 100_000),
    )
