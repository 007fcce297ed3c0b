"""AWS calls per order, why each is made, and the list-price cost per million orders they imply.

Prices are ASSUMPTIONS: us-east-1 on-demand list prices as published on the AWS pricing
pages in 2025 (DynamoDB after its November 2024 on-demand cut), not re-checked on the day
of a run, free tiers ignored. Change them here, in one place.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

__all__ = ["PRICES", "cost_per_million", "dynamodb_item_bytes", "justify", "per_order_table"]

PRICES: dict[str, Any] = {
    "asOf": "2025 list prices (us-east-1, on-demand); assumptions, not re-checked at run time",
    "lambdaPerMillionRequests": 0.20,
    "lambdaPerGbSecond": 0.0000166667,  # x86
    "lambdaMemoryMb": (128, 512),
    "apiGatewayRestPerMillion": 3.50,
    "websocketPerMillionMessages": 1.00,  # 32 KB units
    "websocketPerMillionConnectionMinutes": 0.25,
    "sqsPerMillionRequests": 0.40,  # standard queue, 64 KB chunks
    "dynamodbPerMillionWru": 0.625,  # on-demand, 1 KB per write unit
    "dynamodbPerMillionRru": 0.125,  # on-demand, 4 KB per strongly consistent read unit
}

# Why each call is made, read from chalicelib/ (and offline/sqs.py for the event source
# mapping). Keyed by (caller, service, operation, resource kind); "REMOVABLE:" marks calls
# that look avoidable.
_WHY: dict[tuple[str, str, str, str], str] = {
    ("api", "dynamodb", "PutItem", "orders"): (
        "POST /order stores the order (conditional put: idempotency key never creates twice)"
    ),
    ("api", "sqs", "SendMessage", "orders"): "POST /order queues the order for the worker after storing it",
    ("websocket", "dynamodb", "UpdateItem", "orders"): (
        "subscribe adds the connection to the order item and returns its history (ALL_NEW), race-free "
        "(a gone subscriber is dropped from its orders by the first push that gets 410, not on $disconnect); "
        "then hands it over to live pushes, conditional on the seq it sent (decision 011)"
    ),
    ("websocket", "dynamodb", "UpdateItem", "limits"): (
        "$connect takes a slot in its key's connection map (conditional: below WS_MAX_CONNECTIONS_PER_KEY), "
        "$disconnect frees it, and each frame takes its connection's rate (GCRA); decision 016"
    ),
    ("websocket", "dynamodb", "PutItem", "limits"): "a key's first $connect creates its connection map (decision 016)",
    ("websocket", "dynamodb", "GetItem", "limits"): (
        "a full key: read its connection map to reclaim slots a lost $disconnect left (decision 016)"
    ),
    ("websocket", "apigatewaymanagementapi", "GetConnection", ""): (
        "a full key: is a connection of its map still open (at most every 30 s per key; decision 016)"
    ),
    ("websocket", "dynamodb", "GetItem", "orders"): (
        "a status was written while subscribe sent the history: read it to send the rest (decision 011)"
    ),
    ("websocket", "apigatewaymanagementapi", "PostToConnection", ""): (
        "subscribe replays the statuses the order already has (at least `pending`)"
    ),
    ("lambda:order_worker", "dynamodb", "GetItem", "orders"): (
        "a redelivery reads the order (skip terminal, resume `submitted`); a first delivery executes from "
        "the order its message carries, its first write conditional on the item's version"
    ),
    ("lambda:order_worker", "dynamodb", "UpdateItem", "orders"): (
        "one conditional status write per step: routing, building, submitted, confirmed (returns subscribers)"
    ),
    ("lambda:order_worker", "apigatewaymanagementapi", "PostToConnection", ""): (
        "one push per status per live subscriber (routing, building, submitted, confirmed)"
    ),
    ("lambda:order_worker", "apigatewaymanagementapi", "DeleteConnection", ""): (
        "closes a ?orderId= connection after its terminal status (contract)"
    ),
    ("lambda:order_worker", "sqs", "ChangeMessageVisibility", "orders"): "a failed attempt sets its retry backoff",
    ("esm:order_worker", "sqs", "ReceiveMessage", "orders"): (
        "event source mapping polls the order queue (only as many messages as free slots; on AWS too, billed)"
    ),
    ("lambda:order_worker", "sqs", "DeleteMessageBatch", "orders"): (
        "the event source mapping deletes the message the handler finished (batch size 1: one per order; "
        "made on the invocation's thread, so counted under it)"
    ),
    ("lambda:ws_replay", "sqs", "DeleteMessageBatch", "replay"): (
        "the event source mapping deletes a finished replay message (?orderId= connections only)"
    ),
    ("lambda:ws_replay", "dynamodb", "GetItem", "orders"): (
        "a status was written while the replay sent the history: read it to send the rest (decision 011)"
    ),
    ("lambda:ws_replay", "dynamodb", "UpdateItem", "orders"): (
        "replay claims the connection (returns the history), then hands it over to live pushes conditional "
        "on the seq it sent, or removes it once a terminal order's stream is closed (?orderId= only)"
    ),
    ("lambda:ws_replay", "apigatewaymanagementapi", "DeleteConnection", ""): (
        "the replay closes a ?orderId= connection whose order was terminal, after its last status (contract)"
    ),
    ("lambda:ws_replay", "apigatewaymanagementapi", "PostToConnection", ""): "replay sends the history (?orderId=)",
    ("websocket", "sqs", "SendMessage", "replay"): "$connect with ?orderId= queues the replay (not postable yet)",
    ("esm:ws_replay", "sqs", "ReceiveMessage", "replay"): (
        "event source mapping long-polls the replay queue; time-driven (one per poll wait), not per order"
    ),
    ("schedule:sweeper", "dynamodb", "Query", "orders"): "once a minute: find stranded `pending` orders (GSI query)",
    ("schedule:sweeper", "sqs", "GetQueueAttributes", "orders"): (
        "once a minute: is the order queue backed up (then a `pending` order is most likely waiting in it)"
    ),
    ("schedule:sweeper", "sqs", "SendMessage", "orders"): "once a minute: re-queue a stranded `pending` order",
    ("schedule:sweeper", "sqs", "ReceiveMessage", "dlq"): "once a minute: reconcile dead letters without a record",
    ("schedule:sweeper", "sqs", "ReceiveMessage", "orders-dlq"): (
        "once a minute: reconcile dead letters without a record"
    ),
}


def resource_kind(resource: str) -> str:
    """`orders` / `failures` / `replay` / `dlq` / `limits` from a table or queue name."""
    name = resource.lower()
    for kind in ("failures", "replay", "dlq", "limits", "orders"):
        if kind in name:
            return kind
    return name


def justify(caller: str, service: str, operation: str, resource: str) -> str:
    why = _WHY.get((caller, service, operation, resource_kind(resource)))
    return why or "UNEXPLAINED: not in bench/costs.py's list (read chalicelib/ and add it)"


def per_order_table(calls: dict[str, Any] | None, orders: int) -> list[dict[str, Any]]:
    """The counter's rows as calls per order, with their justification, most frequent first."""
    if not calls or orders <= 0:
        return []
    rows = []
    for row in calls.get("calls", []):
        rows.append(
            {
                **row,
                "kind": resource_kind(row["resource"]),
                "perOrder": round(row["count"] / orders, 3),
                "msPerCall": round(row["ms"] / row["count"], 2) if row["count"] else None,
                "why": justify(row["caller"], row["service"], row["operation"], row["resource"]),
            }
        )
    return sorted(rows, key=lambda r: (-r["perOrder"], r["caller"], r["operation"]))


