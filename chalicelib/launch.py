"""POST /test/launch: a new mint now and its pool later, on the local cluster (dev stage)."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from chalicelib.errors import EngineError, InvalidOrder

__all__ = ["LaunchUnavailable", "launch_token"]


class LaunchUnavailable(EngineError):
    code = "launch_unavailable"
    status = 409


def launch_token(rpc_url: str | None, body: Any) -> dict[str, Any]:
    """Ask the local cluster (`POST /_localnet/launch`) for a mint and, after afterMs, its pool."""
    if not rpc_url:
        raise LaunchUnavailable("no local cluster: SOLANA_RPC_URL is not set")
    if not isinstance(body, dict):
        raise InvalidOrder("the body must be a JSON object")
    allowed = {"symbol", "decimals", "afterMs", "dex", "price", "solDepth", "openInS"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidOrder(f"unknown field(s): {', '.join(k[:40] for k in unknown[:5])}", field=unknown[0][:40])
    payload = {k: (int(v) if k in ("decimals", "afterMs", "openInS") and _integral(v) else v) for k, v in body.items()}
    for key in ("price", "solDepth"):
        if key in payload:
            payload[key] = str(payload[key])
    parts = urlsplit(rpc_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request(
            "POST", "/_localnet/launch", json.dumps(payload, default=str), {"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        status, raw = response.status, response.read()
    except OSError as exc:
        raise LaunchUnavailable(f"the local cluster did not answer: {exc}") from None
    finally:
        conn.close()
    try:
        answer = json.loads(raw or b"{}")
    except ValueError:
        answer = {}
    if status == 404:
        raise LaunchUnavailable("this cluster has no launch endpoint (not a local cluster)")
    if 400 <= status < 500:
        raise InvalidOrder(str(answer.get("message") or answer.get("error") or "launch refused"))
    if status >= 300:
        raise LaunchUnavailable(f"the local cluster answered {status}")
    return {k: answer[k] for k in ("mint", "pool", "dex", "symbol", "decimals") if k in answer}


def _integral(value: Any) -> bool:
    try:
        return not isinstance(value, bool) and int(value) == value
    except (TypeError, ValueError):
        return False
