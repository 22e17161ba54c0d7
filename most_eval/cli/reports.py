"""``most-eval leaderboard build``, ``most-eval compare A B``, ``most-eval check --baseline A --candidate B`` and
``most-eval report RUN_DIR``.

Exit codes: 0 ok / no significant regression; 1 significant regression (check); 2 refused, unreadable input or a
path that cannot be used (a folder where a file is written, a file where a folder is). Errors are one line on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import fail, os_error_line, path_problem, wide_console
from most_eval.scoring.bootstrap import MAX_RESAMPLES
from most_eval.report.leaderboard.build import build_leaderboard
from most_eval.results.store import ResultsFileError
from most_eval.report.comparison import NotComparable
from most_eval.report.check import DEFAULT_TOLERANCE, check, parse_tolerance, write_refusal
from most_eval.report.compare import compare, comparison_table

EXIT_REGRESSION = 1

leaderboard_app = typer.Typer(help="Build the leaderboard (paper tables + your runs).", no_args_is_help=True,
                              add_completion=False)


def default_leaderboard_dir() -> Path:
    """The repo's ``leaderboards/`` (editable install), else ``./leaderboards``."""
    repo = Path(__file__).resolve().parents[2] / "leaderboards"
    return repo if (repo / "data" / "paper").is_dir() else Path.cwd() / "leaderboards"


@leaderboard_app.callback()
def _leaderboard_group() -> None:
    """Leaderboard commands."""


@leaderboard_app.command("build")
def build_command(
    data: Annotated[Optional[Path], typer.Option("--data", help="Input folder with paper/*.csv and runs/**/*.json",
                                                 show_default="the repo's leaderboards/data")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", help="Output folder for *.md, index.html, plots/",
                                                   show_default="the repo's leaderboards/")] = None,
    runs: Annotated[Optional[list[str]], typer.Option("--runs", help="Run folders (or results.json files) to add, "
                                                      "e.g. --runs runs/* (a shell glob, or a quoted one)",
                                                      show_default="only the runs under --data")] = None,
    more_runs: Annotated[Optional[list[str]], typer.Argument(
        help="More run folders: what a shell glob after --runs expands to", show_default=False)] = None,
) -> None:
    """Write the markdown tables, index.html and plots (byte-identical for identical inputs)."""
    root = default_leaderboard_dir()
    data = data or root / "data"
    output = output or root
    problem = path_problem("--data", data, folder=True) or path_problem("--output", output, folder=True)
    if problem:
        raise fail(problem)
    try:
        written = build_leaderboard(data, output, run_folders([*(runs or []), *(more_runs or [])]))
    except (ResultsFileError, FileNotFoundError, ValueError) as err:
        raise fail(str(err)) from None
    except OSError as err:
        raise fail(f"cannot write the leaderboard: {os_error_line(err)}") from None
    for path in written:
        typer.echo(str(path))


def run_folders(given: list[str]) -> list[Path]:
    """The run folders ``--runs`` names: each path as given, a quoted glob expanded (sorted); one that matches
    nothing is refused."""
    import glob

    out: list[Path] = []
    for item in given:
        if glob.has_magic(item):
            matches = sorted(glob.glob(item))
            if not matches:
                raise fail(f"--runs {item}: matches no run folder")
            out += [Path(m) for m in matches]
        else:
            out.append(Path(item))
    return out


def _task_list(tasks: str | None) -> list[str] | None:
    """``--tasks a,b`` as a list (None: the default selection)."""
    return [t.strip() for t in tasks.split(",") if t.strip()] or None if tasks else None


