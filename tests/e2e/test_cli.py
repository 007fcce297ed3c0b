"""`solexec` (python -m solexec_cli) against the local runtime: output, --json and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator

import pytest

from tests.support import ROOT, Runtime, http, own_runtime, wait_until

pytestmark = pytest.mark.e2e

LIFECYCLE = ["pending", "routing", "building", "submitted", "confirmed"]


@pytest.fixture(scope="module")
def cli_rt(tmp_path_factory) -> Iterator[Runtime]:
    env = {
        "DEX_QUOTE_MS": "20",
        "DEX_SUBMIT_MS": "300-500",
        "RETRY_DELAYS_S": "1,1,1",
        "API_KEYS": "dev:dev-key:admin,carol:key-carol",
    }
    with own_runtime(tmp_path_factory.mktemp("cli"), env) as rt:
        yield rt


def solexec(rt: Runtime, *args: str, timeout: float = 60, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOLEXEC_URL": rt.rest, "SOLEXEC_WS_URL": rt.ws}
    env.pop("SOLEXEC_API_KEY", None)
    if key is not None:
        env["SOLEXEC_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "solexec_cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_submit_watch_prints_every_status_and_exits_0_on_confirmed(cli_rt):
    # WHEN an order is submitted and watched
    run = solexec(cli_rt, "submit", "--in", "SOL", "--out", "USDC", "--amount", "1.5", "--slippage", "0.01", "--watch")
    # THEN one line per status, in order, with the key fields, and exit 0
    seen = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr[-2000:]}"
    assert run.returncode == 0, seen
    header, *lines = run.stdout.strip().splitlines()
    order_id = header.split()[-1]
    assert [line.split()[1] for line in lines] == LIFECYCLE, seen
    routing, building, confirmed = lines[1], lines[2], lines[4]
    assert "raydium" in routing and "meteora" in routing and "->" in routing, seen
    _, stored = http("GET", f"{cli_rt.rest}/order/{order_id}")
    assert f"minAmountOut {stored['minAmountOut']} USDC" in building, (stored, seen)
    assert stored["txHash"] in confirmed and stored["executedPrice"] in confirmed, (stored, seen)


def test_json_output_parses(cli_rt):
    run = solexec(cli_rt, "submit", "--in", "usdc", "--out", "sol", "--amount", "25", "--json")
    assert run.returncode == 0, run.stderr
    order = json.loads(run.stdout)
    assert order["status"] == "pending" and order["tokenIn"] == "USDC"
    # `--watch --json` is one JSON status event per line
    run = solexec(cli_rt, "watch", order["orderId"], "--json")
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert [e["status"] for e in events] == LIFECYCLE and [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    listing = json.loads(solexec(cli_rt, "--json", "orders", "--limit", "2").stdout)
    assert len(listing["items"]) == 2 and listing["items"][0]["orderId"] == order["orderId"]


def test_watching_an_order_that_fails_exits_1(cli_rt):
    # GIVEN an order that fails on every attempt
    status, created = http("POST", f"{cli_rt.rest}/test/dlq", {})
    assert status == 201
    # WHEN it is watched
    run = solexec(cli_rt, "watch", created["orderId"])
    # THEN every attempt shows, the last line is the failure, and the exit code is 1
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert "attempt 2" in run.stdout and "attempt 4" in run.stdout
    assert lines[-1].split()[1] == "failed" and "after 4 attempt(s)" in lines[-1]
    # AND the dead-letter commands see it
    failed = json.loads(solexec(cli_rt, "dlq", "list", "--json").stdout)
    assert created["orderId"] in [item["orderId"] for item in failed["items"]]
    stats = solexec(cli_rt, "dlq", "stats")
    assert stats.returncode == 0 and "failureRecords" in stats.stdout


def test_bad_input_and_http_errors_exit_2_with_the_message(cli_rt):
    run = solexec(cli_rt, "submit", "--in", "SOL", "--out", "USDC", "--amount", "-1")
    assert run.returncode == 2 and run.stderr == "error: amount: amount must be positive\n"
    run = solexec(cli_rt, "submit", "--in", "SOL", "--out", "NOPE", "--amount", "1")
    assert run.returncode == 2 and run.stderr.startswith("error: tokenOut: ")
    run = solexec(cli_rt, "watch", "no-such-order")
    assert run.returncode == 2 and run.stderr.startswith("error: ")
    run = solexec(cli_rt, "orders", "--limit", "0")
    assert run.returncode == 2 and "--limit" in run.stderr
    run = solexec(cli_rt, "--url", "http://127.0.0.1:9", "tokens")
    assert run.returncode == 2 and "cannot reach http://127.0.0.1:9" in run.stderr


def test_the_key_comes_from_api_key_or_solexec_api_key(cli_rt):
    # a wrong key: the contract's 401, exit 2
    run = solexec(cli_rt, "orders", key="wrong")
    assert run.returncode == 2 and "x-api-key" in run.stderr, run.stderr
    # carol's key from the environment: her order, watched over the WebSocket with the same key
    run = solexec(
        cli_rt, "submit", "--in", "SOL", "--out", "USDC", "--amount", "1", "--json", "--watch", key="key-carol"
    )
    assert run.returncode == 0, run.stderr
    order_id = json.loads(run.stdout.splitlines()[0])["orderId"]
    assert http("GET", f"{cli_rt.rest}/order/{order_id}")[0] == 404  # not the dev client's order
    # --api-key wins over the environment; a non-admin key cannot read the dead letters
    run = solexec(cli_rt, "--api-key", "key-carol", "dlq", "stats", key="wrong")
    assert run.returncode == 2 and "admin" in run.stderr, run.stderr
    run = solexec(cli_rt, "watch", order_id, "--api-key", "key-carol", key="wrong")
    assert run.returncode == 0 and "confirmed" in run.stdout, run.stdout + run.stderr


def test_the_console_script_points_at_main():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["solexec"] == "solexec_cli.__main__:main"
    assert project["tool"]["setuptools"]["packages"] == ["solexec_cli"]


def test_watch_follows_the_order_across_a_dropped_connection(tmp_path_factory):
    # GIVEN a slow chain, and `solexec watch` following an order over ?orderId=
    env = {"DEX_QUOTE_MS": "20", "DEX_SUBMIT_MS": "2500", "RETRY_DELAYS_S": "1,1,1"}
    with own_runtime(tmp_path_factory.mktemp("cli-drop"), env) as rt:
        _, order = http(
            "POST", f"{rt.rest}/order", {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1", "slippage": "0.01"}
        )
        order_id = order["orderId"]
        env_vars = {**os.environ, "SOLEXEC_URL": rt.rest, "SOLEXEC_WS_URL": rt.ws}
        watch = subprocess.Popen(
            [sys.executable, "-m", "solexec_cli", "watch", order_id],
            cwd=ROOT,
            env=env_vars,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            first = wait_until(lambda: _connections_for(rt, order_id), 15, "the watch's connection")[0]
            submitted = lambda: http("GET", f"{rt.rest}/order/{order_id}")[1]["status"] == "submitted"  # noqa: E731
            wait_until(submitted, 15, "the order to be submitted")
            # WHEN the server drops its connection while the transaction is on the chain
            status, _ = http("DELETE", f"{rt.ws.replace('ws://', 'http://')}/@connections/{first}")
            assert status == 204
            out, err = watch.communicate(timeout=30)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.communicate()
        # THEN it reconnected and printed every status once, in order, and exits 0 on confirmed
        assert watch.returncode == 0, err
        header, *lines = out.strip().splitlines()
        assert order_id in header
        assert [line.split()[1] for line in lines] == LIFECYCLE
        assert len(_connections_for(rt, order_id)) == 2


def _connections_for(rt: Runtime, order_id: str) -> list[str]:
    """Connection ids the runtime accepted for `?orderId=order_id`, from its JSON log."""
    ids = []
    for line in rt.log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        query = entry.get("query") or {}
        if entry.get("event") == "ws_connect" and entry.get("status") == 200 and query.get("orderId") == order_id:
            ids.append(entry["connectionId"])
    return ids


def test_a_limit_order_is_placed_listed_with_its_trigger_and_cancelled(cli_rt):
    # WHEN a limit order far above the market is placed
    run = solexec(
        cli_rt, "--json", "submit", "--in", "SOL", "--out", "USDC", "--amount", "1",
        "--type", "limit", "--limit-price", "1000000", "--expires-in", "600",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    order = json.loads(run.stdout)
    assert order["type"] == "limit" and order["limitPrice"] == "1000000" and order["expiresInS"] == 600
    wait_until(lambda: http("GET", f"{cli_rt.rest}/order/{order['orderId']}")[1]["status"] == "waiting", 20, "waiting")
    # THEN `orders --status waiting` lists it with the trigger and the time left
    listed = solexec(cli_rt, "orders", "--status", "waiting")
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if order["orderId"] in row)
    assert "limit >= 1000000 USDC/SOL" in line and " s left" in line, line
    # AND `cancel` cancels it; a second cancel is refused (409, exit 2)
    cancelled = solexec(cli_rt, "cancel", order["orderId"])
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout, cancelled.stderr
    again = solexec(cli_rt, "cancel", order["orderId"])
    assert again.returncode == 2 and "no longer be cancelled" in again.stderr, again.stderr
