"""``most-eval`` command line: a thin layer over :mod:`most_eval.run.runner`, :mod:`most_eval.registry` and friends.

Exit codes: 0 success; 1 ``--fail-on-error`` with error records, or ``--strict`` with tasks that could not run
(not supported, dataset error, scoring error); 2 bad input (unknown name, bad option value, unusable model or
checkpoint) — always one line on stderr.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from most_eval.core.adapter import Model
from most_eval.core.errors import MostEvalError
from most_eval.scoring.comparability import summary_line
from most_eval.core.options import OptionError, parse_options, split_pairs
from most_eval.scoring.paper import PAPER_GROUP_NAMES
from most_eval.registry import UnknownNameError, families, get_model_class, model_info, model_names, resolve_tasks
from most_eval.results.table import print_results
from most_eval.core.task import TaskContext
from most_eval.core.errors import DatasetError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="Evaluate speech-text LLMs on ASR, TTS, spoken-LM and spoken-QA benchmarks, offline-first.")
list_app = typer.Typer(no_args_is_help=True, help="List registered tasks or models.")
app.add_typer(list_app, name="list")


def _register_subcommands() -> None:
    """Leaderboard, compare and check live in their own module; imported here so ``--help`` lists them."""
    from most_eval.cli_data import data_app
    from most_eval.cli_leaderboard import check_command, compare_command, leaderboard_app

    app.add_typer(data_app, name="data")

    app.add_typer(leaderboard_app, name="leaderboard")
    app.command("compare")(compare_command)
    app.command("check")(check_command)

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # one-line errors stay one line

#: where the bundled mini suite lives (the default --data-root)
MINI_SUITE = Path(__file__).resolve().parent / "mini_suite"


class UserError(MostEvalError):
    """Any bad input the CLI reports as one line and exit code 2."""


def build_model(name: str, args: str | None, device: str = "cpu", seed: int = 0) -> Model:
    """:func:`most_eval.registry.build_model`, its build failures as a UserError (one line, exit 2)."""
    from most_eval.registry import ModelBuildError, build_model as build

    try:
        return build(name, args, device, seed)
    except ModelBuildError as exc:
        raise UserError(str(exc)) from exc


def default_judge(device: str, seed: int) -> Model:
    """Whisper-large-v3 when a local copy is configured (``MOST_EVAL_JUDGE_PATH``), else the offline baseline."""
    path = os.environ.get("MOST_EVAL_JUDGE_PATH")
    if path:
        return build_model("hf-whisper", f"path={path}", device, seed)
    err_console.print("[yellow]note:[/] judge ASR = offline-baseline (pocketsphinx): TTS and speech-to-speech QA "
                      "numbers are not comparable with the paper; for the reference judges pass --judge paper "
                      "--judge-args models=DIR (or set $MOST_EVAL_MODELS)", highlight=False)
    return build_model("offline-baseline", None, device, seed)


def paper_judge_folders(task_classes: list, judge_args: str | None) -> dict[str, Path]:
    """``--judge paper``: the reference judge's local folder for each task that needs a judge (checked to exist)."""
    from most_eval.scoring.paper import REFERENCE_JUDGES, judge_folder, models_folder

    models = models_folder(judge_args)
    folders = {}
    for cls in task_classes:
        if "judge" not in cls.needs:
            continue
        if cls.reference_judge not in REFERENCE_JUDGES:
            raise UserError(f"--judge paper: task {cls.name} names no reference judge")
        try:
            folders[cls.name] = judge_folder(REFERENCE_JUDGES[cls.reference_judge], models)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    return folders


