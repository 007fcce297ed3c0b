"""The web console in a real headless Chromium against the local runtime.

Skips (with the reason) only when Python `playwright` or Debian's `chromium` is missing or
cannot start; `make test` installs both. Leaves `docs/console.png` behind as the screenshot.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.config import load_settings
from chalicelib.console import websocket_url
from tests.support import DEV_KEY, ROOT, Runtime, http, own_runtime

pytestmark = pytest.mark.e2e

try:
    from playwright.sync_api import Browser, Page, sync_playwright

    HAVE_PLAYWRIGHT = True
except ImportError:  # pragma: no cover - depends on the machine
    HAVE_PLAYWRIGHT = False

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LIFECYCLE = ["pending", "routing", "building", "submitted", "confirmed"]
# The README's picture is refreshed only on request (UPDATE_SCREENSHOT=1), so a test run
# leaves the work tree clean; otherwise the screenshot still gets taken, into a temp file.
SCREENSHOT = (
    ROOT / "docs" / "console.png"
    if os.environ.get("UPDATE_SCREENSHOT")
    else Path(tempfile.gettempdir()) / "solexec-console.png"
)
JS_ERRORS: list[str] = []  # uncaught exceptions in any page; checked after each test


@pytest.fixture(scope="module")
def console_rt(tmp_path_factory) -> Iterator[Runtime]:
    env = {
        "DEX_QUOTE_MS": "20",
        "DEX_SUBMIT_MS": "300-500",
        "RETRY_DELAYS_S": "1,1,1",
        "API_KEYS": f"dev:{DEV_KEY}:admin,dora:key-dora",
    }
    with own_runtime(tmp_path_factory.mktemp("console"), env) as rt:
        yield rt


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not HAVE_PLAYWRIGHT:
        pytest.skip("Python playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as exc:  # noqa: BLE001 - any launch failure means "no browser here"
        pw.stop()
        pytest.skip(f"chromium could not be launched: {exc}")
    try:
        yield chromium
    finally:
        chromium.close()
        pw.stop()


def _open(browser: Browser, rt: Runtime, key: str = DEV_KEY) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda exc: JS_ERRORS.append(str(exc)))
    page.goto(f"{rt.rest}/")
    # a new browser profile: the console asks for the key once
    page.wait_for_selector("#key-form:not([hidden])", timeout=15_000)
    page.fill("input[name=apiKey]", key)
    page.click("#key-save")
    page.wait_for_selector("#ws-state[data-state=live]", timeout=15_000)
    page.wait_for_selector("select[name=tokenIn] option[value=SOL]", state="attached")
    return page


@pytest.fixture(scope="module")
def story(browser, console_rt) -> Iterator[Page]:
    """One page the first tests share, so the screenshot shows an order, an error and a dead letter."""
    page = _open(browser, console_rt)
    yield page
    page.close()


@pytest.fixture(autouse=True)
def no_js_errors() -> Iterator[None]:
    yield
    assert JS_ERRORS == [], "the console threw in the browser"


def _submit(page: Page, amount: str, count: int = 1) -> None:
    page.fill("input[name=amount]", amount)
    page.fill("input[name=count]", str(count))
    page.click("#submit")


def _timeline(page: Page, order_id: str) -> list[str]:
    return page.eval_on_selector_all(
        f'.card[data-order-id="{order_id}"] .timeline li', "els => els.map(e => e.dataset.status)"
    )


# -- the page and its URLs, without a browser --------------------------------------------


def test_page_and_assets_are_served_as_text_with_the_websocket_url(console_rt):
    page = _get(f"{console_rt.rest}/")
    assert page[0] == 200 and page[1].startswith("text/html")
    assert f'<meta name="ws-url" content="{console_rt.ws}">' in page[2]
    assert re.search(r'href="console/style.css"', page[2]) and 'src="console/app.js"' in page[2]
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        status, content_type, _ = _get(f"{console_rt.rest}/console/{name}")
        assert status == 200 and content_type.startswith(kind)
    assert _get(f"{console_rt.rest}/console/nothing.js")[0] == 404
    assert _get(f"{console_rt.rest}/console/..%2Fconsole.py")[0] == 404


def test_websocket_url_comes_from_the_environment_or_the_request_host():
    def url(host: str, env: dict[str, str]) -> str:
        return websocket_url(host, load_settings(env))

    assert url("10.0.0.5:8000", {}) == "ws://10.0.0.5:8001"
    assert url("box.lan:9000", {"WS_PORT": "9001"}) == "ws://box.lan:9001"
    assert url("[::1]:8000", {}) == "ws://[::1]:8001"
    assert url("x:1", {"WS_PUBLIC_URL": "wss://proxy/ws"}) == "wss://proxy/ws"
    aws = {"WEBSOCKET_API_ENDPOINT": "https://abc.execute-api.eu-west-1.amazonaws.com/api"}
    assert url("abc", aws) == "wss://abc.execute-api.eu-west-1.amazonaws.com/api"
    assert url("abc", {**aws, "WEBSOCKET_API_URL": "wss://ws.example/api"}) == "wss://ws.example/api"


def _get(url: str) -> tuple[int, str, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), ""


# -- in the browser --------------------------------------------------------------------------


def test_an_order_from_the_form_reaches_confirmed_with_its_routing_decision(story, console_rt):
    # GIVEN the console, WHEN an order is submitted through the form
    _submit(story, "1.5")
    card = story.wait_for_selector(".card[data-status=confirmed]", timeout=30_000)
    order_id = card.get_attribute("data-order-id")
    # THEN its timeline shows every status once, in order
    assert _timeline(story, order_id) == LIFECYCLE
    # AND the routing decision: both venues' quotes, the chosen venue, the legs, the slippage floor
    venues = card.eval_on_selector_all(".quotes tbody td:first-child", "els => els.map(e => e.textContent)")
    assert sorted(venues) == ["meteora", "raydium"]
    assert card.query_selector(".route .dex").inner_text() in ("raydium", "meteora", "split")
    assert "%" in card.query_selector(".route").inner_text()
    _, stored = http("GET", f"{console_rt.rest}/order/{order_id}")
    assert stored["minAmountOut"] in card.query_selector(".min-out").inner_text()
    # AND the final hash, price and amount, as stored
    outcome = card.query_selector(".outcome").inner_text()
    assert stored["txHash"] in outcome and stored["executedPrice"] in outcome and stored["amountOut"] in outcome


def test_a_bad_amount_is_shown_next_to_the_amount_field(story):
    cards = len(story.query_selector_all(".card"))
    _submit(story, "-1")
    error = story.wait_for_selector("[data-error-for=amount]:not(:empty)", timeout=10_000)
    assert "positive" in error.inner_text()
    assert story.get_attribute("input[name=amount]", "aria-invalid") == "true"
    assert len(story.query_selector_all(".card")) == cards


def test_a_test_failure_lands_in_the_dead_letter_view(story):
    story.click("#test-failure")
    failed = story.wait_for_selector(".card[data-status=failed]", timeout=45_000)
    order_id = failed.get_attribute("data-order-id")
    assert "after 4 attempts" in failed.query_selector(".outcome").inner_text()
    row = story.wait_for_selector(f'#dlq-table tr[data-order-id="{order_id}"]', timeout=15_000)
    assert "test_failure" in row.inner_text()
    story.wait_for_selector("#stats-panel:not([hidden])", timeout=10_000)
    _save_screenshot(story.screenshot(full_page=True), SCREENSHOT)
    assert SCREENSHOT.stat().st_size < 300_000


def test_reconnect_resubscribes_and_drops_repeated_statuses(browser, console_rt):
    # GIVEN a batch of orders followed over one WebSocket
    page = _open(browser, console_rt)
    try:
        _submit(page, "0.5", count=4)
        # WHEN the connection drops while they execute
        page.wait_for_function("() => document.querySelectorAll('.card .timeline li').length >= 4")
        page.evaluate("() => window.solexec.socket.ws.close()")  # the replay will repeat what arrived
        # THEN the page reconnects by itself, and every order still shows each status exactly once
        page.wait_for_function(
            "() => document.querySelectorAll('.card[data-status=confirmed]').length === 4", timeout=30_000
        )
        assert page.evaluate("() => window.solexec.socket.reconnects") >= 1
        assert page.get_attribute("#ws-state", "data-state") == "live"
        for order_id in page.eval_on_selector_all(".card", "els => els.map(e => e.dataset.orderId)"):
            assert _timeline(page, order_id) == LIFECYCLE
    finally:
        page.close()


def test_the_key_is_asked_once_kept_and_a_client_key_cannot_see_the_dead_letters(browser, console_rt):
    # GIVEN a page that was given a client's (non-admin) key
    page = _open(browser, console_rt, key="key-dora")
    try:
        # THEN the key is kept in the browser: a reload asks nothing
        assert page.evaluate("() => localStorage.getItem('solexec.apiKey')") == "key-dora"
        page.reload()
        page.wait_for_selector("#ws-state[data-state=live]", timeout=15_000)
        assert page.is_hidden("#key-form")
        # AND the dead-letter panel says it needs an admin key (the routes answer 403)
        page.wait_for_selector("#dlq[data-access=forbidden]", timeout=10_000)
        assert "admin key" in page.inner_text("#dlq-stats")
        # AND an order submitted with it is this client's: the admin's key does not see it
        _submit(page, "0.2")
        card = page.wait_for_selector(".card[data-status=confirmed]", timeout=30_000)
        order_id = card.get_attribute("data-order-id")
        assert http("GET", f"{console_rt.rest}/order/{order_id}")[0] == 404
        assert http("GET", f"{console_rt.rest}/order/{order_id}", headers={"x-api-key": "key-dora"})[0] == 200
        # WHEN the stored key stops being valid, the console asks again
        page.evaluate("() => localStorage.setItem('solexec.apiKey', 'revoked')")
        page.reload()
        page.wait_for_selector("#key-form:not([hidden])", timeout=15_000)
        assert "401" in page.inner_text("[data-error-for=apiKey]")
    finally:
        page.close()


def _save_screenshot(png: bytes, path: Path) -> None:
    """A palette PNG is a fraction of the size and looks the same for a flat UI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import io

        from PIL import Image
    except ImportError:
        path.write_bytes(png)
        return
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=96)
    image.save(path, optimize=True)


