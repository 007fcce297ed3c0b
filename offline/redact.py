"""Keep credentials out of the runtime's logs: query values whose name says they are secret."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["REDACTED", "redacted_path", "redacted_query"]

REDACTED = "[redacted]"
_SECRET = re.compile(r"key|token|secret|password|signature|credential|auth", re.IGNORECASE)


def redacted_query(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The query parameters with the value of any apiKey, token, signature... replaced."""
    if params is None:
        return None
    return {k: (REDACTED if _SECRET.search(str(k)) else v) for k, v in params.items()}


def redacted_path(path: str) -> str:
    """A request path with its secret query values replaced (`/x?apiKey=...` -> `/x?apiKey=[redacted]`)."""
    base, sep, query = path.partition("?")
    if not sep or not _SECRET.search(query):
        return path
    pairs = [(k, REDACTED if _SECRET.search(k) else v) for k, v in parse_qsl(query, keep_blank_values=True)]
    return f"{base}?{urlencode(pairs, safe='[]')}"
