"""LocalStack READY hook: create infra/resources.json's tables and queues, as the local runtime does.

LocalStack runs `.py` hooks in its own interpreter, which has boto3 but not the local
runtime's dependencies (aiohttp, chalice). So the `offline` package is registered without
running its `__init__`, and only `offline.provision` (stdlib + boto3) is imported: the same
code that provisions for `make run`, not a copy. Runs from the host too:

    AWS_ENDPOINT_URL=http://localhost:4566 python localstack/init/ready.d/provision.py

Environment: PROJECT_DIR (default: the repository this file is in, or /project in the
container), AWS_ENDPOINT_URL (default http://localhost:4566), STAGE (default dev).
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path


def _project_dir() -> Path:
    if os.environ.get("PROJECT_DIR"):
        return Path(os.environ["PROJECT_DIR"])
    here = Path(__file__).resolve().parents[3]
    return here if (here / "infra" / "resources.json").exists() else Path("/project")


def main() -> None:
    project = _project_dir()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")  # LocalStack requires some credentials
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://localhost:4566")
    # `make run` provisions with the prefix "{app_name}-{stage}"; use the same names so it finds these.
    prefix = f"solana-exec-{os.environ.get('STAGE', 'dev')}"

    saved = {name: sys.modules.get(name) for name in ("offline", "offline.provision", "offline.logs")}
    package = types.ModuleType("offline")
    package.__path__ = [str(project / "offline")]
    sys.modules["offline"] = package
    try:
        provision = importlib.import_module("offline.provision")
        env = provision.provision(project / "infra" / "resources.json", name_prefix=prefix, endpoint_url=endpoint)
    finally:
        for name, module in saved.items():  # leave LocalStack's interpreter as it was
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    for key, value in sorted(env.items()):
        print(f"{key}={value}")


main()
