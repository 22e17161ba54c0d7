"""Mutation testing of the scoring core with mutmut, on demand (not part of the test suite).

    python3 -m pip install mutmut                    # once (3.8.1 used for README.md's report)
    python3 benchmarks/mutation/run.py               # every module of modules.toml
    python3 benchmarks/mutation/run.py wer has_answer --max-children 2
    python3 benchmarks/mutation/run.py run_comparison --mutants 'most_eval.report.comparison.x_paired_bootstrap*'

For each module it copies the working tree (``git ls-files``: tracked plus untracked-not-ignored files) to a scratch
folder, so the checkout is never mutated, adds the import-name links the editable install maps
(``most_eval_tasks -> tasks``, ``most_reference -> reference_impl``), writes mutmut's ``[mutmut]`` section into
that copy's ``setup.cfg`` from ``modules.toml`` and runs ``mutmut run`` there. It prints, and writes to
``<scratch>/<module>.json``, the counts per status and the surviving mutants with their diffs
(``mutmut show NAME`` in ``<scratch>/<module>`` shows one again).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LINKS = {"most_eval_tasks": "tasks", "most_reference": "reference_impl"}  # import name -> folder (pyproject.toml)
SOURCE_PATHS = ["most_eval", *LINKS]


def scratch_copy(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")
    if dest.exists():
        shutil.rmtree(dest)
    for rel in filter(None, files):
        src = REPO / rel
        if not src.is_file() or rel.startswith("benchmarks/"):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    for name, folder in LINKS.items():
        (dest / name).symlink_to(folder, target_is_directory=True)


def write_config(dest: Path, module: dict) -> None:
    def lines(values):
        return "\n" + "\n".join(f"    {v}" for v in values)

    (dest / "setup.cfg").write_text(
        "[mutmut]\n"
        f"source_paths ={lines(SOURCE_PATHS)}\n"
        f"only_mutate ={lines(module['mutate'])}\n"
        f"pytest_add_cli_args_test_selection ={lines(module['tests'])}\n"
        "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n    -q\n"
        f"also_copy ={lines(['tasks/', 'reference_impl/', 'scripts/', 'leaderboards/'])}\n"
        f"process_isolation = {module.get('isolation', 'fork')}\n"
        "use_git_change_detection = false\n", encoding="utf-8")


def summarise(workdir: Path) -> dict:
    """Counts per status and the survivors' diffs, from ``mutmut results --all True`` / ``mutmut show``."""
    listing = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "True"], cwd=workdir,
                             capture_output=True, text=True, check=True).stdout
    statuses = dict(line.strip().rsplit(": ", 1) for line in listing.splitlines() if ": " in line)
    counts = Counter(statuses.values())
    survivors = sorted(k for k, v in statuses.items() if v not in ("killed", "timeout", "segfault", "not checked"))
    diffs = {}
    for name in survivors:
        out = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=workdir, capture_output=True,
                             text=True)
        diffs[name] = "\n".join(line for line in out.stdout.splitlines()
                                if line[:1] in "+-" and not line.startswith(("+++", "---")))
    return {"generated": len(statuses), "counts": dict(counts), "survivors": survivors,
            "statuses": statuses, "diffs": diffs}


def main() -> int:
    modules = tomllib.loads((HERE / "modules.toml").read_text())["modules"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", choices=[[], *modules], default=[], metavar="MODULE",
                        help=f"modules to mutate (default all): {', '.join(modules)}")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutant workers (default 2)")
    parser.add_argument("--mutants", nargs="*", default=[], metavar="NAME",
                        help="only these mutant names or globs, e.g. 'most_eval.report.comparison.x_paired_bootstrap*'")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "most-eval-mutation",
                        help="where the copies are made (default $TMPDIR/most-eval-mutation)")
    args = parser.parse_args()
    for name in args.modules or list(modules):
        workdir = args.scratch / name
        print(f"== {name}: {', '.join(modules[name]['mutate'])} in {workdir}", flush=True)
        scratch_copy(workdir)
        write_config(workdir, modules[name])
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        with open(workdir / "mutmut-run.log", "w") as log:  # mutmut redraws a progress line: keep it off screen
            subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children),
                            *args.mutants],
                           cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        summary = summarise(workdir)
        (args.scratch / f"{name}.json").write_text(json.dumps(summary, indent=1))
        print(f"== {name}: {summary['generated']} mutants: {summary['counts']}")
        for survivor in summary["survivors"]:
            print(f"{survivor}: {summary['statuses'][survivor]}\n{summary['diffs'][survivor]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
