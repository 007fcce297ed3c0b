"""Fault injection for crash tests: die at a named point, exactly like a killed process.

Set ENGINE_FAULT_POINT to one of FAULT_POINTS in a test's environment; unset (always,
outside tests) this does nothing. The fault tests use it to kill the process between
two writes that no signal could reliably land between.
"""

from __future__ import annotations

import os
import signal

__all__ = ["FAULT_POINTS", "crash_point"]

FAULT_POINTS = frozenset({"after_order_write"})


def crash_point(name: str) -> None:
    if os.environ.get("ENGINE_FAULT_POINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
