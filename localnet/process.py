"""`ClusterProcess`: the cluster as a child process, for tests and local runtimes."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["ClusterProcess", "ClusterStartError", "rpc_call"]


class ClusterStartError(RuntimeError):
    """The cluster exited or did not answer getHealth in time; `output` holds what it printed."""

    def __init__(self, message: str, returncode: int | None, output: str) -> None:
        super().__init__(f"{message}\n{output}")
        self.returncode = returncode
        self.output = output


def _die_with_parent() -> None:
    """In the child: Linux sends it SIGTERM when the parent dies, so no cluster outlives a killed test."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout: float = 10.0) -> Any:
    """One JSON-RPC call; the whole response object (result or error)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


class ClusterProcess:
    """`python -m localnet` on a port of its own; `with ClusterProcess() as c: c.rpc_url`.

    Files (wallet, registry, log) go to `work_dir` (a temporary folder by default). Ready
    when getHealth answers "ok"; stopped with SIGTERM (SIGKILL after `stop_timeout`).
    """

    def __init__(
        self,
        *,
        genesis: str | Path | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        wallet: str | Path | None = None,
        registry_out: str | Path | None = None,
        work_dir: str | Path | None = None,
        slot_ms: int | None = None,
        blockhash_valid_slots: int | None = None,
        seed: int | None = None,
        drop_ppm: int | None = None,
        land_delay_slots: str | None = None,
        programs_dir: str | Path | None = None,
        env: dict[str, str] | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="localnet-")
            work_dir = self._tmp.name
        self.work_dir = Path(work_dir)
        self.host = host
        self.port = port or _free_port(host)
        self.wallet_path = Path(wallet) if wallet else self.work_dir / "wallet.json"
        self.registry_path = Path(registry_out) if registry_out else self.work_dir / "registry.json"
        self.log_path = self.work_dir / f"localnet-{self.port}.log"
        self.args: list[str] = []
        for flag, value in (
            ("--genesis", genesis),
            ("--slot-ms", slot_ms),
            ("--blockhash-valid-slots", blockhash_valid_slots),
            ("--seed", seed),
            ("--drop-ppm", drop_ppm),
            ("--land-delay-slots", land_delay_slots),
            ("--programs-dir", programs_dir),
        ):
            if value is not None:
                self.args += [flag, str(value)]
        self.env = env
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.ready: dict[str, Any] = {}

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "localnet",
            "--host", self.host, "--port", str(self.port),
            "--wallet", str(self.wallet_path), "--registry-out", str(self.registry_path),
            *self.args,
        ]  # fmt: skip

    def registry(self) -> dict[str, Any]:
        return dict(json.loads(self.registry_path.read_text()))

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> ClusterProcess:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        project = Path(__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(project), env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(
            self.command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                self._close_log()
                raise ClusterStartError(f"localnet exited with {code} before it was ready", code, self.output())
            try:
                if rpc_call(self.rpc_url, "getHealth", timeout=2).get("result") == "ok":
                    self.ready = self._ready_line()
                    return self
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.05)
        self.stop()
        raise ClusterStartError(f"localnet did not answer within {self.start_timeout}s", None, self.output())

    def _ready_line(self) -> dict[str, Any]:
        for line in self.output().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("event") == "ready":
                    return event
        return {}

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def cleanup(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ClusterProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()
