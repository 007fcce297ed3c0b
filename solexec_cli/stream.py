"""The WebSocket half: follow one order's statuses, across dropped connections, with no repeats.

The server replays an order's whole history to every new subscriber, so after a
reconnect the client only has to drop the `seq` values it has already seen.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import websocket

__all__ = ["TERMINAL", "StreamError", "StreamTimeout", "follow_order"]

TERMINAL = frozenset({"confirmed", "failed", "cancelled", "expired"})


class StreamError(Exception):
    """The WebSocket could not be (re)opened."""


class StreamTimeout(StreamError):
    """The order did not reach a terminal status in time."""


def follow_order(
    ws_url: str, order_id: str, timeout: float = 300.0, retries: int = 5, api_key: str | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the order's status events in arrival order, each `seq` once, up to the terminal one.

    The key goes in the `x-api-key` header of the upgrade request, not in the URL (URLs get logged).
    """
    headers = [f"x-api-key: {api_key}"] if api_key else []
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    failures = 0
    url = f"{ws_url.rstrip('/')}/?orderId={order_id}"
    while True:
        try:
            conn = websocket.create_connection(url, timeout=max(1.0, deadline - time.monotonic()), header=headers)
        except websocket.WebSocketBadStatusException as exc:
            raise StreamError(f"the WebSocket API refused order {order_id}: HTTP {exc.status_code}") from None
        except (OSError, websocket.WebSocketException) as exc:
            failures += 1
            if failures > retries or time.monotonic() >= deadline:
                raise StreamError(f"cannot reach {ws_url}: {exc}") from None
            time.sleep(min(0.5 * 2**failures, 5.0))
            continue
        try:
            for event in _frames(conn, order_id, deadline):
                failures = 0
                seq = int(event.get("seq", 0))
                if seq in seen:
                    continue
                seen.add(seq)
                yield event
                if event.get("status") in TERMINAL:
                    return
        finally:
            conn.close()
        if time.monotonic() >= deadline:
            raise StreamTimeout(f"order {order_id} did not finish within {timeout:g}s")
        # The connection dropped before the terminal status: reconnect; the replay fills the gap.
        failures += 1
        if failures > retries:
            raise StreamError(f"the WebSocket kept closing before order {order_id} finished")
        time.sleep(min(0.25 * 2**failures, 5.0))


def _frames(conn: websocket.WebSocket, order_id: str, deadline: float) -> Iterator[dict[str, Any]]:
    while time.monotonic() < deadline:
        conn.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            text = conn.recv()
        except websocket.WebSocketTimeoutException:
            return
        except (OSError, websocket.WebSocketException):
            return
        if not text:
            return
        try:
            frame = json.loads(text)
        except ValueError:
            continue
        if isinstance(frame, dict) and frame.get("type") == "status" and frame.get("orderId") == order_id:
            yield frame
