"""`solexec` / `python -m solexec_cli`: submit, watch and inspect orders from a shell.

Exit codes: 0 done (an order confirmed), 1 the order failed, 2 bad input or an HTTP
or connection error, 3 gave up waiting for an order to finish, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from solexec_cli import __version__
from solexec_cli.client import ApiError, RestClient
from solexec_cli.render import kv_lines, pct, status_line, table
from solexec_cli.stream import StreamError, StreamTimeout, follow_order
from solexec_cli.triggers import trigger_fields, trigger_text

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_TIMEOUT = 0, 1, 2, 3
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_WS_URL = "ws://127.0.0.1:8001"
DEFAULT_API_KEY = "dev-key"  # the local runtime's default client (make run prints it)


class Cli:
    """One parsed command line: where the engine is, and how to print."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json = bool(getattr(args, "json", False))
        self.api_key = getattr(args, "api_key", None) or os.environ.get("SOLEXEC_API_KEY") or DEFAULT_API_KEY
        self.rest = RestClient(
            getattr(args, "url", None) or os.environ.get("SOLEXEC_URL") or DEFAULT_URL, api_key=self.api_key
        )
        self.ws_url = getattr(args, "ws_url", None) or os.environ.get("SOLEXEC_WS_URL") or DEFAULT_WS_URL

    def out(self, human: str, data: Any) -> None:
        print(json.dumps(data, separators=(",", ":")) if self.json else human, flush=True)

    def follow(self, order_id: str, token_out: str = "") -> int:
        """Print each status as it arrives; the exit code is the order's outcome."""
        last = None
        for event in follow_order(self.ws_url, order_id, timeout=self.args.timeout, api_key=self.api_key):
            last = event
            self.out(status_line(event, token_out), event)
        return EXIT_OK if last is not None and last.get("status") == "confirmed" else EXIT_FAILED


# -- commands ---------------------------------------------------------------------------


def cmd_submit(cli: Cli) -> int:
    a = cli.args
    body = {"tokenIn": a.token_in, "tokenOut": a.token_out, "amount": a.amount, "slippage": a.slippage}
    body.update(trigger_fields(a))
    headers = {"Idempotency-Key": a.idempotency_key} if a.idempotency_key else None
    order = cli.rest.call("POST", "/order", body, headers=headers)
    if not a.watch:
        human = (
            f"order {order['orderId']} {order['status']}: {order.get('amount')} {order.get('tokenIn')} -> "
            f"{order.get('tokenOut')}, slippage {pct(order.get('slippage', a.slippage))}"
            + (f", {trigger_text(order)}" if trigger_text(order) else "")
            + "\n"
            f"follow it: solexec watch {order['orderId']}"
        )
        cli.out(human, order)
        return EXIT_OK
    if not cli.json:
        print(f"order {order['orderId']}", flush=True)
    return cli.follow(order["orderId"], str(order.get("tokenOut", a.token_out)))


def cmd_watch(cli: Cli) -> int:
    order = cli.rest.call("GET", f"/order/{cli.args.order_id}")
    if not cli.json:
        print(f"order {order['orderId']}: {order.get('amount')} {order.get('tokenIn')} -> {order.get('tokenOut')}")
    return cli.follow(order["orderId"], str(order.get("tokenOut", "")))


def cmd_orders(cli: Cli) -> int:
    page = cli.rest.get("/orders", limit=cli.args.limit, status=cli.args.status)
    rows = [
        (
            o.get("createdAt"),
            o.get("orderId"),
            f"{o.get('tokenIn')}->{o.get('tokenOut')}",
            o.get("amount"),
            o.get("status"),
            o.get("dex", ""),
            o.get("amountOut", ""),
            trigger_text(o),
        )
        for o in page.get("items", [])
    ]
    cli.out(table(["created", "order", "pair", "amount", "status", "dex", "amountOut", "trigger"], rows), page)
    return EXIT_OK


def cmd_cancel(cli: Cli) -> int:
    order = cli.rest.call("DELETE", f"/order/{cli.args.order_id}")
    cli.out(f"order {order['orderId']} {order['status']}", order)
    return EXIT_OK


def cmd_tokens(cli: Cli) -> int:
    tokens = cli.rest.get("/tokens")
    cli.out(table(["symbol", "decimals", "mint"], [(t["symbol"], t["decimals"], t["mint"]) for t in tokens]), tokens)
    return EXIT_OK


