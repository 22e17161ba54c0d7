"""Run the whole test suite N times in a row and log each run: the flakiness check (a test that fails once in many
runs fails CI at random).

    python benchmarks/repeat_suite.py --runs 20 [--log benchmarks/repeat_suite.jsonl] [-- PYTEST ARGS ...]

Each run is ``python -m pytest -q -p no:cacheprovider`` (plus PYTEST ARGS) in the repository root, as CI runs it.
One JSON line per run is appended to the log: the commit, start time, wall seconds, the pytest summary counts and the
failing test ids; a failing run's pytest output is kept next to the log (``<log stem>.run<N>-<commit>.txt``). It stops at the first failing run unless ``--keep-going``; the exit status is 1 if any run failed.
The summary printed at the end is "consecutive passing runs: K of N, wall min/median/max".
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")


def summary_counts(output: str) -> dict[str, int]:
    """pytest's final line (``3 failed, 720 passed, 2 skipped in 700.1s``) as counts; missing kinds are 0."""
    lines = [line for line in output.splitlines() if " in " in line and COUNT.search(line)]
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    for n, kind in COUNT.findall(lines[-1] if lines else ""):
        counts["errors" if kind.startswith("error") else kind] = int(n)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs to make (default 20)")
    parser.add_argument("--log", type=Path, default=REPO / "benchmarks" / "repeat_suite.jsonl",
                        help="JSON-lines log, appended to (default benchmarks/repeat_suite.jsonl)")
    parser.add_argument("--keep-going", action="store_true", help="do not stop at the first failing run")
    parser.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    walls, streak, any_failed = [], 0, False
    for i in range(1, args.runs + 1):
        started = time.perf_counter()
        when = datetime.now(timezone.utc).isoformat(timespec="seconds")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE",
                               *args.pytest_args], cwd=REPO, capture_output=True, text=True)
        wall = round(time.perf_counter() - started, 1)
        counts = summary_counts(proc.stdout)
        failing = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, re.M)))
        ok = proc.returncode == 0
        entry = {"run": i, "commit": commit, "started": when, "wall_seconds": wall, "returncode": proc.returncode,
                 **counts, "failing": failing}
        if not ok:  # what failed and why, next to the log: the short test summary and the failures' tracebacks
            report = args.log.with_name(f"{args.log.stem}.run{i}-{commit}.txt")
            report.write_text(proc.stdout[-200_000:] + proc.stderr[-20_000:])
            entry["report"] = str(report)
        with open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")
        walls.append(wall)
        print(f"run {i}/{args.runs}: {'pass' if ok else 'FAIL'} in {wall:.0f} s "
              f"({counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped)"
              + (f": {', '.join(failing)}" if failing else ""), flush=True)
        if ok and not any_failed:
            streak += 1
        any_failed = any_failed or not ok
        if not ok and not args.keep_going:
            break
    print(f"consecutive passing runs: {streak} of {len(walls)}; wall min/median/max "
          f"{min(walls):.0f}/{statistics.median(walls):.0f}/{max(walls):.0f} s; log {args.log}")
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.exit(main())
