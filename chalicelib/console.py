"""The web console's edge: serves the page and its assets from `chalicelib/console/`.

The page needs one thing it cannot work out for itself, the WebSocket URL (locally
the WebSocket API listens on another port; on AWS it is another API), so `index`
writes it into `<meta name="ws-url">`. Everything else the page derives from
`location`, which keeps it working under the `/api/` stage path.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from chalice import Response

from chalicelib.config import Settings

__all__ = ["asset", "index", "websocket_url"]

ASSETS = Path(__file__).with_name("console")
# Text types only: Chalice passes these through API Gateway untouched (no binary handling).
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
_WS_META = '<meta name="ws-url" content="">'


def index(request: Any, settings: Settings) -> Response:
    """The page, with the WebSocket URL for this request written into it."""
    headers = request.headers or {}
    url = websocket_url(headers.get("host", ""), settings)
    page = _read("index.html").replace(_WS_META, f'<meta name="ws-url" content="{html.escape(url)}">', 1)
    return _text(page, _CONTENT_TYPES[".html"])


def asset(name: str) -> Response:
    """One file of the console by bare name (`app.js`); anything else is a 404."""
    path = ASSETS / name
    content_type = _CONTENT_TYPES.get(path.suffix)
    if "/" in name or "\\" in name or name.startswith(".") or content_type is None or not path.is_file():
        return _text("not found\n", "text/plain; charset=utf-8", 404)
    return _text(_read(name), content_type)


def websocket_url(host_header: str, settings: Settings) -> str:
    """Where the browser should open the WebSocket.

    `WS_PUBLIC_URL` wins (a proxy in front of the local runtime); on AWS the template
    sets `WEBSOCKET_API_URL` (wss://.../api), or the management endpoint
    `WEBSOCKET_API_ENDPOINT` (https://.../api) says the same; locally it is the host the
    browser used, on the WebSocket port.
    """
    if settings.console_websocket_url:
        return settings.console_websocket_url
    endpoint = settings.websocket_endpoint or ""
    if endpoint.startswith(("https://", "http://")):
        return "ws" + endpoint[len("http") :]
    return f"ws://{_hostname(host_header)}:{settings.ws_port}"


def _hostname(host_header: str) -> str:
    host = host_header.strip() or "127.0.0.1"
    if host.startswith("["):  # [::1]:8000
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _read(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def _text(body: str, content_type: str, status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
