"""The repository root importable however pytest is launched; the sample app's runtime, per module."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from offline import LocalRuntime, start_moto  # noqa: E402 - after the path fix above

SAMPLE = Path(__file__).parent / "sample_app"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("AWS_ENDPOINT_URL"):
            del os.environ[key]
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    emulator = start_moto()
    os.environ["AWS_ENDPOINT_URL"] = emulator.endpoint
    try:
        yield emulator.endpoint
    finally:
        emulator.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def state_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sample") / "state.jsonl"


@pytest.fixture(scope="module")
def rt(moto_endpoint: str, state_file: Path) -> Iterator[LocalRuntime]:
    os.environ["OVERRIDE_ME"] = "explicit"  # the runtime's own environment wins over config.json
    os.environ["SAMPLE_STATE_FILE"] = str(state_file)
    os.environ["OFFLINE_SCHEDULE_SCALE"] = "0.02"  # rate(1 minute) every 1.2 s
    os.environ["OFFLINE_INIT"] = "environment"  # each environment runs init, as on Lambda (decision 015)
    runtime = LocalRuntime(
        SAMPLE,
        template="template.json",
        rest_port=0,
        ws_port=0,
        poll_wait_seconds=1,
        ws_idle_timeout_s=3.0,
        ws_max_duration_s=8.0,
    )
    try:
        runtime.start()
        yield runtime
    finally:
        runtime.stop()
        for key in ("OVERRIDE_ME", "SAMPLE_STATE_FILE", "OFFLINE_SCHEDULE_SCALE", "OFFLINE_INIT"):
            os.environ.pop(key, None)


class State:
    """What the sample app's handlers recorded (in whatever worker process ran them)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [r for r in rows if kind is None or r["kind"] == kind]

    def __getitem__(self, key: str) -> Any:
        if key == "connect":
            return [r["event"] for r in self.lines("connect")]
        if key == "connect_post":
            return {r["connectionId"]: r["result"] for r in self.lines("connect_post")}
        if key == "disconnect":
            return [r["connectionId"] for r in self.lines("disconnect")]
        if key == "sqs_batches":
            return [r["records"] for r in self.lines("sqs_start")]
        if key == "sqs_receives":
            receives: dict[str, list[int]] = {}
            for r in self.lines("sqs_receive"):
                receives.setdefault(r["id"], []).append(r["count"])
            return receives
        raise KeyError(key)

    def max_overlap(self, start_kind: str, end_kind: str, since: float = 0.0, phase: bool = False) -> int:
        """Most invocations running at once, from their start/end lines.

        With ``phase``, ``start_kind`` lines carry ``"phase": "start"/"end"`` instead.
        """
        if phase:
            starts = [r for r in self.lines(start_kind) if r.get("phase") == "start"]
            ends = [r for r in self.lines(start_kind) if r.get("phase") == "end"]
        else:
            starts, ends = self.lines(start_kind), self.lines(end_kind)
        return self.peak([r["t"] for r in starts if r["t"] >= since], [r["t"] for r in ends if r["t"] >= since])

    @staticmethod
    def overlap(rows: list[dict[str, Any]]) -> int:
        """Most of ``rows`` (lines with ``"phase": "start"/"end"``) running at once."""
        starts = [r["t"] for r in rows if r.get("phase") == "start"]
        return State.peak(starts, [r["t"] for r in rows if r.get("phase") == "end"])

    @staticmethod
    def peak(starts: list[float], ends: list[float]) -> int:
        events = [(t, 1) for t in starts] + [(t, -1) for t in ends]
        running = peak = 0
        for _, step in sorted(events, key=lambda e: (e[0], e[1])):
            running += step
            peak = max(peak, running)
        return peak


@pytest.fixture()
def state(rt: LocalRuntime, state_file: Path) -> State:
    return State(state_file)