def build_tasks(spec: str, data_root: Path, task_args: str | None, context: TaskContext, embedder: str | None,
                num_fewshot: int | None = None):
    """Task instances for ``--tasks`` with their typed options; ``--task-args`` keys go to the tasks that have them
    (``--embedder`` and lm-eval's ``--num_fewshot`` are task args with their own flags)."""
    classes = resolve_tasks(spec)
    raw = split_pairs(task_args or "")
    if embedder:
        raw["embedder"] = embedder
    if num_fewshot is not None:
        if not any("num_fewshot" in getattr(c.Options, "__dataclass_fields__", {}) for c in classes):
            raise OptionError(f"--num_fewshot {num_fewshot}: only text:<lm-eval task> tasks take it")
        if raw.get("num_fewshot", str(num_fewshot)) != str(num_fewshot):
            raise OptionError(f"--num_fewshot {num_fewshot} and --task-args num_fewshot={raw['num_fewshot']} differ")
        raw["num_fewshot"] = str(num_fewshot)
    known = set()
    tasks = []
    for cls in classes:
        fields = set(getattr(cls.Options, "__dataclass_fields__", {}))
        known |= fields
        mine = {k: v for k, v in raw.items() if k in fields}
        tasks.append(cls(data_root, parse_options(mine, cls.Options, what=f"--task-args key for {cls.name}"), context))
    unknown = set(raw) - known
    if unknown:
        raise OptionError(f"--task-args key(s) {', '.join(sorted(unknown))} not used by any selected task "
                          f"(their keys: {', '.join(sorted(known)) or 'none'})")
    return tasks


def build_embedders(tasks: list, device: str) -> dict:
    """The speaker embedder of each distinct ``embedder`` option among the tasks that need one (TTS SIM), built once;
    the caller lends each task its own through ``TaskContext.embedder``. A folder that holds no such model is a
    UserError (one line)."""
    from most_eval.models.speaker_embedders import build_embedder

    built = {}
    for spec in dict.fromkeys(t.options.embedder for t in tasks if "embedder" in t.needs):
        try:
            built[spec] = build_embedder(spec, device)
        except Exception as exc:  # a folder that is not that embedder's: one line, before any model work
            raise UserError(f"--embedder {spec}: cannot load it: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}") from exc
    return built


def check_run_paths(output: Path, data_root: Path, task_classes: list, embedder: str | None) -> None:
    """Output folder, data root and embedder checked before any model work; UserError (one line) otherwise."""
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output}: is a file, not a folder")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--output {output}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(output, os.W_OK | os.X_OK):
        raise UserError(f"--output {output}: folder is not writable")
    if any(c.dataset_folder for c in task_classes) and not data_root.is_dir():
        raise UserError(f"--data-root {data_root}: " + ("is not a folder" if data_root.exists() else "not found"))
    kind, _, path = (embedder or "").partition(":")
    if path and not Path(path).expanduser().exists():
        raise UserError(f"--embedder {embedder}: {path} not found (a local {kind} model folder is needed)")


