"""``most-eval run``: a thin layer over :func:`most_eval.evaluate` that prints what a person reads after a run.

Exit codes: 0 success; 1 ``--fail-on-error`` with error records, or ``--strict`` with tasks that could not run
(not supported, dataset error, scoring error); 2 bad input (unknown name, bad option value, unusable model or
checkpoint) -- always one line on stderr.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from .common import console, err_console
from most_eval.core.audio import DEFAULT_MAX_SECONDS
from most_eval.core.errors import DatasetError, MostEvalError
from most_eval.core.options import OptionError
from most_eval.registry import UnknownNameError, resolve_tasks
from most_eval.results.table import print_results
from most_eval.run.runner import RunInterrupted
from most_eval.run.setup import MINI_SUITE, NoDatasetsError, RunSetupError, failed_tasks, unmeasured_tasks
from most_eval.report.trackers import TrackerError
from most_eval.scoring.comparability import summary_line


def run(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", "-m", help="Model name (see `most-eval list models`)."),
    tasks: str = typer.Option(..., "--tasks", "-t", help="Comma-separated task or family names, e.g. asr,slm:swuggy-dev."),
    model_args: Optional[str] = typer.Option(None, "--model-args", "--model_args", "-a",
                                             help="key=value,... or a JSON object.",
                                             show_default="the model's defaults"),
    data_root: Path = typer.Option(MINI_SUITE, "--data-root", help="Folder holding each dataset under its official "
                                   "name (the default is the bundled mini suite)."),
    output: Optional[Path] = typer.Option(None, "--output", "--output_path", "-o", help="Output folder.",
                                          show_default="runs/<model>"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N scored items of each task (an sLM "
                                        "item is a pair or a word group: all its wavs are kept).", show_default="all"),
    batch_size: int = typer.Option(8, "--batch-size", "--batch_size", "-b", help="Samples per model call."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    seed: int = typer.Option(0, "--seed", help="Seed for sampling and bootstrap resampling."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Run the tasks that generate (TTS, S->S and S->T "
                                        "answers, transcripts) once per seed: a count N (seeds --seed to "
                                        "--seed+N-1) or seeds as 0,1,2; results.json holds the mean, std, a 95% "
                                        "interval over seeds and each seed's numbers. A model that does not sample "
                                        "runs once and says so.", show_default="one run at --seed"),
    judge: Optional[str] = typer.Option(None, "--judge", help="ASR model that transcribes generated speech (TTS, S->S QA); `paper` = each task's reference judge from a local models folder.",
                                        show_default="hf-whisper at $MOST_EVAL_JUDGE_PATH, else offline-baseline; "
                                                     "paper for a paper group"),
    judge_args: Optional[str] = typer.Option(None, "--judge-args", help="--model-args of the judge; with --judge paper: models=DIR (else $MOST_EVAL_MODELS).",
                                             show_default="the judge's defaults"),
    embedder: Optional[str] = typer.Option(None, "--embedder", help="Speaker embedder for TTS SIM: resemblyzer, ecapa:PATH, wavlm:PATH.",
                                           show_default="the task's embedder option, resemblyzer"),
    task_args: Optional[str] = typer.Option(None, "--task-args", help="key=value options for the tasks that have them "
                                            "(see `most-eval list tasks --options`).", show_default="each task's defaults"),
    num_fewshot: Optional[int] = typer.Option(None, "--num-fewshot", "--num_fewshot", min=0,
                                              help="lm-eval's few-shot count for text:<lm-eval task> tasks (the "
                                                   "num_fewshot task arg).", show_default="the lm-eval task's own"),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 as --fail-on-error does, and also when a task is not supported by the model.",
                                show_default="off"),
    fail_on_error: bool = typer.Option(False, "--fail-on-error", help="Exit 1 when any task has error records, a dataset or scoring error, or no scored sample.",
                                       show_default="off"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute every sample instead of reusing cached records.",
                                  show_default="off: cached records are reused"),
    name: Optional[str] = typer.Option(None, "--name", help="The run's name in leaderboards and comparisons.",
                                       show_default="the output folder's name"),
    max_audio_seconds: float = typer.Option(DEFAULT_MAX_SECONDS, "--max-audio-seconds",
                                            help="Longest input or prompt audio read; a longer file is an error "
                                                 "record, checked from its header before it is decoded."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    report: bool = typer.Option(False, "--report", help="Write OUTPUT/report.html at the end (most-eval report).",
                                show_default="off"),
    tracker: Optional[list[str]] = typer.Option(None, "--tracker", help="Log the finished run to an experiment "
                                                "tracker: mlflow or wandb (repeatable; pip install 'most-eval[trackers]').",
                                                show_default="none"),
    tracker_args: Optional[str] = typer.Option(None, "--tracker-args", help="key=value,... for the trackers: project, "
                                               "name, tags (joined with +).",
                                               show_default="project=most-eval, the run's name, no tags"),
    log_samples: bool = typer.Option(False, "--log-samples", "--log_samples",
                                     help="Accepted for lm-eval compatibility; per-sample records are always written "
                                          "to OUTPUT/samples/<task>.jsonl.", show_default="on: always written"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show transformers' progress bars and notices "
                                 "(under torchrun: rank 0 only).", show_default="off: quiet"),
):
    """Evaluate MODEL on TASKS; writes OUTPUT/results.json and OUTPUT/samples/<task>.jsonl, resumable."""
    from most_eval.api import evaluate

    repeated = repeated_option(sys.argv[1:], ctx.command.params)
    if repeated:
        err_console.print(f"[red]error:[/] {escape(repeated)} given: give the option once", highlight=False)
        raise typer.Exit(2)

    try:  # a tracker that cannot be used is refused before any model work
        trackers = tracker_plan(tracker or [], tracker_args)
    except (TrackerError, OptionError) as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2)
    try:
        document = evaluate(
            model, tasks, model_args=model_args, output=output, limit=limit, batch_size=batch_size,
            data_root=data_root, judge=judge, seed=seed, judge_args=judge_args, embedder=embedder,
            task_args=task_args, num_fewshot=num_fewshot, device=device, use_cache=not no_cache,
            max_audio_seconds=max_audio_seconds, run_name=name, seeds=seeds,
            show_progress=progress, verbose=verbose, console=err_console, note=_note,
            command="most-eval " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    except (UnknownNameError, OptionError, DatasetError, RunSetupError) as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2)
    except RunInterrupted as exc:
        err_console.print(f"[yellow]interrupted:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(130)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted:[/] the outputs already cached are kept; re-run the same command to "
                          "resume", highlight=False)
        raise typer.Exit(130)
    except NoDatasetsError as exc:  # nothing could be measured: exit 1, as for a task that measured nothing
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1)
    if document is None:  # a rank other than 0: its shard is in the cache, rank 0 reports
        return
    run_dir = output or Path("runs") / model
    after_run_failed = after_run(run_dir, report, trackers)
    report_run(document, run_dir, tasks=resolve_tasks(tasks), fail_on_error=fail_on_error, strict=strict)
    if after_run_failed:  # the results stand; what was asked for after them did not happen
        raise typer.Exit(1)


def after_run(run_dir: Path, report: bool, trackers) -> bool:
    """``--report`` and ``--tracker``: the page, then each tracker; a failure is one line (the results are already
    written). Returns whether any failed."""
    failed = False
    if report:
        from most_eval.report.html_report import build_report

        try:
            err_console.print(f"report: {escape(str(build_report(run_dir)))}", highlight=False)
        except (MostEvalError, OSError, ValueError) as exc:
            err_console.print(f"[red]error:[/] report: {escape(str(exc))}", highlight=False)
            failed = True
    if trackers is not None:
        from most_eval.report.trackers import log_run

        try:
            for line in log_run(run_dir, *trackers):
                err_console.print(escape(line), highlight=False)
        except Exception as exc:  # a tracker's own failure (store unwritable, bad URI): one line, not a traceback
            first = str(exc).splitlines()[0] if str(exc) else ""
            err_console.print(f"[red]error:[/] tracker: {type(exc).__name__}: {escape(first)}", highlight=False)
            failed = True
    return failed


def tracker_plan(names: list[str], args: str | None):
    """``(tracker names, TrackerArgs)`` for ``--tracker`` / ``--tracker-args``, checked (known, installed); None
    without ``--tracker``."""
    from most_eval.core.options import parse_options
    from most_eval.report.trackers import TrackerArgs, check_trackers

    if not names:
        if args:
            raise OptionError("--tracker-args given without --tracker")
        return None
    check_trackers(names)
    return names, parse_options(args, TrackerArgs, what="--tracker-args key")


def repeated_option(argv: list[str], params) -> str | None:
    """``"--output and --output_path"`` (or ``"--seed twice"``) for the first option that ``argv`` gives more than
    once after its ``run`` command, where click would silently keep the last value; None when each is given once, or
    when ``argv`` is not a ``run`` command line (an in-process runner's)."""
    if "run" not in argv:
        return None
    options: dict[str, tuple[str, bool]] = {}
    repeatable: set[str] = set()  # options meant to be given several times (--tracker)
    for param in params:
        if param.param_type_name == "option":
            options.update((opt, (param.name, bool(param.is_flag or param.count))) for opt in param.opts)
            options.update((opt, (param.name, True)) for opt in param.secondary_opts)
            if param.multiple:
                repeatable.add(param.name)
    seen: dict[str, str] = {}
    args = iter(argv[argv.index("run") + 1:])
    for arg in args:
        if arg == "--":
            break
        flag = arg.split("=", 1)[0]
        if flag not in options:
            continue
        name, is_flag = options[flag]
        if name in seen and name not in repeatable:
            return f"{flag} twice" if seen[name] == flag else f"{seen[name]} and {flag}"
        seen[name] = flag
        if not is_flag and "=" not in arg:
            next(args, None)  # its value, whatever it looks like
    return None


def _note(text: str) -> None:
    err_console.print(f"[yellow]note:[/] {text}", highlight=False)


def report_run(document: dict, output: Path, *, tasks: list, fail_on_error: bool, strict: bool) -> None:
    """The results table, warnings, comparability and not-supported lines; exit 1 when a task measured nothing, and
    under ``--fail-on-error`` / ``--strict`` when tasks failed (or, with ``--strict``, were not run)."""
    print_results(document, console)
    console.print(f"results: {output / 'results.json'}")
    for name, res in document["results"].items():
        for warning in res.get("warnings", []):
            err_console.print(f"[yellow]warning:[/] {name}: {escape(str(warning))}", highlight=False)
    names = [t.name for t in tasks]  # this run's tasks, in run order (results.json may hold earlier ones too)
    for name, entry in document.get("comparability", {}).items():
        line = summary_line(name, entry)
        status = document["results"].get(name, {}).get("status")
        if line and not status and name in names:  # a task with a status has its own line
            err_console.print(f"[yellow]{escape(line)}[/]", highlight=False)
    unsupported = [n for n in names if document["results"].get(n, {}).get("status")]  # not run, or not scored
    for name in unsupported:
        res = document["results"][name]
        why = res.get('detail') or 'needs ' + str(res.get('capability'))
        err_console.print(f"[yellow]{name}: {res['status']}[/] ({escape(why)})", highlight=False)
    failed = failed_tasks(document)
    if (fail_on_error or strict) and failed:
        errors = sum(r.get("errors", 0) for n, r in document["results"].items() if n in names)
        err_console.print(f"[red]{len(failed)} task(s) failed[/]: "
                          + escape("; ".join(f"{t}: {why}" for t, why in failed))
                          + f" ({errors} sample(s) had errors; see samples/*.jsonl)")
        raise typer.Exit(1)
    nothing = unmeasured_tasks(document, names)
    if nothing:
        err_console.print(f"[red]{len(nothing)} task(s) measured nothing[/]: "
                          + escape("; ".join(f"{t}: {why}" for t, why in nothing)) + " (see samples/*.jsonl)")
        raise typer.Exit(1)
    if strict and unsupported:
        err_console.print(f"[red]--strict:[/] {len(unsupported)} task(s) not run")
        raise typer.Exit(1)
