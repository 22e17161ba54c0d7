"""Experiment trackers: a finished run logged to MLflow and/or Weights & Biases (``run --tracker mlflow --tracker wandb``).

What each tracker gets, read from the run folder (so it is exactly what results.json holds):

* metrics: every numeric field of every task's results entry, named ``<task>/<field>`` (``asr:librispeech-test-clean/wer``);
* params / config: the model name and args, the tasks, seed, limit, data root, git revision and the command;
* artifacts: ``results.json``, ``samples/*.jsonl`` and ``report.html`` where it was written.

``--tracker-args project=NAME,name=RUN,tags=a+b`` (defaults: project ``most-eval``, the run's name, no tags; tags are
joined with ``+``). MLflow logs to ``MLFLOW_TRACKING_URI``, else a local ``mlruns/`` file store (MLflow's filesystem
backend, which MLflow 3 allows with ``MLFLOW_ALLOW_FILE_STORE=true``: set here for that default only). W&B honours
``WANDB_MODE=offline`` and ``WANDB_DIR``, and then needs no network. Both packages are optional
(``pip install 'most-eval[trackers]'``); a missing one is one line naming that command, before any model work.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from most_eval.core.errors import MostEvalError
from most_eval.results.runs import Run, load_run

TRACKERS = {"mlflow": "mlflow", "wandb": "wandb"}  # name -> the module it needs
INSTALL = "pip install 'most-eval[trackers]'"


@dataclass(frozen=True)
class TrackerArgs:
    """``--tracker-args`` of every tracker."""

    project: str = "most-eval"  # MLflow experiment / W&B project
    name: str = ""  # the tracker run's name ("" = the run's name, as tables show it)
    tags: str = ""  # tags joined with "+" ("" = none)

    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.tags.split("+") if t.strip()]


class TrackerError(MostEvalError, ValueError):
    """A tracker that cannot be used (unknown, or its package absent); ``str()`` is one line."""


def check_trackers(names: list[str]) -> None:
    """TrackerError for an unknown tracker or one whose package is not installed (before any model work)."""
    for name in names:
        if name not in TRACKERS:
            raise TrackerError(f"--tracker {name}: unknown tracker (known: {', '.join(TRACKERS)})")
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise TrackerError(f"--tracker {name}: the {TRACKERS[name]} package is not installed: {INSTALL}")


def run_metrics(run: Run) -> dict[str, float]:
    """``<task>/<field>`` -> value for every finite number in the run's results entries (bools left out)."""
    out = {}
    for task, entry in sorted(run.data["results"].items()):
        for field, value in entry.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out[f"{task}/{field}"] = float(value)
    return out


def run_params(run: Run) -> dict[str, str]:
    """What the run was: model, its args, tasks and settings, as strings (trackers' params are strings)."""
    data = run.data
    params: dict[str, Any] = {"model": data["model"]["name"], "model_fingerprint": data["model"].get("fingerprint"),
                              "tasks": ",".join(sorted(data["results"])), "seed": data.get("seed"),
                              "limit": data.get("limit"), "data_root": data.get("data_root"),
                              "git_revision": data.get("git_revision"), "command": data.get("command"),
                              "run_name": data.get("run_name")}
    for key, value in (data["model"].get("args") or {}).items():
        params[f"model_args.{key}"] = value
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items() if v is not None}


def run_artifacts(run: Run) -> list[Path]:
    """results.json, the samples files and report.html, those that exist."""
    files = [run.results_path, *sorted((run.dir / "samples").glob("*.jsonl")), run.dir / "report.html"]
    return [f for f in files if f.is_file()]


def mlflow_name(name: str) -> str:
    """A metric name MLflow accepts: characters outside letters, digits, ``_ - . / :`` and space (an lm-eval
    filter's comma, ``exact_match,strict-match``) become ``_``."""
    return re.sub(r"[^\w.\-/: ]", "_", name)


def log_mlflow(run: Run, args: TrackerArgs) -> str:
    """Log the run to MLflow; returns the MLflow run id."""
    import mlflow

    if not os.environ.get("MLFLOW_TRACKING_URI"):  # the documented default: a file store under ./mlruns
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri(Path("mlruns").resolve().as_uri())
    mlflow.set_experiment(args.project)
    with mlflow.start_run(run_name=args.name or run.label, tags={t: "true" for t in args.tag_list()}) as active:
        mlflow.log_params(run_params(run))
        mlflow.log_metrics({mlflow_name(k): v for k, v in run_metrics(run).items()})
        for path in run_artifacts(run):
            folder = "samples" if path.parent.name == "samples" else None
            mlflow.log_artifact(str(path), artifact_path=folder)
        return active.info.run_id


def log_wandb(run: Run, args: TrackerArgs) -> str:
    """Log the run to W&B (offline with ``WANDB_MODE=offline``); returns the W&B run's folder."""
    import wandb

    active = wandb.init(project=args.project, name=args.name or run.label, tags=args.tag_list() or None,
                        config=run_params(run), reinit="finish_previous")
    try:
        metrics = run_metrics(run)
        active.log(metrics)
        active.summary.update(metrics)
        for path in run_artifacts(run):
            active.save(str(path), base_path=str(run.dir), policy="now")
        return str(Path(active.dir).parent)
    finally:
        active.finish()


def log_run(run_dir: str | Path, trackers: list[str], args: TrackerArgs) -> list[str]:
    """Log the finished run in ``run_dir`` to each tracker; one line per tracker saying where it went."""
    check_trackers(trackers)
    run = load_run(run_dir)
    lines = []
    for name in dict.fromkeys(trackers):
        if name == "mlflow":
            lines.append(f"mlflow: run {log_mlflow(run, args)} in experiment {args.project!r}")
        else:
            lines.append(f"wandb: {log_wandb(run, args)}")
    return lines