def check_numbers(limit: int | None, batch_size: int, seed: int) -> None:
    """Numeric options in range, before anything loads; UserError (one line) otherwise."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: must be at least 1")
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: must be at least 1")
    if seed < 0:
        raise UserError(f"--seed {seed}: must be 0 or more")


def failed_tasks(document: dict) -> list[tuple[str, str]]:
    """(task, why) for every task that ran badly: error records, a scoring or dataset error, nothing scored."""
    failed = []
    for name, res in document["results"].items():
        if res.get("status") == "not supported":
            continue
        if res.get("status"):
            failed.append((name, f"{res['status']}: {res.get('detail', '')}"))
        elif res.get("errors"):
            failed.append((name, f"{res['errors']} error record(s)"))
        elif not res.get("scored"):
            failed.append((name, "no sample was scored"))
    return failed


@app.command()
def run(
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
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    log_samples: bool = typer.Option(False, "--log-samples", "--log_samples",
                                     help="Accepted for lm-eval compatibility; per-sample records are always written "
                                          "to OUTPUT/samples/<task>.jsonl.", show_default="on: always written"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show transformers' progress bars and notices "
                                 "(under torchrun: rank 0 only).", show_default="off: quiet"),
):
    """Evaluate MODEL on TASKS; writes OUTPUT/results.json and OUTPUT/samples/<task>.jsonl, resumable."""
    from most_eval.run.distributed import finish_distributed, init_distributed
    from most_eval.core.hf_loading import configure_output, offline_unless_opted_in
    from most_eval.run.output_lock import OutputBusy, OutputLock
    from most_eval.run.runner import evaluate

    offline_unless_opted_in()  # before anything imports huggingface_hub: no network unless HF_HUB_OFFLINE=0
    output = output or Path("runs") / model
    lock = OutputLock(output)
    dist = None
    try:
        check_numbers(limit, batch_size, seed)
        dist, device = init_distributed(device)
        configure_output(verbose=verbose and dist.is_main)  # before any model (and transformers) is imported
        task_classes = resolve_tasks(tasks)
        # an unknown model name or --model-args key before anything else
        parse_options(model_args, get_model_class(model).Args, what=f"--model-args key for {model}")
        needs_judge = any("judge" in c.needs for c in task_classes)
        paper_judges = needs_judge and (judge == "paper" or (  # a paper group implies --judge paper
            judge is None and any(p.strip() in PAPER_GROUP_NAMES for p in tasks.split(","))))
        judge_folders = paper_judge_folders(task_classes, judge_args) if paper_judges else {}
        if judge_args and not judge and not paper_judges:
            raise UserError("--judge-args needs --judge NAME: the default judge (offline-baseline, or hf-whisper "
                            "from $MOST_EVAL_JUDGE_PATH) takes no arguments")
        if judge and judge != "paper" and not paper_judges:
            parse_options(judge_args, get_model_class(judge).Args, what=f"--judge-args key for {judge}")
        context = TaskContext(output_dir=output, device=device, batch_size=batch_size, seed=seed)
        task_objs = build_tasks(tasks, data_root, task_args, context, embedder, num_fewshot=num_fewshot)
        refusal = None
        if dist.is_main:  # rank 0 checks and locks; every rank learns the verdict (none is left waiting)
            try:
                check_run_paths(output, data_root, task_classes, embedder)
                lock.acquire()
            except (OutputBusy, UserError) as exc:
                refusal = str(exc)
        if not dist.all_agree(refusal is None):
            raise UserError(refusal or f"{output}: rank 0 could not take the output folder")
        embedders = build_embedders(task_objs, device)  # helper models first: a bad one fails before the judge
        judge_lms = {getattr(t.options, "judge_lm", None) for t in task_objs
                     if getattr(t.options, "scorer", None) == "llm-judge"}
        if judge_lms:  # spoken QA's optional LLM judge: a helper model the task borrows from its context
            if len(judge_lms) > 1:
                raise UserError(f"one --task-args judge_lm per run, got {', '.join(sorted(map(str, judge_lms)))}")
            context.llm_judge = build_model("hf-causal-lm", f"path={judge_lms.pop()}", device, seed)
        if paper_judges:  # each task its protocol's judge, each judge built once
            built: dict[Path, Model] = {}
            from most_eval.scoring.paper import REFERENCE_JUDGES

            for task in task_objs:
                if task.name in judge_folders:
                    folder = judge_folders[task.name]
                    if folder not in built:
                        adapter = REFERENCE_JUDGES[type(task).reference_judge].adapter
                        built[folder] = build_model(adapter, f"path={folder}", device, seed)
                    task.context = dataclasses.replace(context, judge=built[folder])
        elif needs_judge:  # the judge before the model: a bad judge fails before any model work
            context.judge = build_model(judge, judge_args, device, seed) if judge else default_judge(device, seed)
        for task in task_objs:  # each task's own context: the judge wiring above may share one among tasks
            if "embedder" in task.needs:
                task.context = dataclasses.replace(task.context, embedder=embedders[task.options.embedder])
        the_model = build_model(model, model_args, device, seed)
        command = "most-eval " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        outcome = evaluate(the_model, task_objs, output, batch_size=batch_size, limit=limit, seed=seed,
                           show_progress=progress, console=err_console, command=command, dist=dist,
                           use_cache=not no_cache, data_root=data_root)
    except (UnknownNameError, OptionError, DatasetError, UserError) as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2)
    finally:
        lock.release()
        finish_distributed()
    if outcome is None:  # a rank other than 0: its shard is in the cache, rank 0 reports
        return
    print_results(outcome.document, console)
    console.print(f"results: {output / 'results.json'}")
    for name, res in outcome.document["results"].items():
        for warning in res.get("warnings", []):
            err_console.print(f"[yellow]warning:[/] {name}: {escape(str(warning))}", highlight=False)
    for name, entry in outcome.document.get("comparability", {}).items():
        line = summary_line(name, entry)
        status = outcome.document["results"].get(name, {}).get("status")
        if line and not status and name in {t.name for t in task_objs}:  # a task with a status has its own line
            err_console.print(f"[yellow]{escape(line)}[/]", highlight=False)
    for name in outcome.unsupported:
        res = outcome.document["results"][name]
        why = res.get('detail') or 'needs ' + str(res.get('capability'))
        err_console.print(f"[yellow]{name}: {res['status']}[/] ({escape(why)})", highlight=False)
    failed = failed_tasks(outcome.document)
    if (fail_on_error or strict) and failed:
        err_console.print(f"[red]{len(failed)} task(s) failed[/]: " + escape("; ".join(f"{t}: {why}" for t, why in failed))
                          + f" ({outcome.errors} sample(s) had errors; see samples/*.jsonl)")
        raise typer.Exit(1)
    if strict and outcome.unsupported:
        err_console.print(f"[red]--strict:[/] {len(outcome.unsupported)} task(s) not run")
        raise typer.Exit(1)


@app.command()
def train(
    config: Path = typer.Option(..., "--config", "-c", help="Training recipe YAML (e.g. reference_impl/configs/train_tiny.yaml)."),
    output: Path = typer.Option(..., "--output", "-o", help="Run folder: checkpoints, train_log.jsonl, the exported model."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="Stop after N optimizer steps (resume by re-running).",
                                            show_default="the recipe's total steps"),
):
    """Train MoST with the reference recipe (launch under accelerate/torchrun for several processes)."""
    try:
        from most_reference.train import main as train_main

        summary = train_main(config, output, max_steps)
    except (ValueError, OSError) as exc:  # bad config or paths: one line
        err_console.print(f"[red]error:[/] {' '.join(str(exc).split())}")
        raise typer.Exit(2)
    console.print(f"trained {summary['steps']} step(s) -> {summary['output']}"
                  + (f"; exported model: {summary['export']}" if summary.get("export") else ""))


#: ``most-eval routing``: the model it reports on, its --routing choices and default source task (the same values as
#: most_reference.routing's ROUTING_MODES / SOURCE_TASK, written out so that ``--help`` does not import torch)
ROUTING_MODEL = "most"
ROUTING_MODES = ("on", "off", "checkpoint")
ROUTING_TASK = "asr:librispeech-test-clean"


@app.command("routing")
def routing_command(
    output: Path = typer.Option(..., "--output", "-o", help="Folder for routing.json and routing.png."),
    model_args: Optional[str] = typer.Option(None, "--model-args", "--model_args", "-a",
                                             help="--model-args of the most model: key=value,... or a JSON object "
                                                  "(checkpoint=DIR, dtype=float32, ...).",
                                             show_default="the bundled tiny checkpoint, bfloat16"),
    data_root: Path = typer.Option(MINI_SUITE, "--data-root", help="Folder holding each dataset under its official "
                                   "name (the default is the bundled mini suite)."),
    task: str = typer.Option(ROUTING_TASK, "--task", help="ASR task whose utterances (audio + transcript) are "
                             "rendered as an ASR and a TTS training sequence each."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N usable utterances.",
                                        show_default="all"),
    routing: str = typer.Option("checkpoint", "--routing", help="on: modality mask forced on; off: mask off (a plain "
                                "DeepSeek-V2 MoE); checkpoint: as the checkpoint's config says."),
    batch_size: int = typer.Option(8, "--batch-size", "--batch_size", "-b", help="Sequences per forward pass "
                                   "(padding is not counted)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
):
    """Per-modality expert use of the MoST LM: OUTPUT/routing.json (shares, cross-modality, entropy per MoE layer)
    and OUTPUT/routing.png (heatmaps); definitions in most_reference.routing."""
    from most_eval.core.hf_loading import configure_output, offline_unless_opted_in

    offline_unless_opted_in()
    configure_output(verbose=False)
    try:
        check_numbers(limit, batch_size, 0)
        if routing not in ROUTING_MODES:
            raise UserError(f"--routing {routing}: expected one of {', '.join(ROUTING_MODES)}")
        task_classes = resolve_tasks(task)
        if len(task_classes) != 1 or task_classes[0].capability != "transcribe":
            raise UserError(f"--task {task}: expected one ASR task (speech with a reference transcript)")
        check_run_paths(output, data_root, task_classes, None)
        parse_options(model_args, get_model_class(ROUTING_MODEL).Args, what=f"--model-args key for {ROUTING_MODEL}")
        context = TaskContext(output_dir=output, device=device, batch_size=batch_size)
        samples = build_tasks(task, data_root, None, context, None)[0].samples()
        the_model = build_model(ROUTING_MODEL, model_args, device)
        from most_reference.routing import routing_report

        try:
            report = routing_report(the_model, samples, output, routing, limit, batch_size, task)
        except ValueError as exc:  # routing impossible for this checkpoint, no usable utterance
            raise UserError(" ".join(str(exc).split())) from exc
    except (UnknownNameError, OptionError, DatasetError, UserError) as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2)
    table = Table(title=f"cross-modality routed weight, modality routing "
                        f"{'on' if report['model']['modality_routing'] else 'off'}")
    for col in ("layer", "text -> audio experts", "audio -> text experts", "all"):
        table.add_column(col, justify="right")
    cell = lambda v: "-" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    for entry in report["layers"]:
        cross = entry["cross_modality"]
        table.add_row(str(entry["layer"]), cell(cross["text"]), cell(cross["audio"]), cell(cross["all"]))
    console.print(table)
    inputs = report["inputs"]
    console.print(f"{inputs['sequences']} sequences ({inputs['text_tokens']} text, {inputs['audio_tokens']} audio "
                  f"tokens); {len(inputs['skipped'])} skipped")
    console.print(f"report: {output / 'routing.json'}, {output / 'routing.png'}")


@list_app.command("tasks")
def list_tasks(
    options: bool = typer.Option(False, "--options", help="Show each task's --task-args keys: type, default, meaning.",
                                 show_default="off"),
):
    """Every task, its family, capability, dataset folder and whether the family runs it by default."""
    if options:
        console.print(task_options_table())
        for fam in sorted(families().values(), key=lambda f: f.name):
            if fam.dynamic:
                console.print(f"{fam.name}:{escape(DYNAMIC_PLACEHOLDER)} is available: {fam.description}, any task "
                              f"name of that harness (e.g. {fam.name}:arc_easy), with the options listed for it above"
                              + ("; --num_fewshot N sets num_fewshot" if fam.name == "text" else ""), highlight=False)
        return
    table = Table(title="tasks")
    for col in ("task", "needs", "dataset folder", "default", "description"):
        table.add_column(col, no_wrap=col != "description")
    for fam in sorted(families().values(), key=lambda f: f.name):
        for name, cls in sorted(fam.tasks.items()):
            table.add_row(name, cls.capability, cls.dataset_folder, "yes" if name in fam.defaults else "",
                          cls.description)
        if fam.dynamic:  # e.g. text:<lm-eval task>: any name of the family's harness
            cls = fam.dynamic(f"{fam.name}:{DYNAMIC_PLACEHOLDER}")
            table.add_row(escape(cls.name), cls.capability, cls.dataset_folder, "",
                          f"{fam.description}: any {DYNAMIC_PLACEHOLDER} (e.g. {fam.name}:arc_easy)")
    console.print(table)


#: what a dynamic family's task name stands for in listings (``text:<lm-eval task>``)
DYNAMIC_PLACEHOLDER = "<lm-eval task>"


@dataclasses.dataclass(frozen=True)
class OptionDoc:
    """One ``--task-args`` key of a task's Options dataclass."""

    key: str
    type: str
    default: str
    meaning: str