def test_a_limit_order_waits_shows_its_trigger_and_is_cancelled_from_its_card(browser, console_rt):
    page = _open(browser, console_rt)
    try:
        # WHEN a limit order far above the market is placed from the form
        page.select_option("select[name=type]", "limit")
        page.fill("input[name=price]", "1000000")
        page.fill("input[name=expiresInS]", "600")
        page.fill("input[name=count]", "1")
        with page.expect_response(lambda r: r.url.endswith("/order") and r.request.method == "POST") as posted:
            page.click("#submit")
        order_id = posted.value.json()["orderId"]
        card = f'.card[data-order-id="{order_id}"]'
        # THEN its card shows it waiting, with the trigger and the time left
        page.wait_for_selector(f'{card}[data-status="waiting"]', timeout=20_000)
        trigger = page.inner_text(f"{card} .ev-waiting .detail")
        assert "≥ 1000000" in trigger and "s left" in trigger, trigger
        # AND its cancel button cancels it; the card ends `cancelled`, nothing executed
        page.click(f"{card} .cancel")
        page.wait_for_selector(f'{card}[data-status="cancelled"]', timeout=10_000)
        assert _timeline(page, order_id) == ["pending", "waiting", "cancelled"]
        assert page.is_hidden(f"{card} .cancel")
    finally:
        page.close()
