"""Test helpers shared by the tiers: free ports, child processes, HTTP and WebSocket clients."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

from offline.emulator import _die_with_parent, moto_command

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = {"confirmed", "failed"}
# The local runtime's default client (API_KEYS unset): an admin. Requests carry it unless told otherwise.
DEV_KEY = "dev-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@contextlib.contextmanager
def moto_server(log_dir: Path) -> Iterator[str]:
    """A moto server of our own on a free port, stopped afterwards."""
    port = free_port()
    log = open(log_dir / f"moto-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        moto_command("127.0.0.1", port),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # a killed test run takes its servers with it
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/moto-api/", proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)
        log.close()


@dataclass
class Runtime:
    """The local runtime as a child process (so a test can SIGKILL it)."""

    endpoint: str
    log_path: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    rest_port: int = field(default_factory=free_port)
    ws_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def start(self) -> Runtime:
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "REST_PORT": str(self.rest_port),
            "WS_PORT": str(self.ws_port),
            "DEX_QUOTE_MS": "0",
            "DEX_SUBMIT_MS": "0",
            "PYTHONUNBUFFERED": "1",
            **self.env_overrides,
        }
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "offline", "--app-dir", str(ROOT), "--stage", "dev"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # a killed test run takes its runtime with it
        )
        # 60 s by default; a machine shared by several test suites may need more (RUNTIME_START_TIMEOUT_S)
        wait_http(f"{self.rest}/health", timeout=float(os.environ.get("RUNTIME_START_TIMEOUT_S", "60")), proc=self.proc)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            stop_process(self.proc, sig)


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    sent = {"Content-Type": "application/json", "x-api-key": DEV_KEY, **(headers or {})}
    req = urllib.request.Request(
        url, data=data, method=method, headers={k: v for k, v in sent.items() if v is not None}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read().decode()
            return resp.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text
    except (ConnectionError, urllib.error.URLError) as exc:
        return 0, str(exc)


def follow(
    ws_url: str,
    order_id: str | None = None,
    timeout: float = 60.0,
    subscribe: list[str] | None = None,
    after_seq: int = 0,
    api_key: str = DEV_KEY,
) -> list[dict[str, Any]]:
    """Collect every frame until the server closes, or every followed order is terminal.

    With `after_seq`, a terminal status counts only past that seq (an order redriven
    after it failed replays its old `failed` first). A followed order is done once its
    terminal status and every earlier seq have arrived, in whatever order.
    """
    url = f"{ws_url}/?apiKey={api_key}" + (f"&orderId={order_id}" if order_id else "")
    conn = websocket.create_connection(url, timeout=timeout)
    for oid in subscribe or []:
        conn.send(json.dumps({"action": "subscribe", "orderId": oid}))
    frames: list[dict[str, Any]] = []
    pending = set(subscribe or [])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                text = conn.recv()
            except websocket.WebSocketConnectionClosedException:
                break
            if not text:
                break
            frame = json.loads(text)
            frames.append(frame)
            order = frame.get("orderId")
            if subscribe and order in pending and _complete(frames, order, after_seq):
                pending.discard(order)
                if not pending:
                    break
    finally:
        conn.close()
    return frames


def _complete(frames: list[dict[str, Any]], order_id: str, after_seq: int) -> bool:
    """A terminal status past `after_seq` has arrived, and every seq before it too.

    Live pushes may overtake a replay, so the terminal frame is not always the last one.
    """
    seqs = {int(f["seq"]) for f in frames if f.get("type") == "status" and f.get("orderId") == order_id}
    terminal = [
        int(f["seq"])
        for f in frames
        if f.get("orderId") == order_id and f.get("status") in TERMINAL and int(f["seq"]) > after_seq
    ]
    return bool(terminal) and seqs >= set(range(1, max(terminal) + 1))


def statuses(frames: list[dict[str, Any]], order_id: str) -> list[dict[str, Any]]:
    """Order by seq and drop repeats, as the contract tells clients to."""
    by_seq: dict[int, dict[str, Any]] = {}
    for frame in frames:
        if frame.get("type") == "status" and frame.get("orderId") == order_id:
            by_seq.setdefault(int(frame["seq"]), frame)
    return [by_seq[s] for s in sorted(by_seq)]


@contextlib.contextmanager
def own_runtime(work_dir: Path, env: dict[str, str]) -> Iterator[Runtime]:
    """An emulator (TEST_EMULATOR) and a runtime of a test module's own (so its counts see only its orders)."""
    from tests.emulators import emulator_server

    with emulator_server(work_dir) as endpoint:
        runtime = Runtime(endpoint, work_dir / "runtime.log", env).start()
        try:
            yield runtime
        finally:
            runtime.stop()


