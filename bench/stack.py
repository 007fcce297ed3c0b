"""The engine under test: our own moto + local runtime (child processes), or a running one."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.emulators import bench_endpoints
from tests.support import Runtime, cluster_env, local_cluster, solana_programs_available

__all__ = ["Engine", "engine_under_test"]

AWS_CALLS_PATH = "/_offline/aws-calls"


@dataclass
class Engine:
    rest: str
    ws: str
    log_path: Path | None = None  # the runtime's JSON log, when we started it
    aws_endpoint: str | None = None  # our own emulator's DynamoDB endpoint, when we started it

    @property
    def calls_url(self) -> str:
        return "http" + self.ws.rstrip("/").removeprefix("ws") + AWS_CALLS_PATH

    def aws_calls(self, method: str = "GET") -> dict[str, Any] | None:
        """The runtime's AWS call counts, or None when it does not count them."""
        request = urllib.request.Request(self.calls_url, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                body: dict[str, Any] = json.loads(resp.read())
                return body
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def settled_calls(self, quiet_s: float = 0.5, timeout_s: float = 10.0) -> dict[str, Any] | None:
        """Counts once no call has been made for `quiet_s` ($disconnect handlers run after a close)."""
        last = self.aws_calls()
        deadline = time.monotonic() + timeout_s
        while last is not None and time.monotonic() < deadline:
            time.sleep(quiet_s)
            now = self.aws_calls()
            if now is None or now["total"] == last["total"]:
                return now
            last = now
        return last


@contextlib.contextmanager
def engine_under_test(
    env: dict[str, str],
    log_dir: Path,
    rest_url: str | None = None,
    ws_url: str | None = None,
    localnet: bool = False,
) -> Iterator[Engine]:
    """Start moto + the runtime with `env` (simulated delays) and AWS call counting, or use the given URLs.

    `localnet`: a local Solana cluster of our own too, which the engine trades on (its
    delays are the cluster's: slots, landing; the simulated ones do not apply)."""
    if rest_url:
        if not ws_url:
            raise SystemExit("--rest-url needs --ws-url too")
        yield Engine(rest=rest_url.rstrip("/"), ws=ws_url.rstrip("/"))
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "runtime.log"
    log_path.unlink(missing_ok=True)
    with contextlib.ExitStack() as stack:
        if localnet:
            if not solana_programs_available():
                raise SystemExit("--localnet: no program binaries (SOLANA_PROGRAMS_DIR or ../shared/solana/programs)")
            cluster = stack.enter_context(local_cluster(log_dir / "localnet"))
            env = {**env, **cluster_env(cluster)}
        yield stack.enter_context(_runtime(env, log_dir, log_path))


@contextlib.contextmanager
def _runtime(env: dict[str, str], log_dir: Path, log_path: Path) -> Iterator[Engine]:
    with bench_endpoints(log_dir) as endpoints:  # BENCH_EMULATOR (default TEST_EMULATOR): tests/emulators.py
        endpoint = endpoints["AWS_ENDPOINT_URL"]
        # The engine is measured, not one client's usage plan: the load runs as one key, far above its rate.
        unthrottled = {
            "RATE_LIMIT_RPS": "1000000",
            "RATE_LIMIT_BURST": "1000000",
            # the WebSocket limits stay on (their calls are counted) but never refuse the one key
            "WS_MAX_CONNECTIONS_PER_KEY": "1000000",
            "WS_FRAME_RATE": "1000000",
            "WS_FRAME_BURST": "1000000",
        }
        runtime = Runtime(
            endpoint,
            log_path,
            {**unthrottled, **env, **endpoints, "OFFLINE_COUNT_AWS_CALLS": "1", "LOG_LEVEL": "INFO"},
        )
        runtime.start()
        try:
            dynamodb = endpoints.get("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
            yield Engine(rest=runtime.rest, ws=runtime.ws, log_path=log_path, aws_endpoint=dynamodb)
        finally:
            runtime.stop()