def compare_command(
    a: Annotated[Path, typer.Argument(help="Run A: results folder or results.json")],
    b: Annotated[Path, typer.Argument(help="Run B: results folder or results.json")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON",
                                           show_default="off: a table")] = False,
    resamples: Annotated[int, typer.Option("--resamples", min=1, max=MAX_RESAMPLES, help="Bootstrap resamples")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed")] = 0,
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Comma-separated tasks to compare",
                                                 show_default="the tasks both runs scored")] = None,
) -> None:
    """Per-task deltas B - A with paired bootstrap 95% intervals over the sample ids both runs scored; exit 2 when the
    runs are not comparable (limit, task config, dataset or sample ids differ; a NaN metric) or a file is unreadable."""
    try:
        comp = compare(a, b, n_resamples=resamples, seed=seed, tasks=_task_list(tasks))
    except (NotComparable, ResultsFileError, ValueError) as err:
        raise fail(str(err)) from None
    if json_out:
        typer.echo(json.dumps(comp.to_dict(), indent=2, sort_keys=True))
        return
    console = wide_console()
    console.print(comparison_table(comp))
    for task, reason in comp.skipped:
        console.print(f"skipped {task}: {reason}", markup=False, highlight=False, soft_wrap=True)


def check_command(
    baseline: Annotated[Path, typer.Option("--baseline", help="Baseline run: results folder or results.json")],
    candidate: Annotated[Path, typer.Option("--candidate", help="Candidate run: results folder or results.json")],
    tolerance: Annotated[Optional[str], typer.Option(
        "--tolerance", help="Per-metric tolerance in metric units; metrics not named keep their default",
        show_default=",".join(f"{k}={v}" for k, v in DEFAULT_TOLERANCE.items()))] = None,
    junit: Annotated[Optional[Path], typer.Option("--junit", help="Write a JUnit XML report here",
                                                  show_default="not written")] = None,
    markdown: Annotated[Optional[Path], typer.Option("--markdown", help="Write a markdown summary here",
                                                     show_default="not written")] = None,
    resamples: Annotated[int, typer.Option("--resamples", min=1, max=MAX_RESAMPLES, help="Bootstrap resamples")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed")] = 0,
    tasks: Annotated[Optional[str], typer.Option("--tasks", help="Comma-separated tasks to check",
                                                 show_default="every task either run scored")] = None,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="A task the baseline scored and the "
                                                "candidate did not is a note, not a failure",
                                                show_default="off: it fails the gate")] = False,
) -> None:
    """Fail (exit 1) when the candidate is significantly worse than the baseline beyond the tolerance; exit 2 when
    the runs are not comparable (limit, task config, dataset or sample ids differ; a NaN metric), a file is
    unreadable or a report path cannot be written."""
    try:
        tol = parse_tolerance(tolerance)
    except ValueError as err:
        raise fail(str(err)) from None
    problem = path_problem("--junit", junit, folder=False) or path_problem("--markdown", markdown, folder=False)
    if problem:
        raise fail(problem)
    try:
        report = check(baseline, candidate, tol, n_resamples=resamples, seed=seed, markdown_path=markdown,
                       junit_path=junit, console=wide_console(), tasks=_task_list(tasks),
                       allow_missing=allow_missing)
    except (NotComparable, ResultsFileError) as err:
        try:
            write_refusal(str(err), markdown, junit)
        except OSError as write_err:
            raise fail(f"{err}; and cannot write the report: {os_error_line(write_err)}") from None
        raise fail(str(err)) from None
    except OSError as err:
        raise fail(f"cannot write the report: {os_error_line(err)}") from None
    if not report.passed:
        raise typer.Exit(EXIT_REGRESSION)


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (or its results.json)")],
    worst: Annotated[int, typer.Option("--worst", min=0, help="Worst samples shown per task")] = 10,
    random_n: Annotated[int, typer.Option("--random", min=0, help="Random samples shown per task, besides")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random draw")] = 0,
) -> None:
    """Write RUN_DIR/report.html: headline numbers, the worst and random samples with word diffs and audio players."""
    from most_eval.report.html_report import build_report

    try:
        page = build_report(run_dir, worst=worst, random_n=random_n, seed=seed)
    except (ResultsFileError, FileNotFoundError, ValueError) as err:
        raise fail(str(err)) from None
    except OSError as err:
        raise fail(f"cannot write the report: {os_error_line(err)}") from None
    typer.echo(str(page))

