"""Serialising order records to and from their stored attributes (shared by every store)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from chalicelib.orders import OrderRecord, OrderRequest, Status, SubscriberMode

__all__ = [
    "as_created",
    "dumps",
    "merged_details",
    "record_from_parts",
    "request_from_json",
    "request_to_json",
    "snapshot",
]


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def merged_details(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`current` updated with `changes`; a key set to None is removed (the item stays small)."""
    return {k: v for k, v in {**current, **changes}.items() if v is not None}


def request_to_dict(request: OrderRequest) -> dict[str, str]:
    data = {
        "tokenIn": request.token_in,
        "tokenOut": request.token_out,
        "amount": str(request.amount),
        "amountIn": str(request.amount_in),
        "slippage": str(request.slippage),
        "type": request.order_type,
    }
    for key, value in (
        ("limitPrice", request.limit_price),
        ("maxPrice", request.max_price),
        ("expiresInS", request.expires_in_s),
    ):
        if value is not None:
            data[key] = str(value)
    return data


def request_to_json(request: OrderRequest) -> str:
    return dumps(request_to_dict(request))


def request_from_json(text: str) -> OrderRequest:
    return request_from_dict(json.loads(text))


def request_from_dict(data: dict[str, Any]) -> OrderRequest:
    return OrderRequest(
        token_in=data["tokenIn"],
        token_out=data["tokenOut"],
        amount=Decimal(data["amount"]),
        amount_in=int(data["amountIn"]),
        slippage=Decimal(data["slippage"]),
        order_type=data.get("type", "market"),
        limit_price=Decimal(data["limitPrice"]) if data.get("limitPrice") else None,
        max_price=Decimal(data["maxPrice"]) if data.get("maxPrice") else None,
        expires_in_s=int(data["expiresInS"]) if data.get("expiresInS") else None,
    )


def record_from_parts(
    *,
    order_id: str,
    request_json: str,
    status: str,
    seq: int,
    created_at: str,
    history: list[str] | None,
    subscribers: dict[str, str] | None,
    attempts: int,
    round_: int,
    details_json: str | None,
    fingerprint: str,
    version: int = 0,
    client: str = "",
) -> OrderRecord:
    return OrderRecord(
        order_id=order_id,
        request=request_from_json(request_json),
        status=Status(status),
        seq=int(seq),
        created_at=created_at,
        history=tuple(json.loads(h) for h in (history or [])),
        subscribers={k: SubscriberMode(v) for k, v in (subscribers or {}).items()},
        attempts=int(attempts),
        round=int(round_),
        details=json.loads(details_json) if details_json else {},
        fingerprint=fingerprint,
        version=int(version),
        client=client,
    )


def snapshot(record: OrderRecord) -> dict[str, Any]:
    """What the queue message carries of an order just created: enough to execute it."""
    return {
        "createdAt": record.created_at,
        "request": request_to_dict(record.request),
        "details": record.details,
        "version": record.version,
        "client": record.client,
    }


def as_created(order_id: str, data: dict[str, Any]) -> OrderRecord:
    """The order as `snapshot` described it when it was created (pending, nothing written since)."""
    return OrderRecord(
        order_id=order_id,
        request=request_from_dict(data["request"]),
        status=Status.PENDING,
        seq=1,
        created_at=str(data["createdAt"]),
        details=dict(data.get("details") or {}),
        version=int(data.get("version", 0)),
        client=str(data.get("client") or ""),
    )
