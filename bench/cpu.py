"""CPU seconds of each of the engine's processes, from /proc, the short-lived ones included.

The local runtime runs every Lambda function in processes of its own (decision 010): a fork
server, one snapshot per function and its execution environments, forked while the load runs
and sometimes gone before it ends. A count taken from the process list at the start misses
them, so :class:`CpuTracker` re-reads the whole tree below this process every `every_s`, keeps
the last CPU figure seen for each pid, and attributes it to a role:

- ``runtime``: the ``python -m offline`` process (front doors, event source mappings, @connections);
- ``fn:<name>``: a function's environments (the worker names its process after the function);
- ``emulator``: moto or LocalStack's Python; ``emulator-java``: DynamoDB Local under LocalStack;
- ``load client``: this process.

A process that ends between two reads loses at most its last interval.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["CpuTracker"]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
EMULATOR_MODULES = {"offline.motoserver", "moto.server", "localstack.runtime.main"}


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds of the process, its threads included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _read(path: str) -> str:
    try:
        return Path(path).read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _tree() -> dict[int, tuple[int, float]]:
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            stats[int(entry)] = st
    return stats


class CpuTracker:
    """Samples the process tree below `root` (this process) and sums CPU seconds per role."""

    def __init__(self, root: int | None = None, every_s: float = 0.5) -> None:
        self.root = root or os.getpid()
        self.every_s = every_s
        self.role_of: dict[int, str] = {}
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-cpu", daemon=True)
        self._started = False

    def _role(self, pid: int, parent_role: str | None) -> str:
        if pid == self.root:
            return "load client"
        argv = set(_read(f"/proc/{pid}/cmdline").split())
        comm = _read(f"/proc/{pid}/comm")
        if comm == "java":  # DynamoDB Local, under LocalStack or started by the bench itself
            return "emulator-java"
        if parent_role in ("emulator", "emulator-java"):
            return "emulator"
        if EMULATOR_MODULES & argv:
            return "emulator"
        if comm.startswith("fn:"):
            return comm
        if parent_role and parent_role.startswith("fn:"):
            return parent_role
        if "offline" in argv and "-m" in argv:
            return "runtime"
        if parent_role in ("runtime", "runtime-other"):
            return "runtime-other"  # the fork server and resource tracker, until a child names itself
        return parent_role or "other"

    def sample(self) -> None:
        stats = _tree()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        stack: list[tuple[int, str | None]] = [(self.root, None)]
        while stack:
            pid, parent_role = stack.pop()
            if pid not in stats:
                continue
            role = self.role_of.get(pid)
            if role is None or not role.startswith(("fn:", "emulator")):  # a fork names itself just after it starts
                role = self.role_of[pid] = self._role(pid, parent_role)
            cpu = stats[pid][1]
            self.first.setdefault(pid, cpu if not self._started else 0.0)
            self.last[pid] = cpu
            stack.extend((child, role) for child in children.get(pid, []))

    def start(self) -> CpuTracker:
        self.sample()
        self._started = True
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def stop(self) -> dict[str, float]:
        """CPU seconds per role since start, largest first."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.sample()
        totals: dict[str, float] = {}
        for pid, cpu in self.last.items():
            role = self.role_of.get(pid, "other")
            totals[role] = totals.get(role, 0.0) + cpu - self.first.get(pid, 0.0)
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))
