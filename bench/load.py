"""Submit orders over REST and follow each one over the WebSocket, recording when everything happened.

Times taken here are the client's `time.time()`; the engine's event `timestamp`s come from
the same clock when it runs on this machine.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
import websocket

__all__ = ["Follower", "LoadGenerator", "OrderTrace"]

TERMINAL = ("confirmed", "failed")
AMOUNTS = ("0.1", "0.25", "0.5", "1", "2")


@dataclass
class OrderTrace:
    """One order as the client saw it."""

    index: int
    post_start: float = 0.0
    post_end: float = 0.0
    http_status: int = 0
    order_id: str | None = None
    error: str | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)  # each event plus "_recv" (client time)
    terminal: str | None = None
    terminal_at: float | None = None

    def frame(self, status: str) -> dict[str, Any] | None:
        for f in self.frames:
            if f.get("status") == status:
                return f
        return None


# The client the load runs as (the local default admin unless SOLEXEC_API_KEY says otherwise).
API_KEY = os.environ.get("SOLEXEC_API_KEY") or "dev-key"


class Follower:
    """One WebSocket connection following many orders with `{"action": "subscribe"}`."""

    def __init__(self, ws_url: str, on_frame: Callable[[dict[str, Any], float], None]) -> None:
        self.conn = websocket.create_connection(
            ws_url, timeout=10, enable_multithread=True, header=[f"x-api-key: {API_KEY}"]
        )
        self.conn.settimeout(0.5)
        self.on_frame = on_frame
        self.sent = 0
        self.received = 0
        self.other_frames: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="bench-ws-reader", daemon=True)
        self._thread.start()

    def subscribe(self, order_id: str) -> None:
        self.conn.send(json.dumps({"action": "subscribe", "orderId": order_id}))
        self.sent += 1

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                text = self.conn.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketConnectionClosedException, OSError):
                return
            now = time.time()
            if not text:
                return
            self.received += 1
            frame = json.loads(text)
            if frame.get("type") == "status":
                self.on_frame(frame, now)
            else:
                self.other_frames.append(frame)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self.conn.close()


class LoadGenerator:
    """N orders, either `concurrency` in flight at a time or `rate` per second, followed to the end."""

    def __init__(self, rest_url: str, ws_url: str, ws_connections: int = 4, clients: int = 16) -> None:
        self.rest_url = rest_url
        self.ws_url = ws_url
        self.clients = clients
        self.followers = [Follower(ws_url, self._on_frame) for _ in range(max(1, ws_connections))]
        self._by_id: dict[str, OrderTrace] = {}
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._finished = 0
        self._last_progress = time.monotonic()
        self._slots: threading.Semaphore | None = None
        self._local = threading.local()

    # -- REST ------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()  # keep-alive per client thread
            session.headers["x-api-key"] = API_KEY
        return session

    def _submit(self, trace: OrderTrace, follower: Follower) -> None:
        body: dict[str, Any] = {
            "tokenIn": "SOL",
            "tokenOut": "USDC",
            "amount": AMOUNTS[trace.index % len(AMOUNTS)],
            "slippage": 0.05,
        }
        trace.post_start = time.time()
        try:
            resp = self._session().post(f"{self.rest_url}/order", json=body, timeout=30)
            trace.post_end = time.time()
            trace.http_status = resp.status_code
            if resp.status_code != 201:
                raise RuntimeError(f"POST /order answered {resp.status_code}: {resp.text[:200]}")
            order_id = str(resp.json()["orderId"])
            with self._lock:
                trace.order_id = order_id
                self._by_id[order_id] = trace
            follower.subscribe(order_id)
        except Exception as exc:  # noqa: BLE001 - an error is a figure of the run, not a crash
            trace.post_end = trace.post_end or time.time()
            trace.error = f"{type(exc).__name__}: {exc}"[:300]
            self._finish(trace)

    # -- WebSocket -------------------------------------------------------------------

    def _on_frame(self, frame: dict[str, Any], received_at: float) -> None:
        with self._lock:
            trace = self._by_id.get(str(frame.get("orderId")))
            if trace is None:
                return
            trace.frames.append({**frame, "_recv": received_at})
            if frame.get("status") in TERMINAL and trace.terminal is None:
                trace.terminal = str(frame["status"])
                trace.terminal_at = received_at
                self._finish_locked(trace)

    def _finish(self, trace: OrderTrace) -> None:
        with self._lock:
            self._finish_locked(trace)

    def _finish_locked(self, trace: OrderTrace) -> None:
        self._finished += 1
        self._last_progress = time.monotonic()
        self._done.notify_all()
        if self._slots is not None:
            self._slots.release()

    # -- the run ---------------------------------------------------------------------

    def run(
        self,
        orders: int,
        concurrency: int | None = None,
        rate: float | None = None,
        stall_timeout_s: float = 60.0,
        ramp_s: float = 0.0,
    ) -> list[OrderTrace]:
        """Submit `orders` and wait until each is terminal (or nothing moved for `stall_timeout_s`).

        With `concurrency`, `ramp_s` opens the in-flight window evenly over that time
        instead of sending the first `concurrency` POSTs in the same millisecond.
        """
        traces = [OrderTrace(i) for i in range(orders)]
        target = self._finished + orders
        self._slots = threading.Semaphore(concurrency) if concurrency else None
        followers = itertools.cycle(self.followers)
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.clients, thread_name_prefix="bench-client") as pool:
            for trace in traces:
                if self._slots is not None:
                    self._slots.acquire()
                    if ramp_s and concurrency and trace.index < concurrency:
                        delay = start + ramp_s * trace.index / concurrency - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                elif rate:
                    delay = start + trace.index / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                pool.submit(self._submit, trace, next(followers))
            with self._done:
                self._last_progress = time.monotonic()
                while self._finished < target:
                    if time.monotonic() - self._last_progress > stall_timeout_s:
                        break
                    self._done.wait(timeout=1.0)
        return traces

    def close(self) -> None:
        for follower in self.followers:
            follower.close()

    @property
    def frames_sent(self) -> int:
        return sum(f.sent for f in self.followers)

    @property
    def frames_received(self) -> int:
        return sum(f.received for f in self.followers)

    @property
    def error_frames(self) -> list[dict[str, Any]]:
        return [frame for f in self.followers for frame in f.other_frames]
