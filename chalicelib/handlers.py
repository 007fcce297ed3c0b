"""The edges: Chalice requests and Lambda events in, engine calls, HTTP and WebSocket answers out.

Only here do domain errors become HTTP statuses or WebSocket error frames.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from chalice import Response

from chalicelib import console
from chalicelib.access import connection_client, request_client, require_admin
from chalicelib.bootstrap import engine
from chalicelib.clients import Unauthorized, client_from_context
from chalicelib.errors import EngineError, InvalidOrder, OrderNotFound
from chalicelib.launch import launch_token
from chalicelib.limits import TooManyConnections
from chalicelib.logs import logger
from chalicelib.metrics import flush as flush_metrics
from chalicelib.orders import OrderRecord
from chalicelib.records import as_created
from chalicelib.service import ConnectionNotReady, error_body
from chalicelib.validation import parse_json_body, parse_order

__all__ = [
    "cancel_order",
    "console_page",
    "contract_errors",
    "dlq_clear",
    "dlq_failed_orders",
    "dlq_redrive",
    "dlq_stats",
    "engine_stats",
    "get_order",
    "health",
    "launch_test_token",
    "list_orders",
    "list_tokens",
    "process_orders",
    "process_replays",
    "submit_order",
    "sweep",
    "watch",
    "ws_connect",
    "ws_disconnect",
    "ws_message",
]

_JSON: dict[str, str | list[str]] = {"Content-Type": "application/json"}


def _json(body: Any, status: int = 200) -> Response:
    return Response(body=json.dumps(body, separators=(",", ":"), default=str), status_code=status, headers=_JSON)


def _error(error: EngineError, status: int | None = None) -> Response:
    if error.code == "payload_too_large":
        status = 413
    return _json(error_body(error), status or error.status)


def _guard(handler: Callable[[], Response]) -> Response:
    """Map domain errors to 4xx; anything unexpected is logged and is a 503, never a stack trace."""
    try:
        return handler()
    except EngineError as exc:
        return _error(exc)
    except Exception:  # noqa: BLE001
        logger.exception("request failed")
        return _json({"error": "unavailable", "message": "the engine could not complete the request; retry"}, 503)


# -- REST -------------------------------------------------------------------------------


def contract_errors(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Give Chalice's own errors (405, 415, ...) the contract's `{"error", "message"}` shape."""
    response = get_response(event)
    body = response.body
    if response.status_code < 400:
        return response
    if isinstance(body, str) and body.startswith("{"):
        try:
            body = json.loads(body)
        except ValueError:
            return response
    if not isinstance(body, dict) or "Code" not in body:
        return response
    code = re.sub(r"(?<!^)(?=[A-Z])", "_", str(body["Code"]).removesuffix("Error")).lower()
    response.body = json.dumps({"error": code, "message": str(body.get("Message", ""))})
    return response


def submit_order(request: Any, *, test_failure: bool = False) -> Response:
    def run() -> Response:
        eng = engine()
        client = request_client(request.context)
        body = parse_json_body(request.raw_body, eng.settings.max_body_bytes)
        order = parse_order(body, eng.tokens)
        key = _header(request, "idempotency-key")
        submission = eng.orders.submit(order, key, test_failure=test_failure, client=client.name)
        return _json(submission.record.to_public(), 201 if submission.created else 200)

    return _guard(run)


def _test_endpoints_enabled(eng: Any) -> None:
    if not eng.settings.test_endpoints:
        raise OrderNotFound("no such route on this stage")


def submit_test_orders(request: Any) -> Response:
    def run() -> Response:
        client = require_admin(request.context)
        eng = engine()
        _test_endpoints_enabled(eng)
        body = parse_json_body(request.raw_body or b"{}", eng.settings.max_body_bytes)
        count = body.get("count") if isinstance(body, dict) else None
        if isinstance(count, bool) or count is None or count != int(count) or not 1 <= int(count) <= 100:
            raise InvalidOrder("count must be an integer from 1 to 100", field="count")
        ids = [_test_order(eng, client.name).order_id for _ in range(int(count))]
        return _json({"orderIds": ids}, 201)

    return _guard(run)


def submit_test_order(request: Any) -> Response:
    def run() -> Response:
        client = require_admin(request.context)
        eng = engine()
        _test_endpoints_enabled(eng)
        return _json({"orderId": _test_order(eng, client.name).order_id, "status": "pending"}, 201)

    return _guard(run)


