"""`make run`'s wiring: the local runtime starts the cluster as an optional sidecar, or goes
on without one (and says why) when the program binaries are missing."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

import pytest

from localnet import rpc_call
from tests.support import ROOT, free_port, http, moto_server, solana_programs_available, stop_process, wait_http


def _runtime(tmp_path, endpoint: str, localnet_args: str) -> tuple[subprocess.Popen, int, object]:
    rest, ws = free_port(), free_port()
    cmd = f"{shlex.quote(sys.executable)} -m localnet --port 0 --wallet {tmp_path}/w.json "
    cmd += f"--registry-out {tmp_path}/registry.json {localnet_args}"
    log = open(tmp_path / "runtime.log", "wb")  # noqa: SIM115
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "REST_PORT": str(rest),
        "WS_PORT": str(ws),
        "PYTHONUNBUFFERED": "1",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **{k: v for k, v in os.environ.items() if k in ("HOME", "SOLANA_PROGRAMS_DIR", "SOLANA_ACCOUNTS_DIR")},
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "offline", "--app-dir", str(ROOT), "--optional-sidecar", cmd],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_http(f"http://127.0.0.1:{rest}/health", timeout=60, proc=proc)
    return proc, rest, log


@pytest.mark.skipif(not solana_programs_available(), reason="no Solana program binaries")
def test_runtime_starts_the_cluster_and_stops_it(tmp_path):
    with moto_server(tmp_path) as endpoint:
        proc, rest, log = _runtime(tmp_path, endpoint, "")
        try:
            text = (tmp_path / "runtime.log").read_text()
            ready = next(json.loads(line) for line in text.splitlines() if '"sidecar_ready"' in line)
            url = ready["url"]
            assert "Solana RPC" in text and url in text  # in the banner
            assert rpc_call(url, "getHealth")["result"] == "ok"
            assert json.loads((tmp_path / "registry.json").read_text())["cluster"] == "localnet"
            assert http("GET", f"http://127.0.0.1:{rest}/health")[0] == 200
        finally:
            stop_process(proc)
            log.close()
        time.sleep(0.5)
        with pytest.raises(OSError):
            rpc_call(url, "getHealth", timeout=2)


def test_runtime_goes_on_without_binaries_and_says_why(tmp_path):
    with moto_server(tmp_path) as endpoint:
        proc, rest, log = _runtime(tmp_path, endpoint, f"--programs-dir {tmp_path}/none")
        try:
            assert http("GET", f"http://127.0.0.1:{rest}/health")[0] == 200
            text = (tmp_path / "runtime.log").read_text()
            assert "no program binaries" in text and "sidecar_unavailable" in text
            assert "Solana RPC" not in text
        finally:
            stop_process(proc)
            log.close()
