"""``python -m offline``: run a Chalice project locally in the foreground."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .heap import freeze_during_warmup
from .localstack import LocalStackUnavailable
from .logs import log, log_error
from .runtime import DEFAULT_TEMPLATE, LocalRuntime
from .sidecar import Sidecar


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m offline",
        description="Serve a Chalice app locally: REST, WebSocket API, "
        "@connections and SQS event sources, on an AWS emulator.",
    )
    parser.add_argument("--app-dir", default=".", help="Chalice project directory")
    parser.add_argument("--app", default="app:app", help="module:attribute of the app")
    parser.add_argument("--stage", default="dev", help="Chalice stage in config.json")
    parser.add_argument(
        "--rest-port",
        type=int,
        default=int(os.environ.get("REST_PORT", "8000")),
        help="REST API port (env REST_PORT, default 8000)",
    )
    parser.add_argument(
        "--ws-port",
        type=int,
        default=int(os.environ.get("WS_PORT", "8001")),
        help="WebSocket + @connections port (env WS_PORT, default 8001)",
    )
    parser.add_argument(
        "--template",
        default=DEFAULT_TEMPLATE,
        help="CloudFormation template to provision, relative to --app-dir ('' for none)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument(
        "--sidecar", action="append", default=[], metavar="CMD", help="a service to start first (offline/sidecar.py)"
    )
    parser.add_argument(
        "--optional-sidecar", action="append", default=[], metavar="CMD", help="the same, skipped if it gives up"
    )
    return parser.parse_args(argv)


def banner(runtime: LocalRuntime) -> str:
    urls = runtime.urls
    assert urls is not None
    ws_routes = ", ".join(sorted(runtime.app.websocket_handlers)) if runtime.app else ""
    sqs = ", ".join(p.cfg.name for p in runtime.pollers) or "none"
    return "\n".join(
        [
            "",
            "  Chalice app running locally",
            f"  REST API        {urls.rest}",
            f"  WebSocket API   {urls.websocket}  (also {urls.websocket}/api)",
            f"  @connections    {urls.connections}",
            f"  AWS endpoint    {urls.aws}"
            + (f"  ({runtime.emulator.kind})" if runtime.emulator and runtime.emulator.kind else ""),
            f"  WS routes       {ws_routes or 'none'}",
            f"  SQS handlers    {sqs}",
            *[f"  {car.name:<15} {car.url}" for car in runtime.sidecars if car.ready],
            "  Press Ctrl-C to stop.",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log("signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    runtime = LocalRuntime(
        app_dir=args.app_dir,
        app_ref=args.app,
        stage=args.stage,
        rest_port=args.rest_port,
        ws_port=args.ws_port,
        template=args.template or None,
        host=args.host,
        sidecars=(
            *(Sidecar(cmd) for cmd in args.sidecar),
            *(Sidecar(cmd, optional=True) for cmd in args.optional_sidecar),
        ),
    )
    try:
        urls = runtime.start()
    except LocalStackUnavailable as exc:  # a missing tool on this machine: say what to do, no traceback
        print(f"\n  LocalStack unavailable: {exc}\n", file=sys.stderr, flush=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - report and exit non-zero
        log_error("start_failed", exc)
        return 1
    freeze_during_warmup()  # this process serves requests from now on: no full-GC stalls
    print(banner(runtime), flush=True)
    print(json.dumps({"event": "ready", **urls.as_dict()}), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
