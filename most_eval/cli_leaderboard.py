"""CLI for the leaderboard, run comparison and regression check (registered by ``most_eval.cli``):

    app.add_typer(leaderboard_app, name="leaderboard")   # most-eval leaderboard build [--data DIR] [--output DIR]
    app.command("compare")(compare_command)              # most-eval compare A B [--json]
    app.command("check")(check_command)                  # most-eval check --baseline A --candidate B ...

Exit codes: 0 ok / no significant regression; 1 significant regression (check); 2 refused or unreadable input.
Errors are one line on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from most_eval.compare import compare, comparison_table
from most_eval.leaderboard import ResultsFileError, build_leaderboard
from most_eval.regression import CheckRefused, check, parse_tolerance, write_refusal

EXIT_REGRESSION = 1
EXIT_REFUSED = 2

leaderboard_app = typer.Typer(help="Build the leaderboard (paper tables + your runs).", no_args_is_help=True,
                              add_completion=False)


def default_leaderboard_dir() -> Path:
    """The repo's ``leaderboards/`` (editable install), else ``./leaderboards``."""
    repo = Path(__file__).resolve().parents[1] / "leaderboards"
    return repo if (repo / "data" / "paper").is_dir() else Path.cwd() / "leaderboards"


def _console():
    """A rich console; when stdout is not a terminal (CI logs, pipes) use a wide fixed width instead of rich's 80."""
    import os

    from rich.console import Console

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=160)
    return console


def _fail(message: str, code: int = EXIT_REFUSED) -> typer.Exit:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(code)


@leaderboard_app.callback()
def _leaderboard_group() -> None:
    """Leaderboard commands."""


@leaderboard_app.command("build")
def build_command(
    data: Annotated[Optional[Path], typer.Option("--data", help="Input folder with paper/*.csv and runs/**/*.json "
                                                 "[default: the repo's leaderboards/data]")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", help="Output folder for *.md, index.html, plots/ "
                                                   "[default: the repo's leaderboards/]")] = None,
) -> None:
    """Write the markdown tables, index.html and plots (byte-identical for identical inputs)."""
    root = default_leaderboard_dir()
    data = data or root / "data"
    output = output or root
    try:
        written = build_leaderboard(data, output)
    except (ResultsFileError, FileNotFoundError, ValueError) as err:
        raise _fail(str(err)) from None
    for path in written:
        typer.echo(str(path))


def compare_command(
    a: Annotated[Path, typer.Argument(help="Run A: results folder or results.json")],
    b: Annotated[Path, typer.Argument(help="Run B: results folder or results.json")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON")] = False,
    resamples: Annotated[int, typer.Option("--resamples", min=1, help="Bootstrap resamples")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed")] = 0,
) -> None:
    """Per-task deltas B - A with paired bootstrap 95% intervals over the sample ids both runs scored."""
    try:
        comp = compare(a, b, n_resamples=resamples, seed=seed)
    except (ResultsFileError, ValueError) as err:
        raise _fail(str(err)) from None
    if json_out:
        typer.echo(json.dumps(comp.to_dict(), indent=2, sort_keys=True))
        return
    console = _console()
    console.print(comparison_table(comp))
    for task, reason in comp.skipped:
        console.print(f"skipped {task}: {reason}", markup=False, highlight=False, soft_wrap=True)


def check_command(
    baseline: Annotated[Path, typer.Option("--baseline", help="Baseline run: results folder or results.json")],
    candidate: Annotated[Path, typer.Option("--candidate", help="Candidate run: results folder or results.json")],
    tolerance: Annotated[Optional[str], typer.Option(
        "--tolerance", help="Per-metric tolerance, e.g. wer=0.3,accuracy=1.0,sim=0.01 (metric units)")] = None,
    junit: Annotated[Optional[Path], typer.Option("--junit", help="Write a JUnit XML report here")] = None,
    markdown: Annotated[Optional[Path], typer.Option("--markdown", help="Write a markdown summary here")] = None,
    resamples: Annotated[int, typer.Option("--resamples", min=1, help="Bootstrap resamples")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed")] = 0,
) -> None:
    """Fail (exit 1) when the candidate is significantly worse than the baseline beyond the tolerance; exit 2 when
    the runs are not comparable (different sample ids or dataset hashes) or a file is unreadable."""
    try:
        tol = parse_tolerance(tolerance)
    except ValueError as err:
        raise _fail(str(err)) from None
    try:
        report = check(baseline, candidate, tol, n_resamples=resamples, seed=seed, markdown_path=markdown,
                       junit_path=junit, console=_console())
    except (CheckRefused, ResultsFileError) as err:
        write_refusal(str(err), markdown, junit)
        raise _fail(str(err)) from None
    if not report.passed:
        raise typer.Exit(EXIT_REGRESSION)
