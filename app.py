"""The Chalice app: routes and event handlers, each one line into chalicelib.handlers."""

from __future__ import annotations

from typing import Any

from chalice import Chalice, Response

from chalicelib import access, console, handlers, openapi

app = Chalice(app_name="solana-exec")
app.experimental_feature_flags.update(["WEBSOCKETS"])

_BODY_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]


@app.middleware("http")
def contract_errors(event: Any, get_response: Any) -> Response:
    return handlers.contract_errors(event, get_response)


@app.authorizer(ttl_seconds=300, header="x-api-key")
def client_key(auth_request: Any) -> dict[str, Any]:
    return access.authorize_rest(auth_request)


@app.lambda_function(name="ws_authorizer")
def ws_authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return access.authorize_ws(event)


@app.route("/order", methods=["POST"], content_types=_BODY_TYPES, authorizer=client_key, api_key_required=True)
def submit_order() -> Response:
    return handlers.submit_order(app.current_request)


@app.route("/order/{order_id}", methods=["GET"], authorizer=client_key, api_key_required=True)
def get_order(order_id: str) -> Response:
    return handlers.get_order(order_id, app.current_request)


@app.route("/order/{order_id}", methods=["DELETE"], authorizer=client_key, api_key_required=True)
def cancel_order(order_id: str) -> Response:
    return handlers.cancel_order(order_id, app.current_request)


@app.route("/orders", methods=["GET"], authorizer=client_key, api_key_required=True)
def list_orders() -> Response:
    return handlers.list_orders(app.current_request)


@app.route("/tokens", methods=["GET"], authorizer=client_key, api_key_required=True)
def list_tokens() -> Response:
    return handlers.list_tokens()


@app.route("/health", methods=["GET"])
def health() -> Response:
    return handlers.health()


@app.route("/api/stats", methods=["GET"], authorizer=client_key, api_key_required=True)
def engine_stats() -> Response:
    return handlers.engine_stats(app.current_request)


@app.route("/api/dlq/failed-orders", methods=["GET"], authorizer=client_key, api_key_required=True)
def dlq_failed_orders() -> Response:
    return handlers.dlq_failed_orders(app.current_request)


@app.route("/api/dlq/stats", methods=["GET"], authorizer=client_key, api_key_required=True)
def dlq_stats() -> Response:
    return handlers.dlq_stats(app.current_request)


@app.route("/api/dlq/clear", methods=["DELETE"], authorizer=client_key, api_key_required=True)
def dlq_clear() -> Response:
    return handlers.dlq_clear(app.current_request, keep_records=False)


@app.route("/api/dlq/clear/failed", methods=["DELETE"], authorizer=client_key, api_key_required=True)
def dlq_clear_failed() -> Response:
    return handlers.dlq_clear(app.current_request, keep_records=True)


@app.route("/api/dlq/redrive", methods=["POST"], authorizer=client_key, api_key_required=True)
def dlq_redrive() -> Response:
    return handlers.dlq_redrive(app.current_request)


@app.route("/test/dlq", methods=["POST"], content_types=_BODY_TYPES, authorizer=client_key, api_key_required=True)
def submit_test_order() -> Response:
    return handlers.submit_test_order(app.current_request)


@app.route("/test/dlq/bulk", methods=["POST"], content_types=_BODY_TYPES, authorizer=client_key, api_key_required=True)
def submit_test_orders() -> Response:
    return handlers.submit_test_orders(app.current_request)


@app.route("/test/launch", methods=["POST"], content_types=_BODY_TYPES, authorizer=client_key, api_key_required=True)
def launch_test_token() -> Response:
    return handlers.launch_test_token(app.current_request)


@app.route("/", methods=["GET"])
def console_page() -> Response:
    return handlers.console_page(app.current_request)


@app.route("/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    return openapi.document()


@app.route("/console/{name}", methods=["GET"])
def console_asset(name: str) -> Response:
    return console.asset(name)


@app.on_ws_connect()
def ws_connect(event: Any) -> Response | None:
    return handlers.ws_connect(event)


@app.on_ws_disconnect()
def ws_disconnect(event: Any) -> None:
    handlers.ws_disconnect(event)


@app.on_ws_message()
def ws_message(event: Any) -> None:
    handlers.ws_message(event)


@app.schedule("rate(1 minute)")
def sweeper(event: Any) -> dict[str, Any]:
    return handlers.sweep()


@app.schedule("rate(1 minute)")
def order_watcher(event: Any) -> dict[str, Any]:
    return handlers.watch()


@app.on_sqs_message(queue="solana-exec-orders", batch_size=1, maximum_concurrency=10)
def order_worker(event: Any) -> dict[str, Any]:
    return handlers.process_orders(event)


@app.on_sqs_message(queue="solana-exec-ws-replay", batch_size=1)
def ws_replay(event: Any) -> dict[str, Any]:
    return handlers.process_replays(event)