def submit_many(rest_url: str, body: dict[str, Any], count: int) -> list[str]:
    """POST `count` orders at once (one thread each, like as many clients); their ids."""
    from concurrent.futures import ThreadPoolExecutor

    def submit(_: int) -> str:
        status, order = http("POST", f"{rest_url}/order", body)
        assert status == 201, order
        return str(order["orderId"])

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(submit, range(count)))


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """`predicate()`'s first truthy value within `timeout` seconds; fails the test otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ---------------------------------------------------------------- local Solana cluster (issue 12)
def solana_programs_available() -> bool:
    """Whether the venue program binaries are found (SOLANA_PROGRAMS_DIR or ../shared/solana/programs)."""
    from localnet.programs import programs_dir

    found = programs_dir()
    return found is not None and all((found / f).is_file() for f in ("raydium_cp_swap.so", "meteora_dlmm.so"))


@contextlib.contextmanager
def local_cluster(work_dir: Path, **options: Any) -> Iterator[Any]:
    """A local Solana cluster of the caller's own on a free port (`localnet.ClusterProcess`), stopped after.

    Gives the process: `.rpc_url`, `.registry_path`, `.wallet_path`, `.registry()`; `cluster_env(c)`
    is what the handlers need to use it. Skip the test first when `solana_programs_available()` is False.
    """
    from localnet import ClusterProcess

    cluster = ClusterProcess(work_dir=work_dir, **options).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def cluster_env(cluster: Any) -> dict[str, str]:
    return {
        "SOLANA_RPC_URL": cluster.rpc_url,
        "SOLANA_POOLS_FILE": str(cluster.registry_path),
        "WALLET_KEYPAIR_PATH": str(cluster.wallet_path),
    }


# ---------------------------------------------------------------- orders on a local cluster (chain e2e)
TERMINAL_STATUSES = ("confirmed", "failed", "cancelled", "expired")


@contextlib.contextmanager
def module_cluster(tmp_path_factory: Any, **options: Any) -> Iterator[Any]:
    """A test module's own local cluster, or the module skipped when the program binaries are missing."""
    import pytest

    if not solana_programs_available():
        pytest.skip("no program binaries (SOLANA_PROGRAMS_DIR or ../shared/solana/programs)")
    with local_cluster(tmp_path_factory.mktemp("localnet"), **options) as cluster:
        yield cluster


@contextlib.contextmanager
def chain_runtime(cluster: Any, work_dir: Path, **env: str) -> Iterator[Runtime]:
    """The local runtime on moto, wired to `cluster`, retries 1 s apart; `env` adds or overrides variables."""
    with moto_server(work_dir) as endpoint:
        runtime = Runtime(
            endpoint, work_dir / "runtime.log", {**cluster_env(cluster), "RETRY_DELAYS_S": "1,1,1", **env}
        )
        runtime.start()
        try:
            yield runtime
        finally:
            runtime.stop()


def post_order(rt: Runtime, body: dict[str, Any]) -> dict[str, Any]:
    status, order = http("POST", f"{rt.rest}/order", body)
    assert status == 201, order
    return order


def get_order(rt: Runtime, order_id: str) -> dict[str, Any]:
    status, order = http("GET", f"{rt.rest}/order/{order_id}")
    assert status == 200, order
    return order


def wait_order(
    rt: Runtime, order_id: str, statuses: tuple[str, ...] = TERMINAL_STATUSES, timeout: float = 60.0
) -> dict[str, Any]:
    """The order once its status is one of `statuses` (polled over REST)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = get_order(rt, order_id)
        if order["status"] in statuses:
            return order
        time.sleep(0.1)
    raise AssertionError(f"order {order_id} not {statuses} after {timeout}s: {get_order(rt, order_id)['history']}")


def localnet_faults(cluster: Any, body: dict[str, Any] | None = None) -> None:
    """Set the cluster's faults (`POST /_localnet/faults`), or reset them when `body` is None."""
    path = "/_localnet/faults" if body is not None else "/_localnet/reset-faults"
    status, answer = http("POST", f"{cluster.rpc_url}{path}", body or {})
    assert status == 200, answer