def dynamodb_item_bytes(item: dict[str, Any]) -> int:
    """Size of a low-level DynamoDB item by DynamoDB's rules (names + values, + overheads)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        digits = len(str(data).lstrip("-").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_bytes({kind[0]: v}) for v in data)
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_bytes(v) for k, v in data.items())
    return len(str(data))


def cost_per_million(
    table: list[dict[str, Any]],
    invocations: dict[str, dict[str, float]],
    orders: int,
    order_item_bytes: int,
    ws_frames_in: int,
    ws_connection_minutes: float,
) -> dict[str, Any]:
    """USD per million orders by service, at each assumed Lambda memory size.

    DynamoDB: writes to the order item are charged at the final item's size (an upper
    bound: the item grows with each status), other items at 1 unit; UpdateItem bills
    the larger of the before/after item. Reads are strongly consistent (1 unit per 4 KB).
    """
    per_order: dict[tuple[str, str], float] = defaultdict(float)
    wru = rru = 0.0
    order_wru = max(1, math.ceil(order_item_bytes / 1024))
    order_rru = max(1, math.ceil(order_item_bytes / 4096))
    for row in table:
        n = row["perOrder"]
        per_order[(row["service"], row["operation"])] += n
        if row["service"] == "dynamodb":
            big = row["kind"] == "orders"
            if row["operation"] in ("PutItem", "UpdateItem", "DeleteItem"):
                wru += n * (order_wru if big else 1)
            elif row["operation"] in ("GetItem", "Query"):
                rru += n * (order_rru if big else 1)
    sqs_requests = sum(v for (svc, _), v in per_order.items() if svc == "sqs")
    posts = per_order[("apigatewaymanagementapi", "PostToConnection")]
    ws_messages = posts + ws_frames_in / orders
    lambda_requests = sum(f["count"] for f in invocations.values()) / orders
    gb_seconds_at_1gb = sum(f["ms"] for f in invocations.values()) / 1000 / orders
    rest = invocations.get("api_handler", {}).get("count", 0) / orders
    fixed = {
        "apiGatewayRest": rest * PRICES["apiGatewayRestPerMillion"],
        "apiGatewayWebSocketMessages": ws_messages * PRICES["websocketPerMillionMessages"],
        "apiGatewayWebSocketConnectionMinutes": ws_connection_minutes * PRICES["websocketPerMillionConnectionMinutes"],
        "sqs": sqs_requests * PRICES["sqsPerMillionRequests"],
        "dynamodbWrites": wru * PRICES["dynamodbPerMillionWru"],
        "dynamodbReads": rru * PRICES["dynamodbPerMillionRru"],
        "lambdaRequests": lambda_requests * PRICES["lambdaPerMillionRequests"],
    }
    by_memory = {}
    for mb in PRICES["lambdaMemoryMb"]:
        compute = gb_seconds_at_1gb * mb / 1024 * PRICES["lambdaPerGbSecond"] * 1e6
        by_memory[f"{mb}MB"] = {
            "lambdaCompute": round(compute, 2),
            "total": round(sum(fixed.values()) + compute, 2),
        }
    return {
        "usdPerMillionOrders": {k: round(v, 2) for k, v in fixed.items()},
        "byLambdaMemory": by_memory,
        "units": {
            "orderItemBytes": order_item_bytes,
            "wruPerOrder": round(wru, 2),
            "rruPerOrder": round(rru, 2),
            "sqsRequestsPerOrder": round(sqs_requests, 2),
            "wsMessagesPerOrder": round(ws_messages, 2),
            "wsConnectionMinutesPerOrder": round(ws_connection_minutes, 4),
            "lambdaInvocationsPerOrder": round(lambda_requests, 2),
            "lambdaSecondsPerOrder": round(gb_seconds_at_1gb, 3),
        },
        "invocations": {k: {"count": int(v["count"]), "ms": round(v["ms"], 1)} for k, v in invocations.items()},
        "prices": {k: list(v) if isinstance(v, tuple) else v for k, v in PRICES.items()},
    }
