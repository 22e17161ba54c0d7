"""``most-eval train`` and ``most-eval routing``: the reference implementation's subcommands, registered with the
``most-eval`` command through the ``most_eval.commands`` entry-point group (as models and tasks are registered).

Imports stay light at module level (typer, rich, the harness's set-up helpers): torch and the recipe load when a
command runs, so ``most-eval --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from most_eval.core.errors import MostEvalError
from most_eval.core.options import parse_options
from most_eval.core.task import TaskContext
from most_eval.registry import get_model_class, resolve_tasks
from most_eval.run.setup import (MINI_SUITE, RunSetupError, build_model, build_tasks, check_numbers,
                                 check_run_paths)

from .routing_options import ROUTING_MODEL, ROUTING_MODES, SOURCE_TASK

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # one-line errors stay one line


def train_command(
    config: Path = typer.Option(..., "--config", "-c", help="Training recipe YAML (e.g. reference_impl/configs/train_tiny.yaml)."),
    output: Path = typer.Option(..., "--output", "-o", help="Run folder: checkpoints, train_log.jsonl, the exported model."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="Stop after N optimizer steps, with a checkpoint and an export (resume by re-running).",
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


def routing_command(
    output: Path = typer.Option(..., "--output", "-o", help="Folder for routing.json and routing.png."),
    model_args: Optional[str] = typer.Option(None, "--model-args", "--model_args", "-a",
                                             help="--model-args of the most model: key=value,... or a JSON object "
                                                  "(checkpoint=DIR, dtype=float32, ...).",
                                             show_default="the bundled tiny checkpoint, bfloat16"),
    data_root: Path = typer.Option(MINI_SUITE, "--data-root", help="Folder holding each dataset under its official "
                                   "name (the default is the bundled mini suite)."),
    task: str = typer.Option(SOURCE_TASK, "--task", help="ASR task whose utterances (audio + transcript) are "
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
            raise RunSetupError(f"--routing {routing}: expected one of {', '.join(ROUTING_MODES)}")
        task_classes = resolve_tasks(task)
        if len(task_classes) != 1 or task_classes[0].capability != "transcribe":
            raise RunSetupError(f"--task {task}: expected one ASR task (speech with a reference transcript)")
        check_run_paths(output, data_root, task_classes, None)
        parse_options(model_args, get_model_class(ROUTING_MODEL).Args, what=f"--model-args key for {ROUTING_MODEL}")
        context = TaskContext(output_dir=output, device=device, batch_size=batch_size)
        samples = build_tasks(task, data_root, None, context, None)[0].samples()
        the_model = build_model(ROUTING_MODEL, model_args, device)
        from most_reference.routing import routing_report

        try:
            report = routing_report(the_model, samples, output, routing, limit, batch_size, task)
        except ValueError as exc:  # routing impossible for this checkpoint, no usable utterance
            raise RunSetupError(" ".join(str(exc).split())) from exc
    except MostEvalError as exc:  # an unknown name, a bad option, an unreadable dataset, a path: one line
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
