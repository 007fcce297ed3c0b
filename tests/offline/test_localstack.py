"""offline.localstack: LocalStack in host mode, stopped with its Java; clear errors when it cannot run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from offline.localstack import (
    LocalStackUnavailable,
    _java_pids,
    _start_time,
    clean_stale_scratch,
    health,
    install,
    start_localstack,
)
from tests.emulators import test_emulator
from tests.support import ROOT, free_port, stop_process


def test_install_without_java_says_what_to_install(tmp_path, monkeypatch):
    # GIVEN a machine without java, npm or javac on PATH, and nothing installed yet
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    # WHEN LocalStack is to be installed THEN one error names the missing tool and the ways out
    with pytest.raises(LocalStackUnavailable) as err:
        install(tmp_path / "cache")
    message = str(err.value)
    assert "`java`" in message and "EMULATOR=moto" in message and "docker compose" in message
    assert not (tmp_path / "cache" / "localstack-4.13.1" / "venv").exists()


def test_make_run_without_java_exits_with_the_message_not_a_traceback(tmp_path):
    # GIVEN `make run EMULATOR=localstack` on a machine without java (and no LocalStack answering)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "PATH": str(tmp_path / "empty"),
        "EMULATOR": "localstack",
        "EMULATOR_PORT": str(free_port()),
        "LOCALSTACK_CACHE_DIR": str(tmp_path / "cache"),
        "REST_PORT": "0",
        "WS_PORT": "0",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "offline", "--app-dir", str(ROOT)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # THEN it stops with exit code 2 and says what is missing, without a stack trace
    assert proc.returncode == 2, proc.stderr
    assert "LocalStack unavailable" in proc.stderr and "`java`" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_scratch_folders_of_a_killed_owner_are_removed_and_live_ones_kept(tmp_path):
    # GIVEN a scratch folder whose owner was SIGKILLed, with a leftover process started on it
    # (as DynamoDB Local's Java outlives a killed LocalStack), one of a live owner, one not ours
    owner = subprocess.Popen(["sleep", "60"])
    stale = tmp_path / "localstack-20001-abc"
    stale.mkdir()
    (stale / "owner.json").write_text(json.dumps({"pid": owner.pid, "started": _start_time(owner.pid)}))
    leftover = subprocess.Popen(["sh", "-c", "sleep 60", str(stale)])
    owner.kill()
    owner.wait()
    live = tmp_path / "localstack-20002-def"
    live.mkdir()
    (live / "owner.json").write_text(json.dumps({"pid": os.getpid(), "started": _start_time(os.getpid())}))
    reused = tmp_path / "localstack-20003-ghi"  # our pid, but another start time: a reused pid
    reused.mkdir()
    (reused / "owner.json").write_text(json.dumps({"pid": os.getpid(), "started": "1"}))
    foreign = tmp_path / "localstack-20004-jkl"
    foreign.mkdir()
    try:
        # WHEN the next LocalStack start cleans up
        removed = clean_stale_scratch(tmp_path)
        # THEN only the folders whose owner is gone go, and the leftover process is ended
        assert sorted(removed) == sorted([stale, reused])
        assert not stale.exists() and not reused.exists()
        assert live.exists() and foreign.exists()
        assert leftover.wait(timeout=5) == -9
    finally:
        for proc in (leftover, owner):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_an_unknown_emulator_name_is_refused(tmp_path):
    env = {**os.environ, "EMULATOR": "localstak", "EMULATOR_PORT": str(free_port()), "REST_PORT": "0", "WS_PORT": "0"}
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "offline", "--app-dir", str(ROOT)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "expected one of moto, localstack" in proc.stdout + proc.stderr


@pytest.mark.skipif(test_emulator() != "localstack", reason="starts a LocalStack: runs with TEST_EMULATOR=localstack")
def test_started_localstack_serves_both_services_and_leaves_nothing_behind(tmp_path):
    # GIVEN a LocalStack started with the project's init hooks
    emulator = start_localstack(init_dir=ROOT / "localstack" / "init" / "ready.d", log_path=tmp_path / "ls.log")
    scratch = emulator.scratch
    assert scratch is not None
    try:
        port = int(emulator.endpoint.rsplit(":", 1)[1])
        assert port < 32768  # below the ephemeral range
        # THEN SQS and DynamoDB run on its one port, and the hooks provisioned the resources
        states = health(emulator.endpoint)
        assert states["sqs"] == "running" and states["dynamodb"] == "running"
        java = _java_pids(str(scratch))
        assert java, "DynamoDB Local's Java should be running"
        log = (tmp_path / "ls.log").read_text()
        assert "solana-exec-dev-OrdersTable" in log
    finally:
        emulator.stop()
    # AND after stop: no LocalStack, no Java, no scratch folder
    assert emulator.process is not None and emulator.process.poll() is not None
    assert not _java_pids(str(scratch))
    assert not Path(scratch).exists()
    assert health(emulator.endpoint) == {}
    assert json.dumps(states)


def test_auto_falls_back_to_moto_without_java_and_says_why(tmp_path):
    # GIVEN `make run`'s default (EMULATOR=auto) on a machine without java, nothing on the emulator port
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "PATH": str(tmp_path / "empty"),
        "EMULATOR": "auto",
        "EMULATOR_PORT": str(free_port()),
        "LOCALSTACK_CACHE_DIR": str(tmp_path / "cache"),
        "REST_PORT": str(free_port()),
        "WS_PORT": str(free_port()),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "offline", "--app-dir", str(ROOT)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        # THEN it runs on moto, after a line saying why
        ready = next((line for line in proc.stdout or [] if line.startswith('{"event": "ready"')), None)
        assert ready is not None, "the runtime never became ready"
        assert json.loads(ready)["aws"] == f"http://127.0.0.1:{env['EMULATOR_PORT']}"
    finally:
        stop_process(proc)
    err = proc.stderr.read() if proc.stderr else ""
    assert "EMULATOR=auto: using moto, since LocalStack needs `java`" in err
