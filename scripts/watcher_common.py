"""What the two watcher benchmarks share: AWS calls counted, percentiles, a waiting order's item."""

from __future__ import annotations

from typing import Any

import botocore.client

from chalicelib.dynamo import OrderModel
from chalicelib.orders import OrderRequest, Status, status_event, utc_now_iso
from chalicelib.records import dumps, request_to_json

AWS_CALLS: dict[str, int] = {}  # botocore operation -> calls, once count_aws_calls() is on
_real_call = botocore.client.BaseClient._make_api_call


def _counting_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
    AWS_CALLS[operation] = AWS_CALLS.get(operation, 0) + 1
    return _real_call(self, operation, params)


def count_aws_calls() -> dict[str, int]:
    """Count every botocore call from now on (all clients, pynamodb's too); the live counts."""
    botocore.client.BaseClient._make_api_call = _counting_call  # type: ignore[method-assign]
    return AWS_CALLS


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def waiting_item(order_id: str, request: OrderRequest) -> OrderModel:
    """A limit order as the engine stores it once `waiting` (in the sparse byWatch index)."""
    created = utc_now_iso()
    events = [status_event(order_id, Status.PENDING, 1), status_event(order_id, Status.WAITING, 2)]
    return OrderModel(
        order_id,
        createdAt=created,
        request=request_to_json(request),
        status="waiting",
        seq=2,
        history=[dumps(e) for e in events],
        subscribers={},
        details="{}",
        fingerprint=request.fingerprint(),
        updatedAt=created,
        version=1,
        watchKey="waiting",
    )
