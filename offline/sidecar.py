"""Sidecars: stand-in services started beside the emulator (a local Solana cluster, say).

A sidecar is any command that, once ready, prints one JSON line on stdout:
``{"event": "ready", "env": {"NAME": "value", ...}, "url": "..."}``. The runtime sets that
``env`` for the handlers before it imports the app, and stops the sidecar with itself. An
optional sidecar that exits before it is ready is reported and skipped (whatever it printed
on stderr explains why); a required one fails the start. The runtime knows nothing else of
what a sidecar is.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .emulator import _die_with_parent
from .logs import log

__all__ = ["Sidecar", "SidecarError"]


class SidecarError(RuntimeError):
    """A required sidecar did not become ready."""


@dataclass
class Sidecar:
    command: str
    optional: bool = False
    start_timeout: float = 60.0
    ready: dict[str, Any] | None = None
    process: subprocess.Popen[str] | None = field(default=None, repr=False)
    _ready_event: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def name(self) -> str:
        return str((self.ready or {}).get("name") or shlex.split(self.command)[-1])

    @property
    def url(self) -> str:
        return str((self.ready or {}).get("url") or "")

    @property
    def env(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in ((self.ready or {}).get("env") or {}).items()}

    def start(self) -> bool:
        """Start and wait until ready; False if an optional sidecar gave up (exited first)."""
        self._ready_event.clear()
        self.ready = None
        self.process = subprocess.Popen(
            shlex.split(self.command),
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # a terminal's Ctrl-C is the runtime's to handle
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        threading.Thread(target=self._read_stdout, name="sidecar-stdout", daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._ready_event.wait(0.05):
                log("sidecar_ready", command=self.command, pid=self.process.pid, url=self.url)
                return True
            code = self.process.poll()
            if code is not None:
                if self.optional:
                    log("sidecar_unavailable", level="warning", command=self.command, exitCode=code)
                    self.process = None
                    return False
                raise SidecarError(f"sidecar exited with {code} before it was ready: {self.command}")
        self.stop()
        raise SidecarError(f"sidecar not ready within {self.start_timeout}s: {self.command}")

    def _read_stdout(self) -> None:
        proc = self.process
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            if not self._ready_event.is_set():
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict) and event.get("event") == "ready":
                        self.ready = event
                        self._ready_event.set()
                        continue
            sys.stderr.write(line)

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