def option_docs(options_cls: type) -> list[OptionDoc]:
    """The fields of an Options dataclass: type, default and meaning. The meaning is the field's ``help`` metadata,
    else its trailing comment, else the comment lines right above it, looked up through the dataclass's bases (a
    subclass that only changes a default keeps its parent's meaning)."""
    if not dataclasses.is_dataclass(options_cls):
        return []
    docs = []
    for f in dataclasses.fields(options_cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        meaning = f.metadata.get("help") or next(
            (c for base in options_cls.__mro__ if f.name in getattr(base, "__annotations__", {})
             for c in [_field_comments(base).get(f.name, "")] if c), "")
        type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        docs.append(OptionDoc(f.name, type_name, "none" if default is None else str(default), meaning))
    return docs


def _field_comments(cls: type) -> dict[str, str]:
    """Field name -> its comment in ``cls``'s own source: the trailing comment of the field's lines, else the comment
    block right above it. Empty when the source cannot be read (a class built at run time)."""
    import ast
    import inspect
    import io
    import textwrap
    import tokenize

    try:
        source = textwrap.dedent(inspect.getsource(cls))
        tree = ast.parse(source)
        comments = {tok.start[0]: tok.string.lstrip("#").strip()
                    for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}
    except (OSError, TypeError, SyntaxError, tokenize.TokenError):
        return {}
    lines = source.splitlines()
    found = {}
    for node in tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        text = " ".join(comments[n] for n in range(node.lineno, node.end_lineno + 1) if n in comments)
        if not text:  # a comment block above the field
            above, n = [], node.lineno - 1
            while n >= 1 and n in comments and lines[n - 1].strip().startswith("#"):
                above.insert(0, comments[n])
                n -= 1
            text = " ".join(above)
        found[node.target.id] = text
    return found


def task_options_table() -> Table:
    """``list tasks --options``: the --task-args keys of every task, tasks sharing one Options class together."""
    groups: dict[type, list[str]] = {}
    for fam in sorted(families().values(), key=lambda f: f.name):
        for name, cls in sorted(fam.tasks.items()):
            groups.setdefault(cls.Options, []).append(name)
        if fam.dynamic:
            cls = fam.dynamic(f"{fam.name}:{DYNAMIC_PLACEHOLDER}")
            groups.setdefault(cls.Options, []).append(cls.name)
    table = Table(title="--task-args keys (key=value,...; a key goes to the selected tasks that have it)")
    for col in ("tasks", "key", "type", "default", "meaning"):
        table.add_column(col, no_wrap=col in ("key", "type"), overflow="fold")
    for options_cls, names in groups.items():
        docs = option_docs(options_cls) or [OptionDoc("(no options)", "", "", "")]
        for i, doc in enumerate(docs):
            table.add_row(escape("\n".join(names)) if i == 0 else "", escape(doc.key), escape(doc.type),
                          escape(doc.default), escape(doc.meaning), end_section=i == len(docs) - 1)
    return table


@list_app.command("models")
def list_models():
    """Every registered model with its capabilities (read without importing the backends: no torch needed)."""
    table = Table(title="models")
    for col in ("model", "capabilities", "description"):
        table.add_column(col, no_wrap=col == "model")
    for name in model_names():
        try:
            info = model_info(name)
            caps = ", ".join(sorted(info.capabilities)) if info.capabilities is not None else "from its files"
            table.add_row(name, caps, info.description)
        except Exception as exc:  # a broken third-party plugin must not hide the others
            table.add_row(name, "[red]unavailable[/]", escape(f"{type(exc).__name__}: {exc}"))
    console.print(table)


_register_subcommands()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
