"""What a cold start costs locally: an environment forked from the function's snapshot, with and
without running the function's init again in it, and a fresh interpreter importing the app.

    .venv/bin/python scripts/init_cost.py [--functions api_handler,order_worker] [--rounds 5]

Decision 015. For each function of this project's app, one snapshot per mode
(``OFFLINE_INIT=snapshot`` and ``environment``); each round starts one environment in
each mode (alternating which goes first) and one ``python -c "import app"`` (Lambda's
init without the snapshot: libraries and the app, in a new process). Prints the median
and range of each, in ms, with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from offline import project  # noqa: E402 - after the path fix above
from offline.lambdas import FunctionPool, FunctionSpec, function_environment  # noqa: E402


def pool(name: str, mode: str) -> FunctionPool:
    config = project.stage_config(ROOT, "dev")
    settings = project.function_settings(config, "dev", name)
    env = function_environment(
        {**os.environ, "OFFLINE_INIT": mode, "AWS_DEFAULT_REGION": "us-east-1"},
        project.function_environment(ROOT, "dev", name),
        set(),
        settings.deployed_name,
        settings.memory_mb,
        ROOT,
        "app.app",
    )
    spec = FunctionSpec(name, settings.deployed_name, float(settings.timeout_s), settings.memory_mb, None, env)
    return FunctionPool(spec, ROOT, max_concurrency=100)


def fresh_import_ms() -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import app"], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    return (time.perf_counter() - started) * 1000


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):7.1f}  min {min(values):7.1f}  max {max(values):7.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", default="api_handler,order_worker")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores", flush=True)
    fresh: list[float] = []
    for name in args.functions.split(","):
        pools = {mode: pool(name, mode) for mode in ("snapshot", "environment")}
        try:
            for p in pools.values():
                p.prewarm(1, background=False)  # the snapshot (init once) and a first environment
            for p in pools.values():
                p.init_ms.clear()
            for round_no in range(args.rounds):
                order = list(pools.values()) if round_no % 2 == 0 else list(pools.values())[::-1]
                for p in order:
                    p.prewarm(len(p.pids) + 1, background=False)
                fresh.append(fresh_import_ms())
            for mode, p in pools.items():
                print(f"{name:<14} forked, init {mode:<12} {summary(p.init_ms)} ms  ({len(p.init_ms)} starts)")
        finally:
            for p in pools.values():
                p.stop()
    label = "fresh interpreter, import app"
    print(f"{label:<42} {summary(fresh)} ms  ({len(fresh)} starts)")
    print(f"load average {os.getloadavg()[0]:.1f} (1 min)")
    print("repeat with: .venv/bin/python scripts/init_cost.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
