"""Find or start the AWS emulator the handlers talk to.

Order of preference: an explicit ``AWS_ENDPOINT_URL`` (LocalStack, or a moto
someone else runs), then anything answering on the conventional port
(``EMULATOR_PORT``, default 4566), then an emulator started as a child process
that dies with us, even if we are SIGKILLed: ``moto.server``, or with
``EMULATOR=localstack`` LocalStack in host mode (``offline.localstack``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .logs import log

DEFAULT_EMULATOR_PORT = 4566
EMULATORS = ("moto", "localstack")
DEFAULT_EMULATOR = "moto"  # see docs/decisions/008
_PR_SET_PDEATHSIG = 1

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
DEFAULT_REGION = "us-east-1"


@dataclass
class Emulator:
    """An AWS endpoint, and the process behind it if this runtime started it."""

    endpoint: str
    source: str  # "env", "found" or "started"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    kind: str = ""  # "moto", "localstack", or "" when not known

    @property
    def owned(self) -> bool:
        """True when stopping the runtime must also stop the emulator."""
        return self.process is not None

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the emulator if we started it (no-op otherwise)."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def ensure_dummy_credentials(environ: dict[str, str] | None = None) -> None:
    """Set fake credentials and a region when none are configured.

    Emulators accept any credentials, but botocore (and pynamodb on top of it)
    refuses to sign a request without some, and needs a region to build the
    endpoint. Real values, when present, are left untouched.
    """
    env = os.environ if environ is None else environ
    has_keys = "AWS_ACCESS_KEY_ID" in env or "AWS_PROFILE" in env
    if not has_keys:
        for key, value in DUMMY_CREDENTIALS.items():
            env.setdefault(key, value)
    if "AWS_DEFAULT_REGION" not in env and "AWS_REGION" not in env:
        env["AWS_DEFAULT_REGION"] = DEFAULT_REGION


def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether an HTTP server answers at ``url`` (any status counts)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, just not with 2xx
    except (OSError, ValueError):
        return False


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now (racy, but fine for local use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM the child when its parent dies.

    Without this an embedded moto outlives a SIGKILLed runtime and keeps the
    port busy for the next run. Silently a no-op where prctl is unavailable.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def moto_command(host: str, port: int) -> list[str]:
    """How to start moto: behind our keep-alive server (``offline.motoserver``), or with
    ``OFFLINE_MOTO_SERVER=werkzeug`` the way ``python -m moto.server`` serves it."""
    if os.environ.get("OFFLINE_MOTO_SERVER", "").strip().lower() == "werkzeug":
        return [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)]
    return [sys.executable, "-m", "offline.motoserver", "-H", host, "-p", str(port)]


def start_moto(host: str = "127.0.0.1", port: int | None = None, timeout: float = 20.0) -> Emulator:
    """Start moto (see `moto_command`) as a child process and wait until ready."""
    port = port or free_port(host)
    cmd = moto_command(host, port)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        # Own session: a terminal's Ctrl-C (SIGINT to the foreground process
        # group) must not kill the emulator before the runtime has drained.
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    endpoint = f"http://{host}:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited early with code {proc.returncode}")
        if answers(endpoint + "/moto-api/"):
            log("emulator_started", endpoint=endpoint, pid=proc.pid)
            return Emulator(endpoint=endpoint, source="started", process=proc, kind="moto")
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"moto server did not answer on {endpoint} within {timeout}s")


def emulator_kind() -> str:
    """Which emulator to start when none answers: ``EMULATOR`` (moto, localstack or auto).

    ``auto`` is LocalStack where it can run (Java, and npm + a JDK until it is installed),
    else moto, saying why on stderr.
    """
    kind = os.environ.get("EMULATOR", "").strip().lower() or DEFAULT_EMULATOR
    if kind not in (*EMULATORS, "auto"):
        raise ValueError(f"EMULATOR={kind!r}: expected one of {', '.join(EMULATORS)} or auto")
    if kind == "auto":
        from .localstack import unavailable_reason

        reason = unavailable_reason()
        if reason is None:
            return "localstack"
        log("emulator_fallback", emulator="moto", reason=reason)
        print(f"\n  EMULATOR=auto: using moto, since {reason}\n", file=sys.stderr, flush=True)
        return "moto"
    return kind


def resolve_emulator(app_dir: str | os.PathLike[str] | None = None) -> Emulator:
    """Use the configured endpoint, an already running one, or start one (``EMULATOR``).

    Sets ``AWS_ENDPOINT_URL`` in ``os.environ`` when it picks or starts one,
    so every boto3/pynamodb client the handlers create reaches it. A LocalStack
    started here runs the project's ``localstack/init/ready.d`` hooks, if any.
    """
    ensure_dummy_credentials()
    configured = os.environ.get("AWS_ENDPOINT_URL")
    if configured:
        return Emulator(endpoint=configured, source="env")
    port = int(os.environ.get("EMULATOR_PORT", DEFAULT_EMULATOR_PORT))
    if port_open("127.0.0.1", port):
        endpoint = f"http://127.0.0.1:{port}"
        source = "found"
        from .localstack import health

        emulator = Emulator(endpoint=endpoint, source=source, kind="localstack" if health(endpoint) else "")
    elif emulator_kind() == "localstack":
        from .localstack import start_localstack

        hooks = Path(app_dir or ".") / "localstack" / "init" / "ready.d"
        emulator = start_localstack(host="127.0.0.1", port=port, init_dir=hooks if hooks.is_dir() else None)
    else:
        emulator = start_moto(host="127.0.0.1", port=port)
    os.environ["AWS_ENDPOINT_URL"] = emulator.endpoint
    return emulator
