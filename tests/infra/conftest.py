"""Fixtures for the infrastructure tests: the packaged template, built once per session.

Packaging runs `make package` in a copy of the repository as a fresh clone would have it
(tracked and not-ignored files only), with no AWS credentials and no ~/.aws. Chalice's
dependency cache (`.chalice/deployments/`, keyed by a hash of requirements.txt) is copied
along when this checkout has one, so only the first packaging on a machine asks PyPI for
the Lambda's wheels, exactly as `make package` itself would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PackagedStage = dict[str, Any]  # {"dir": Path, "template": dict}


def _fresh_clone(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    cache = ROOT / ".chalice" / "deployments"
    if cache.is_dir():
        shutil.copytree(cache, dest / ".chalice" / "deployments", dirs_exist_ok=True)


def _no_aws_environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k == "AWS_CA_BUNDLE"}
    env.update(HOME=str(home), MAKEFLAGS="")
    return env


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], PackagedStage]]:
    """`packaged("dev")` -> the output of `make package STAGE=dev`, built on first use."""
    if shutil.which("make") is None or shutil.which("git") is None:
        pytest.skip("make and git are needed to package")
    venv = Path(sys.prefix)
    if not (venv / "bin" / "chalice").exists():
        pytest.skip(f"no chalice in {venv}: run the tests from the project's venv")
    clone = tmp_path_factory.mktemp("clone")
    _fresh_clone(clone)
    home = tmp_path_factory.mktemp("home")
    built: dict[str, PackagedStage] = {}

    def build(stage: str) -> PackagedStage:
        if stage not in built:
            out = tmp_path_factory.mktemp(f"package-{stage}")
            proc = subprocess.run(
                # -o: the venv running these tests is already installed; do not rebuild it.
                ["make", "-o", f"{venv}/.installed", "package", f"VENV={venv}", f"STAGE={stage}", f"PACKAGE_DIR={out}"],
                cwd=clone,
                env=_no_aws_environment(home),
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert proc.returncode == 0, f"make package failed:\n{proc.stdout}\n{proc.stderr}"
            built[stage] = {"dir": out, "template": json.loads((out / "sam.json").read_text())}
        return built[stage]

    yield build


@pytest.fixture(scope="session")
def dev_template(packaged: Callable[[str], PackagedStage]) -> dict[str, Any]:
    return packaged("dev")["template"]


@pytest.fixture(scope="session")
def prod_template(packaged: Callable[[str], PackagedStage]) -> dict[str, Any]:
    return packaged("prod")["template"]


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and region for moto's in-process mock; no endpoint override."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    for key in list(os.environ):
        if key.startswith("AWS_ENDPOINT_URL") or key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(key, raising=False)
