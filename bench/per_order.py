"""The seed's client: one WebSocket per order (`?orderId=`), opened right after the POST, open loop.

Orders are started on a clock (`rate` per second, or all at once for a burst) whether or
not the engine keeps up. Each order is one asyncio task: POST /order, connect
`ws://.../?orderId=<id>`, read until the server closes the connection. What arrived on
each connection, and in what order, is checked by `check_stream`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.load import API_KEY

__all__ = ["StreamCheck", "StreamTrace", "check_stream", "run_open_loop"]

TERMINAL = ("confirmed", "failed")
AMOUNTS = ("0.1", "0.25", "0.5", "1", "2")


@dataclass
class StreamTrace:
    """One order and its own connection, as the client saw them (client `time.time()`)."""

    index: int
    scheduled_at: float = 0.0
    post_start: float = 0.0
    post_end: float = 0.0
    http_status: int = 0
    order_id: str | None = None
    ws_open_at: float | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)  # each frame plus "_recv"
    closed_at: float | None = None  # the server closed the connection
    close_code: int | None = None
    error: str | None = None
    timed_out: bool = False  # the stream was still open when the client gave up

    @property
    def terminal_at(self) -> float | None:
        for frame in self.frames:
            if frame.get("status") in TERMINAL:
                return float(frame["_recv"])
        return None

    @property
    def terminal(self) -> str | None:
        for frame in self.frames:
            if frame.get("status") in TERMINAL:
                return str(frame["status"])
        return None


@dataclass(frozen=True)
class StreamCheck:
    """What is wrong with one connection's stream (all empty/False: a correct stream)."""

    out_of_order: int  # frames whose seq is lower than one already received
    missing: list[int]  # seqs below the highest received that never arrived
    repeated: list[int]  # seqs received more than once
    no_terminal: bool  # the stream ended (or the run did) without a terminal status
    timed_out: bool  # the client gave up waiting (slow, not wrong: counted apart)
    closed_early: bool  # closed by the server before the terminal status
    after_terminal: int  # frames received after the terminal status

    @property
    def ok(self) -> bool:
        return not (self.wrong or self.no_terminal)

    @property
    def wrong(self) -> bool:
        """What arrived is wrong (as opposed to: not everything arrived before the client gave up)."""
        return bool(
            self.out_of_order
            or self.missing
            or self.repeated
            or self.closed_early
            or self.after_terminal
            or (self.no_terminal and not self.timed_out)
        )


def check_stream(trace: StreamTrace) -> StreamCheck:
    """Judge one connection: seq 1, 2, 3, ... each once, in order, the terminal one last, then the close."""
    seqs = [int(f["seq"]) for f in trace.frames if f.get("type") == "status"]
    out_of_order = sum(1 for i, seq in enumerate(seqs) if i and seq < max(seqs[:i]))
    counts: dict[int, int] = {}
    for seq in seqs:
        counts[seq] = counts.get(seq, 0) + 1
    highest = max(seqs, default=0)
    missing = [s for s in range(1, highest + 1) if s not in counts]
    repeated = sorted(s for s, n in counts.items() if n > 1)
    terminal_index = next((i for i, f in enumerate(trace.frames) if f.get("status") in TERMINAL), None)
    after = 0 if terminal_index is None else len(trace.frames) - terminal_index - 1
    return StreamCheck(
        out_of_order=out_of_order,
        missing=missing,
        repeated=repeated,
        no_terminal=terminal_index is None,
        closed_early=trace.closed_at is not None and terminal_index is None,
        after_terminal=after,
        timed_out=trace.timed_out,
    )


async def _one(
    trace: StreamTrace,
    rest: aiohttp.ClientSession,
    sockets: aiohttp.ClientSession,
    rest_url: str,
    ws_url: str,
    stream_timeout_s: float,
) -> None:
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": AMOUNTS[trace.index % len(AMOUNTS)], "slippage": 0.05}
    trace.post_start = time.time()
    try:
        async with rest.post(f"{rest_url}/order", json=body, headers={"x-api-key": API_KEY}) as resp:
            trace.http_status = resp.status
            answer = await resp.json(content_type=None)
        trace.post_end = time.time()
        if trace.http_status != 201:
            raise RuntimeError(f"POST /order answered {trace.http_status}: {str(answer)[:200]}")
        trace.order_id = str(answer["orderId"])
        url = f"{ws_url}/?orderId={trace.order_id}"
        async with sockets.ws_connect(url, heartbeat=None, headers={"x-api-key": API_KEY}) as ws:
            trace.ws_open_at = time.time()
            deadline = time.monotonic() + stream_timeout_s
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"stream still open after {stream_timeout_s:g}s")
                try:
                    msg = await ws.receive(timeout=left)
                except TimeoutError:
                    trace.timed_out = True
                    raise TimeoutError(f"stream still open after {stream_timeout_s:g}s") from None
                if msg.type is aiohttp.WSMsgType.TEXT:
                    trace.frames.append({**json.loads(msg.data), "_recv": time.time()})
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    trace.closed_at = time.time()
                    trace.close_code = ws.close_code
                    return
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    raise RuntimeError(f"websocket error: {ws.exception()}")
    except Exception as exc:  # noqa: BLE001 - an error is a figure of the run, not a crash
        trace.post_end = trace.post_end or time.time()
        trace.error = f"{type(exc).__name__}: {exc}"[:300]


async def _run(
    rest_url: str,
    ws_url: str,
    orders: int,
    rate: float | None,
    stream_timeout_s: float,
    rest_connections: int,
) -> list[StreamTrace]:
    traces = [StreamTrace(i) for i in range(orders)]
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
    # REST through a keep-alive pool; every WebSocket on its own connection (no pool limit).
    rest_pool = aiohttp.TCPConnector(limit=rest_connections, force_close=False)
    ws_pool = aiohttp.TCPConnector(limit=0)
    async with (
        aiohttp.ClientSession(connector=rest_pool, timeout=timeout) as rest,
        aiohttp.ClientSession(connector=ws_pool, timeout=timeout) as sockets,
    ):
        start = time.monotonic()
        tasks = []
        for trace in traces:
            if rate:
                delay = start + trace.index / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            trace.scheduled_at = time.time()
            tasks.append(asyncio.create_task(_one(trace, rest, sockets, rest_url, ws_url, stream_timeout_s)))
        await asyncio.gather(*tasks)
    return traces


def run_open_loop(
    rest_url: str,
    ws_url: str,
    orders: int,
    rate: float | None = None,
    stream_timeout_s: float = 120.0,
    rest_connections: int = 64,
) -> list[StreamTrace]:
    """Start `orders` orders, `rate` per second (None: all at once); wait for every stream to end."""
    return asyncio.run(_run(rest_url.rstrip("/"), ws_url.rstrip("/"), orders, rate, stream_timeout_s, rest_connections))