def cmd_dlq(cli: Cli) -> int:
    a = cli.args
    if a.dlq_command == "list":
        page = cli.rest.get("/api/dlq/failed-orders", limit=a.limit)
        rows = []
        for item in page.get("items", []):
            o = item.get("originalOrder") or {}
            pair = f"{o.get('amount')} {o.get('tokenIn')}->{o.get('tokenOut')}"
            rows.append(
                (item.get("failedAt"), item.get("orderId"), pair, item.get("failureReason"), item.get("attemptsMade"))
            )
        human = table(["failed", "order", "order was", "reason", "attempts"], rows)
        errors = [f"  {item.get('orderId')}: {item.get('lastError')}" for item in page.get("items", [])]
        cli.out(human + ("\nlast errors:\n" + "\n".join(errors) if errors else ""), page)
    elif a.dlq_command == "stats":
        stats = cli.rest.get("/api/dlq/stats")
        cli.out(kv_lines(stats), stats)
    elif a.dlq_command == "redrive":
        result = cli.rest.call("POST", "/api/dlq/redrive")
        cli.out(kv_lines(result or {}) or "redriven", result)
    elif a.dlq_command == "clear":
        path = "/api/dlq/clear/failed" if a.keep_records else "/api/dlq/clear"
        result = cli.rest.call("DELETE", path)
        cli.out(kv_lines(result or {}) or "cleared", result)
    else:  # test
        created = cli.rest.call("POST", "/test/dlq", {})
        if not a.watch:
            cli.out(f"test order {created['orderId']} (fails on every attempt)", created)
            return EXIT_OK
        if not cli.json:
            print(f"test order {created['orderId']} (fails on every attempt)", flush=True)
        return cli.follow(created["orderId"], "USDC")
    return EXIT_OK


# -- the command line -------------------------------------------------------------------


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"want a positive integer, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    # Shared options are accepted before or after the command (`solexec --json orders`, `solexec orders --json`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help=f"REST API (env SOLEXEC_URL, else {DEFAULT_URL})")
    common.add_argument(
        "--ws-url", default=argparse.SUPPRESS, help=f"WebSocket API (env SOLEXEC_WS_URL, else {DEFAULT_WS_URL})"
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    common.add_argument(
        "--api-key",
        default=argparse.SUPPRESS,
        help=f"the client's API key (env SOLEXEC_API_KEY, else the local default {DEFAULT_API_KEY!r})",
    )
    wait = argparse.ArgumentParser(add_help=False)
    wait.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the order (default 300)")

    parser = argparse.ArgumentParser(
        prog="solexec", description="Client for the solana-exec order engine.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"solexec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    p = sub.add_parser("submit", parents=[common, wait], help="submit an order (market, limit, sniper)")
    p.add_argument("--in", dest="token_in", required=True, metavar="TOKEN", help="token to sell (symbol or mint)")
    p.add_argument("--out", dest="token_out", required=True, metavar="TOKEN", help="token to buy")
    p.add_argument("--amount", required=True, help="amount of the token sold, in whole units (1.5)")
    p.add_argument("--slippage", default="0.01", help="fraction, 0 < s <= 1 (default 0.01 = 1%%)")
    p.add_argument("--idempotency-key", help="resubmitting with the same key returns the same order")
    p.add_argument("--watch", action="store_true", help="follow the order; exit 0 if confirmed, 1 if failed")
    p.add_argument("--type", choices=("market", "limit", "sniper"), default="market", help="order type")
    p.add_argument("--limit-price", help="limit: at least this much --out per --in, after fees")
    p.add_argument("--max-price", help="sniper: at most this much --in per --out (--out may be a new mint)")
    p.add_argument("--expires-in", type=_positive_int, help="limit/sniper: seconds before it expires")
    p.set_defaults(run=cmd_submit)

    p = sub.add_parser("cancel", parents=[common], help="cancel a waiting limit or sniper order")
    p.add_argument("order_id", metavar="ID")
    p.set_defaults(run=cmd_cancel)

    p = sub.add_parser("watch", parents=[common, wait], help="follow an order to its end")
    p.add_argument("order_id", metavar="ID")
    p.set_defaults(run=cmd_watch)

    p = sub.add_parser("orders", parents=[common], help="recent orders, newest first")
    p.add_argument("--status", help="only this status (pending, routing, ..., confirmed, failed)")
    p.add_argument("--limit", type=_positive_int, default=20, help="1..100 (default 20)")
    p.set_defaults(run=cmd_orders)

    p = sub.add_parser("tokens", parents=[common], help="the supported tokens")
    p.set_defaults(run=cmd_tokens)

    dlq = sub.add_parser("dlq", parents=[common], help="the dead-letter queue")
    dsub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="action")
    d = dsub.add_parser("list", parents=[common], help="failed orders with their context")
    d.add_argument("--limit", type=_positive_int, default=20, help="1..100 (default 20)")
    dsub.add_parser("stats", parents=[common], help="failure counts")
    dsub.add_parser("redrive", parents=[common], help="send the DLQ messages back for a new round of attempts")
    d = dsub.add_parser("clear", parents=[common], help="remove the DLQ messages and the failure records")
    d.add_argument("--keep-records", action="store_true", help="purge only the messages; keep the records")
    d = dsub.add_parser("test", parents=[common, wait], help="create an order that fails every attempt (dev stage)")
    d.add_argument("--watch", action="store_true", help="follow it to `failed`")
    dlq.set_defaults(run=cmd_dlq)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[Cli], int] = args.run
    try:
        return run(Cli(args))
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except StreamTimeout as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except StreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `solexec orders | head`
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
