"""What running a task and a run produce: :class:`TaskOutcome` (a task's metrics, records and counts),
:class:`RunOutcome` (the results document and the counts the CLI's exit code reads), and a task's entry in
results.json (:func:`results_entry`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from most_eval.results.store import error_summary


@dataclass
class TaskOutcome:
    """What running one task produced."""

    metrics: dict
    items: list[dict]
    error_records: list[dict]
    listed: int
    dataset_sha256: str | None = None
    warnings: list[str] = field(default_factory=list)  # problems of the model's outputs beyond single samples
    status: str | None = None  # "not supported" / "dataset error" when the task could not run
    capability: str | None = None
    detail: str | None = None
    reused: int = 0  # records taken from the cache instead of running the model
    #: the task's side files (:meth:`Task.side_files`) under the output folder: content, or None to remove
    side_files: dict[Path, str | bytes | None] = field(default_factory=dict)
    #: samples scored, where that is not ``listed`` less the error records (several seeds: scored in every seed)
    scored: int | None = None


@dataclass
class RunOutcome:
    """The whole run: the results document plus counts the CLI uses for its exit code."""

    document: dict
    errors: int = 0
    unsupported: list[str] = field(default_factory=list)


def results_entry(outcome: TaskOutcome, seconds: float) -> dict:
    """A scored task's entry in results.json: its metrics, the scored / listed / error / reused counts and its
    time, the first error reason and the warnings; a scoring error says so first (every sample then has its error
    record)."""
    scored = outcome.scored if outcome.scored is not None else outcome.listed - len(outcome.error_records)
    entry = {**outcome.metrics, "scored": scored, "listed": outcome.listed,
             "errors": len(outcome.error_records), "reused": outcome.reused, "seconds": round(seconds, 3)}
    if outcome.status:
        entry = {"status": outcome.status, "detail": outcome.detail, **entry}
    summary = error_summary(outcome.error_records)
    if summary:
        entry["first_error"] = summary
    if outcome.warnings:
        entry["warnings"] = outcome.warnings
    return entry
