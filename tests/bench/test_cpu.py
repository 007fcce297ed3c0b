"""bench.cpu: CPU seconds per role, for processes that start after the count began."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench.cpu import CpuTracker

BURN = """
import ctypes, time
ctypes.CDLL(None).prctl(15, b"fn:burner", 0, 0, 0)
end = time.process_time() + 0.6
while time.process_time() < end:
    pass
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_function_process_started_during_the_count_is_counted_under_its_name() -> None:
    tracker = CpuTracker(every_s=0.05).start()
    child = subprocess.Popen([sys.executable, "-c", BURN])
    while child.poll() is None:  # the tracker samples while the child runs; its last interval may be lost
        time.sleep(0.02)
    totals = tracker.stop()
    assert totals.get("fn:burner", 0.0) >= 0.3, totals
    assert "load client" in totals
