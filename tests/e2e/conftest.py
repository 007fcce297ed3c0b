from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators import emulator_server
from tests.support import Runtime


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> Iterator[str]:
    with emulator_server(tmp_path_factory.mktemp("emulator")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def runtime(emulator, tmp_path_factory) -> Iterator[Runtime]:
    """One runtime for the module-level e2e tests: small simulated delays, real sockets."""
    log = tmp_path_factory.mktemp("runtime") / "runtime.log"
    rt = Runtime(emulator, log, {"DEX_QUOTE_MS": "20", "DEX_SUBMIT_MS": "300-500"}).start()
    try:
        yield rt
    finally:
        rt.stop()
