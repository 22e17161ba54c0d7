"""``--seeds``: which tasks run once per seed, and one outcome from several seeds' outcomes.

A task that generates (:data:`GENERATING`) runs once per seed when the model samples; a task that only scores,
and every task of a model that declares itself deterministic (:meth:`~most_eval.core.adapter.Model.deterministic`),
runs once. The runner runs the seeds (:func:`most_eval.run.runner.run_seeds`); the numbers are combined by
:mod:`most_eval.results.seeds`.
"""

from __future__ import annotations

from most_eval.core.adapter import RESPOND, SYNTHESIZE, TRANSCRIBE, Model
from most_eval.core.task import Task
from most_eval.results.seeds import combine_seed_metrics
from most_eval.run.outcome import TaskOutcome

#: the capabilities whose outputs a sampling model draws afresh for each seed (``--seeds`` runs such tasks per seed)
GENERATING = (TRANSCRIBE, SYNTHESIZE, RESPOND)


def seeds_to_run(model: Model, task: Task, seeds: list[int] | None) -> list[int] | None:
    """The seeds ``task`` runs once each under ``--seeds``, or None for a single run: a task that only scores
    (spoken LM, text benchmarks), a run of one seed, or a model that declares itself deterministic for the task's
    capability (:meth:`Model.deterministic`) runs once."""
    if not seeds or len(seeds) < 2 or task.capability not in GENERATING or model.deterministic(task.capability):
        return None
    return list(seeds)


def combine_seeds(outcomes: list[tuple[int, TaskOutcome]]) -> TaskOutcome:
    """One outcome for several seeds of a task: every record tagged with its ``seed``; ``listed`` the samples
    (each seed lists the same), ``scored`` those scored in every seed, the error records every seed's; the metrics
    combined by :func:`~most_eval.results.seeds.combine_seed_metrics` (mean, std, interval, per seed). A seed that
    could not run or score (not supported, scoring error) makes the task's outcome that seed's."""
    failed = next(((s, o) for s, o in outcomes if o.status), None)
    if failed is not None:
        seed, outcome = failed
        outcome.detail = f"seed {seed}: {outcome.detail}" if outcome.detail else outcome.detail
        return outcome
    measured = [(s, o.metrics) for s, o in outcomes if o.metrics]
    if len(measured) >= 2:
        metrics = combine_seed_metrics(measured)
    else:  # one seed (or none) scored anything: its numbers, no spread
        metrics = {**(measured[0][1] if measured else {}), "seeds": [s for s, _ in outcomes]}
    first = outcomes[0][1]
    return TaskOutcome(
        metrics=metrics,
        items=[{**r, "seed": s} for s, o in outcomes for r in o.items],
        error_records=[{**r, "seed": s} for s, o in outcomes for r in o.error_records],
        listed=first.listed, dataset_sha256=first.dataset_sha256,
        warnings=[f"seed {s}: {w}" for s, o in outcomes for w in o.warnings],
        reused=sum(o.reused for _, o in outcomes), side_files=first.side_files,
        scored=len(set.intersection(*({str(r["id"]) for r in o.items} for _, o in outcomes))))