def _test_order(eng: Any, client: str) -> Any:
    order = parse_order({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.1", "slippage": "0.01"}, eng.tokens)
    return eng.orders.submit(order, None, test_failure=True, client=client).record


def get_order(order_id: str, request: Any) -> Response:
    return _guard(lambda: _json(engine().orders.get(order_id, request_client(request.context).name).to_public()))


def list_orders(request: Any) -> Response:
    def run() -> Response:
        params = _query(request, {"limit", "status", "nextToken"})
        client = request_client(request.context).name
        items, token = engine().orders.list_recent(
            _limit(params), params.get("status"), params.get("nextToken"), client
        )
        return _json({"items": [r.to_public() for r in items], "nextToken": token})

    return _guard(run)


def dlq_failed_orders(request: Any) -> Response:
    def run() -> Response:
        require_admin(request.context)
        params = _query(request, {"limit", "nextToken"})
        limit = _limit(params)
        try:
            items, token = engine().dead_letters.list(limit, params.get("nextToken"))
        except (ValueError, TypeError, KeyError):
            raise InvalidOrder(
                "nextToken is not one this API returned", field="nextToken", code="invalid_request"
            ) from None
        return _json({"items": items, "nextToken": token})

    return _guard(run)


def _admin(request: Any, answer: Callable[[], Any]) -> Response:
    def run() -> Response:
        require_admin(request.context)
        return _json(answer())

    return _guard(run)


def engine_stats(request: Any) -> Response:
    return _admin(request, lambda: engine().stats.snapshot())


def dlq_stats(request: Any) -> Response:
    return _admin(request, lambda: engine().dead_letters.stats())


def dlq_clear(request: Any, *, keep_records: bool) -> Response:
    return _admin(request, lambda: engine().dead_letters.clear(keep_records=keep_records))


def dlq_redrive(request: Any) -> Response:
    return _admin(request, lambda: engine().dead_letters.redrive())


def _query(request: Any, allowed: set[str]) -> dict[str, str]:
    """The query parameters, refusing any the route does not take (as unknown body fields are)."""
    params: dict[str, str] = request.query_params or {}
    unknown = sorted(set(params) - allowed)
    if unknown:
        name = unknown[0][:40]
        raise InvalidOrder(
            f"unknown query parameter {name!r}: this route takes {', '.join(sorted(allowed))}",
            field=name,
            code="invalid_request",
        )
    return params


def _limit(params: dict[str, str]) -> int:
    text = params.get("limit", "20")
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise InvalidOrder("limit must be an integer from 1 to 100", field="limit", code="invalid_request")
    return int(text)


def list_tokens() -> Response:
    return _json([{"symbol": t.symbol, "mint": t.mint, "decimals": t.decimals} for t in engine().tokens.all()])


def console_page(request: Any) -> Response:
    return console.index(request, engine().settings)


def health() -> Response:
    try:
        eng = engine()
        eng.store.get("health-check")
        body = {"status": "ok", "stage": eng.settings.stage}
        if eng.wallet:
            body["wallet"] = eng.wallet  # the signer's public key (contract: local Solana cluster)
        return _json(body)
    except Exception as exc:  # noqa: BLE001
        logger.exception("health check failed")
        return _json({"status": "unavailable", "error": type(exc).__name__}, 503)


def _header(request: Any, name: str) -> str | None:
    headers = request.headers or {}
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None


# -- limit and sniper orders (issue 17) ------------------------------------------------


def cancel_order(order_id: str, request: Any) -> Response:
    def run() -> Response:
        client = request_client(request.context).name
        return _json(_order_types(engine()).canceller.cancel(order_id, client).to_public())

    return _guard(run)


def launch_test_token(request: Any) -> Response:
    def run() -> Response:
        require_admin(request.context)
        eng = engine()
        _test_endpoints_enabled(eng)
        body = parse_json_body(request.raw_body or b"{}", eng.settings.max_body_bytes)
        return _json(launch_token(eng.settings.solana_rpc_url, body), 201)

    return _guard(run)


def watch() -> dict[str, Any]:
    """Scheduled: tick the watcher for most of a minute (docs/decisions/012)."""
    eng = _order_types(engine())
    summary = eng.watcher.run(eng.settings.watch_window_s, eng.settings.watch_tick_s)
    if summary["triggered"] or summary["expired"]:
        logger.info("watch", extra=summary)
    return summary


def _order_types(eng: Any) -> Any:
    if eng.watcher is None or eng.canceller is None:
        raise RuntimeError("the engine was built without its order-type parts")
    return eng


# -- WebSocket --------------------------------------------------------------------------


def ws_connect(event: Any) -> Response | None:
    raw = event.to_dict()
    query = raw.get("queryStringParameters") or {}
    order_id = query.get("orderId")
    eng = engine()
    limits = eng.connection_limits
    try:
        client = connection_client(raw)
        if limits is not None:
            limits.admit(client, event.connection_id)  # 429 too_many_connections above the key's maximum
        try:
            eng.subscriptions.connect(event.connection_id, order_id, client)
        except OrderNotFound:
            if limits is not None:
                limits.release(client, event.connection_id)  # a refused connect gets no $disconnect
            raise
    except (OrderNotFound, Unauthorized, TooManyConnections) as exc:
        return _error(exc)
    return None


def ws_disconnect(event: Any) -> None:
    """Frees the connection's slot in its key's count (best-effort on AWS: see docs/decisions/016)."""
    eng = engine()
    client = client_from_context(event.to_dict().get("requestContext"))
    if eng.connection_limits is not None and client is not None:
        eng.connection_limits.release(client.name, event.connection_id)


def ws_message(event: Any) -> None:
    eng = engine()
    connection_id = event.connection_id
    try:
        client = client_from_context(event.to_dict().get("requestContext"))
        if client is None:
            raise Unauthorized("this connection was not authorized on $connect")
        if eng.frame_limits is not None:
            _take_frame(eng.frame_limits, connection_id)  # error frame `throttled` above the connection's rate
        if len((event.body or "").encode("utf-8", "surrogatepass")) > eng.settings.max_frame_bytes:
            raise InvalidOrder(f"frames are limited to {eng.settings.max_frame_bytes} bytes", code="payload_too_large")
        try:
            frame = json.loads(event.body or "")
        except ValueError:
            raise InvalidOrder("the frame is not JSON", code="invalid_json") from None
        if not isinstance(frame, dict):
            raise InvalidOrder("the frame must be a JSON object", code="invalid_frame")
        action, order_id = frame.get("action"), frame.get("orderId")
        if action not in ("subscribe", "unsubscribe"):
            raise InvalidOrder(
                f"unknown action {str(action)[:40]!r}: use subscribe or unsubscribe", code="unknown_action"
            )
        if not isinstance(order_id, str) or not order_id:
            raise InvalidOrder("orderId is required", field="orderId", code="invalid_frame")
        if action == "subscribe":
            eng.subscriptions.subscribe(connection_id, order_id, client.name)
        else:
            eng.subscriptions.unsubscribe(connection_id, order_id)
    except EngineError as exc:
        eng.notifier.post(connection_id, {"type": "error", **error_body(exc)})


def _take_frame(limiter: Any, connection_id: str) -> None:
    """The frame's rate; a limiter that cannot answer lets the frame through (logged), never a 500 frame."""
    try:
        limiter.take(connection_id)
    except EngineError:
        raise
    except Exception:  # noqa: BLE001
        logger.exception("frame limiter unavailable; frame allowed", extra={"connectionId": connection_id})


# -- scheduled ---------------------------------------------------------------------------


def sweep() -> dict[str, Any]:
    """Once a minute: re-queue stranded orders and give dead letters their records."""
    eng = engine()
    requeued = eng.orders.requeue_stranded(eng.settings.stranded_after_s)
    reconciled = eng.dead_letters.reconcile()
    logger.info("sweep", extra={"requeued": requeued, "reconciled": reconciled})
    return {"requeued": requeued, "reconciled": reconciled}


# -- SQS consumers ----------------------------------------------------------------------


class RetryLater(Exception):
    """Marks a record failed in the partial batch response; its visibility is already set."""


def process_orders(event: Any) -> dict[str, Any]:
    eng = engine()

    def handle(record: SQSRecord) -> None:
        body = json.loads(record.body)
        receive_count = int(record.attributes.approximate_receive_count or 1)
        outcome = eng.executor.run(body["orderId"], receive_count, int(body.get("round", 1)), created=_created(body))
        if outcome.done:
            return
        eng.orders_queue.change_visibility(record.receipt_handle, outcome.retry_in_s or 0)
        raise RetryLater(outcome.reason)

    return _batch(event, handle)


def _created(body: dict[str, Any]) -> OrderRecord | None:
    """The order as created, when the message carries it (a message without it is read from the table)."""
    try:
        return as_created(str(body["orderId"]), body["order"]) if isinstance(body.get("order"), dict) else None
    except (KeyError, ValueError, TypeError, ArithmeticError):
        logger.warning("unreadable order in the message; reading the table", extra={"orderId": body["orderId"]})
        return None


def process_replays(event: Any) -> dict[str, Any]:
    eng = engine()

    def handle(record: SQSRecord) -> None:
        body = json.loads(record.body)
        receive_count = int(record.attributes.approximate_receive_count or 1)
        try:
            eng.subscriptions.replay(body["orderId"], body["connectionId"], redelivered=receive_count > 1)
        except ConnectionNotReady:
            if receive_count >= 3:
                eng.subscriptions.give_up_replay(body["orderId"], body["connectionId"])
                return
            eng.replay_queue.change_visibility(record.receipt_handle, 1)
            raise

    return _batch(event, handle)


def _batch(event: Any, handle: Callable[[SQSRecord], None]) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS)
    try:
        response = process_partial_response(
            event=event.to_dict(), record_handler=handle, processor=processor, context=event.context
        )
    finally:
        flush_metrics()
    return dict(response)
