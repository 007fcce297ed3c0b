"""The cluster over HTTP: JSON-RPC on `POST /`, a slot clock, and the local fault endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from .faults import Faults, FaultsError
from .launch import Launcher, LaunchError, PendingLaunch
from .ledger import Ledger
from .rpc import RpcMethods

__all__ = ["ClusterServer"]

MAX_BODY_BYTES = 50 * 1024 * 1024


class ClusterServer:
    """Serves one ledger; advances a slot every `slot_ms` of wall time."""

    def __init__(
        self, ledger: Ledger, slot_ms: int = 400, extra: dict[str, Any] | None = None, launcher: Launcher | None = None
    ) -> None:
        self.ledger = ledger
        self.rpc = RpcMethods(ledger)
        self.slot_ms = slot_ms
        self.extra = extra or {}  # registry etc., served for convenience
        self._default_faults = Faults(land_delay_slots=ledger.faults.land_delay_slots, drop_ppm=ledger.faults.drop_ppm)
        self._ticker: asyncio.Task[None] | None = None
        self.launcher = launcher

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/", self.handle_rpc)
        app.router.add_get("/health", self.handle_health)
        app.router.add_get("/_localnet/faults", self.get_faults)
        app.router.add_post("/_localnet/faults", self.post_faults)
        app.router.add_post("/_localnet/reset-faults", self.reset_faults)
        app.router.add_get("/_localnet/registry", self.get_registry)
        app.router.add_post("/_localnet/launch", self.launch)
        app.on_startup.append(self._start_ticker)
        app.on_cleanup.append(self._stop_ticker)
        return app

    # ------------------------------------------------------------- clock
    async def _start_ticker(self, app: web.Application) -> None:
        self._ticker = asyncio.create_task(self._tick_forever())

    async def _stop_ticker(self, app: web.Application) -> None:
        if self._ticker is not None:
            self._ticker.cancel()

    async def _tick_forever(self) -> None:
        start, first = time.monotonic(), self.ledger.slot
        period = self.slot_ms / 1000
        while True:
            target = first + int((time.monotonic() - start) / period)
            if target > self.ledger.slot:
                self.ledger.advance_to(target)  # catches up if the loop was held up
            next_at = start + (self.ledger.slot - first + 1) * period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    # -------------------------------------------------------------- routes
    async def handle_rpc(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _json({"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None})
        if isinstance(body, list):
            if not body:
                return _json({"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"}, "id": None})
            return _json([self.rpc.dispatch(item) for item in body])
        return _json(self.rpc.dispatch(body))

    async def handle_health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def get_faults(self, request: web.Request) -> web.Response:
        return _json({**self.ledger.faults.to_json(), "sent": self.ledger.sent, "dropped": self.ledger.dropped})

    async def post_faults(self, request: web.Request) -> web.Response:
        try:
            self.ledger.faults.update(json.loads(await request.read() or b"{}"))
        except (ValueError, FaultsError) as exc:
            return _json({"error": "bad_request", "message": str(exc)}, status=400)
        return await self.get_faults(request)

    async def reset_faults(self, request: web.Request) -> web.Response:
        d = self._default_faults
        self.ledger.faults = Faults(land_delay_slots=d.land_delay_slots, drop_ppm=d.drop_ppm)
        return await self.get_faults(request)

    async def launch(self, request: web.Request) -> web.Response:
        if self.launcher is None:
            return _json({"error": "not_found", "message": "this cluster has no launcher"}, status=404)
        try:
            pending, delay_s = self.launcher.prepare(json.loads(await request.read() or b"{}"))
        except (ValueError, LaunchError) as exc:
            return _json({"error": "bad_request", "message": str(exc)}, status=400)
        asyncio.get_running_loop().call_later(delay_s, self._create_launched, pending)
        return _json(pending.answer, status=201)

    def _create_launched(self, pending: PendingLaunch) -> None:
        try:
            entry = self.launcher.create(pending) if self.launcher else None
        except Exception as exc:  # noqa: BLE001 - a failed launch must not stop the cluster
            print(json.dumps({"event": "launch_failed", "mint": pending.answer["mint"], "error": str(exc)}), flush=True)
            return
        print(json.dumps({"event": "launched", **pending.answer, "entry": entry}), flush=True)

    async def get_registry(self, request: web.Request) -> web.Response:
        return _json(self.extra.get("registry", {}))


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type="application/json")
