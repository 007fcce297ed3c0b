"""The published OpenAPI document of the REST API (`GET /openapi.json`).

Written by hand next to the code (`openapi.json`): tests/unit/test_openapi.py fails when a
route of app.py is missing from it or it names a route app.py does not have, and the
schemathesis fuzzer (tests/e2e/test_fuzz.py) drives the running stack from it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from chalice import Response

__all__ = ["DOCUMENT", "document", "load"]

DOCUMENT = Path(__file__).with_name("openapi.json")


@lru_cache(maxsize=1)
def _text() -> str:
    return DOCUMENT.read_text(encoding="utf-8")


def load() -> dict[str, Any]:
    return dict(json.loads(_text()))


def document() -> Response:
    return Response(body=_text(), status_code=200, headers={"Content-Type": "application/json"})
