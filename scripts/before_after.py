"""The reference scenario and the zero-delay capacity before and after the process model, in one table.

    .venv/bin/python scripts/before_after.py [--before 67924d6] [--after HEAD] [--rounds 2]

Issue 16's "Must show": the engine under the old in-process runtime (``--before``, the
last commit before the process model, decision 010) against the current one
(``--after``). Both trees are built from ``git archive`` into a scratch folder (so
uncommitted changes in the work tree play no part, and a run is repeatable from two
commit ids), with ``shared`` linked beside them as the project expects. The runs
alternate in one window (before/after, then after/before in the next round, so neither
always runs second on a machine that warms up or gets busier), each with this
interpreter's venv: ``python -m bench reference --no-png`` and ``python -m bench zero
--no-png``, each starting its own moto and runtime on free loopback ports. The table
shows every run and the median per tree, with the load average before and after each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("reference", "zero")


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def build_tree(rev: str, where: Path) -> Path:
    """The project as of ``rev``, extracted from ``git archive``."""
    where.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", rev], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(where)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {rev} failed")
    return where


def shared_dir() -> Path | None:
    """``../shared`` of the project (a worktree's parent links it); None if there is none."""
    for parent in ROOT.parents:
        candidate = parent / "shared"
        if candidate.is_dir():
            return candidate.resolve()
    return None


def run_bench(tree: Path, scenario: str, out: Path, log: Path) -> dict[str, Any]:
    """One ``python -m bench <scenario> --no-png`` in ``tree``; its report, with the load average around it."""
    before = os.getloadavg()[0]
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.run(
            [sys.executable, "-m", "bench", scenario, "--no-png", "--out", str(out)],
            cwd=tree,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
    report_path = out / f"{scenario}.json"
    report: dict[str, Any] = json.loads(report_path.read_text()) if report_path.is_file() else {}
    report_path.unlink(missing_ok=True)
    return {
        "rc": proc.returncode,
        "s": round(time.monotonic() - started),
        "load": (round(before, 1), round(os.getloadavg()[0], 1)),
        "summary": report.get("summary") or {},
        "log": str(log),
    }


def figures(run: dict[str, Any]) -> dict[str, float | None]:
    s = run["summary"]
    if not s:
        return {"perMin": None, "ratio": None, "overheadP50": None, "overheadP99": None, "confirmed": None}
    ratio = s.get("ratioToCeiling")
    return {
        "perMin": s.get("throughputPerMin"),
        "ratio": round(ratio * 100, 1) if ratio is not None else None,
        "overheadP50": (s.get("overheadMs") or {}).get("p50"),
        "overheadP99": (s.get("overheadMs") or {}).get("p99"),
        "confirmed": (s.get("orders") or {}).get("confirmed"),
    }


def cell(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:g}{unit}"


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 1) if present else None


ROWS = (
    ("reference", "perMin", "reference, orders/min", ""),
    ("reference", "ratio", "reference, share of ceiling", " %"),
    ("reference", "overheadP50", "reference, overhead p50", " ms"),
    ("reference", "overheadP99", "reference, overhead p99", " ms"),
    ("zero", "perMin", "zero delay, orders/min", ""),
    ("zero", "overheadP50", "zero delay, overhead p50", " ms"),
    ("zero", "overheadP99", "zero delay, overhead p99", " ms"),
)


def table(runs: dict[tuple[str, str], list[dict[str, Any]]], labels: tuple[str, str]) -> str:
    lines = [
        f"| | {labels[0]} (median) | {labels[1]} (median) | {labels[0]} runs | {labels[1]} runs |",
        "|---|---|---|---|---|",
    ]
    for scenario, key, title, unit in ROWS:
        per = {label: [figures(r)[key] for r in runs[(label, scenario)]] for label in labels}
        lines.append(
            f"| {title} | {cell(median(per[labels[0]]), unit)} | {cell(median(per[labels[1]]), unit)} | "
            + " / ".join(cell(v) for v in per[labels[0]])
            + " | "
            + " / ".join(cell(v) for v in per[labels[1]])
            + " |"
        )
    for scenario in SCENARIOS:
        for label in labels:
            loads = ", ".join(f"{r['load'][0]}->{r['load'][1]}" for r in runs[(label, scenario)])
            failed = [r["log"] for r in runs[(label, scenario)] if r["rc"] != 0 or not r["summary"]]
            note = f"; not all confirmed or no report, see {', '.join(failed)}" if failed else ""
            lines.append(f"load average (1 min) around each {scenario} run of {label}: {loads}{note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="67924d6", help="commit before the process model (default 67924d6)")
    parser.add_argument("--after", default="HEAD", help="commit to compare it with (default HEAD)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each scenario on each tree (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (trees, logs)")
    args = parser.parse_args(argv)

    revs = {"before": git("rev-parse", "--short", args.before), "after": git("rev-parse", "--short", args.after)}
    labels = (f"before {revs['before']}", f"after {revs['after']}")
    scratch = Path(tempfile.mkdtemp(prefix="before-after-"))
    shared = shared_dir()
    if shared is not None:
        (scratch / "shared").symlink_to(shared)
    trees = {
        labels[0]: build_tree(revs["before"], scratch / "before"),
        labels[1]: build_tree(revs["after"], scratch / "after"),
    }
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {(label, s): [] for label in labels for s in SCENARIOS}
    print(f"scratch {scratch}; load average {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores", flush=True)
    try:
        for round_no in range(args.rounds):
            order = labels if round_no % 2 == 0 else labels[::-1]
            for scenario in SCENARIOS:
                for label in order:
                    tree = trees[label]
                    log = scratch / f"{label.split()[0]}-{scenario}-{round_no}.log"
                    result = run_bench(tree, scenario, tree / "bench" / "out", log)
                    runs[(label, scenario)].append(result)
                    f = figures(result)
                    print(
                        f"round {round_no + 1} {scenario:<9} {label:<16} {cell(f['perMin'])} orders/min, "
                        f"overhead p99 {cell(f['overheadP99'])} ms, load {result['load'][0]}->{result['load'][1]}, "
                        f"{result['s']} s, rc {result['rc']}",
                        flush=True,
                    )
        print()
        print(table(runs, labels))
        print()
        print(
            f"repeat with: .venv/bin/python scripts/before_after.py --before {args.before} --after {args.after} "
            f"--rounds {args.rounds}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
