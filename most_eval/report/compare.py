"""``most-eval compare``: per-task deltas B - A with paired bootstrap intervals.

A run is a results folder (``results.json`` + ``samples/*.jsonl``) or the path of its ``results.json``.
For every task both runs scored, the per-sample records of the ids *both* runs scored are paired and resampled
together (the same resampled ids for both runs), so the interval reflects the difference between the systems, not the
spread of the test set. Statistics recomputed on each resample:

- ``wer``: corpus WER = 100 * sum(errors) / sum(ref_words) (the harness's definition; ``errors`` = S + D + I); for the
  ``seed-tts-eval`` protocol, the mean of per-utterance WERs instead, as that protocol defines it;
- ``accuracy``: 100 * mean(correct) (``correct`` is 1, 0.5 or 0) over *items*: records of one item are averaged
  first and items are what gets resampled (:func:`item_of`; for sWUGGY/sBLIMP this is the official per-id /
  per-(type, subtype, id) averaging over voices, i.e. the results' ``accuracy_exact``; otherwise each record is an
  item and this is the plain mean);
- ``sim``: mean(sim) (cosine, raw units).

``delta = B - A`` in the metric's units (percentage points for WER and accuracy). The interval is the percentile
bootstrap interval of that delta over ``n_resamples`` resamples (default 1,000) drawn by ``numpy.random.default_rng``
seeded with ``(seed, crc32(task))``, so a task's interval does not depend on which other tasks are compared; the
resampling loop and the percentiles are :mod:`most_eval.scoring.bootstrap`'s, the same as for a single run's WER CI.

Samples pair by their key: the record ``id`` (see :meth:`Run.samples` for files whose ids repeat).

Two runs are *comparable* only when they ran the same thing the same way; otherwise :func:`compare` raises
:class:`NotComparable` (one line naming the first difference) instead of printing a delta that measures the
difference in set-up: the ``limit`` differs (``"limit differs: 5 vs none"``), or for a task both runs scored, its
config differs (protocol, options including scoring-only ones such as ``bootstrap`` or ``reduction``, judge identity,
embedder: ``"asr:librispeech-test-clean: protocol differs: whisper vs seed-tts-eval"``), its ``dataset_sha256``
differs, a metric value in ``results.json`` is NaN, infinite or not a number, or the sample ids differ. Error records
are part of the sample set: a sample that failed in one run is left out of the pairing (``only_a`` / ``only_b``).

The refusal rules, statistics and resampling are :mod:`most_eval.report.comparison`'s, shared with ``check``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from most_eval.report.comparison import MetricDelta, delta_table, metric_deltas, refuse, refusal_problems
from most_eval.results.runs import Run, load_run


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`: the deltas, what was not compared and why, and the resampling set-up."""

    a: str
    b: str
    a_model: str
    b_model: str
    n_resamples: int
    seed: int
    confidence: float
    deltas: tuple[MetricDelta, ...]
    skipped: tuple[tuple[str, str], ...]  # (task, reason) for tasks not compared

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (strict JSON: non-finite numbers become None)."""

        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        d = asdict(self)
        d["deltas"] = [{k: clean(v) for k, v in {**asdict(m), "significant": m.significant}.items()}
                       for m in self.deltas]
        d["skipped"] = [{"task": t, "reason": r} for t, r in self.skipped]
        return d


def compare_runs(run_a: Run, run_b: Run, *, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95,
                 tasks: list[str] | None = None) -> Comparison:
    """:func:`compare` on loaded runs; raises :class:`NotComparable` (see :func:`~most_eval.report.comparison.refusal_problems`)."""
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    tasks_a, tasks_b = set(run_a.scored_tasks()), set(run_b.scored_tasks())
    wanted = sorted(tasks_a | tasks_b) if tasks is None else list(tasks)
    ran_both = [t for t in wanted if (t in tasks_a or t in tasks_b) and run_a.ran(t) and run_b.ran(t)]
    refuse(run_a, run_b, refusal_problems(run_a, run_b, ran_both, first_only=True), count_more=False)
    deltas, skipped = [], []
    for task in wanted:
        if task not in tasks_a or task not in tasks_b:
            where = "A" if task not in tasks_a else "B"
            skipped.append((task, f"not scored in run {where}"))
            continue
        for _, metric, d in metric_deltas(run_a, run_b, [task], n_resamples=n_resamples, seed=seed,
                                          confidence=confidence):
            if d is None:
                skipped.append((task, f"{metric}: no sample id scored by both runs"))
            else:
                deltas.append(d)
    return Comparison(str(run_a.results_path), str(run_b.results_path), run_a.label, run_b.label, n_resamples, seed,
                      confidence, tuple(deltas), tuple(skipped))


def compare(a: str | Path, b: str | Path, *, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95,
            tasks: list[str] | None = None) -> Comparison:
    """Per-task, per-metric deltas ``B - A`` with paired bootstrap intervals (see the module docstring).

    ``a`` and ``b`` are results folders or ``results.json`` paths. Tasks scored by only one run, and metrics without
    shared ids, are listed in ``skipped``. Raises :class:`NotComparable` when the runs differ in set-up (limit, task
    config, dataset, sample ids) or report an unusable metric, and :class:`ResultsFileError` for unreadable results or
    samples files (both one-line messages)."""
    return compare_runs(load_run(a), load_run(b), n_resamples=n_resamples, seed=seed, confidence=confidence,
                        tasks=tasks)


def comparison_table(comp: Comparison):
    """A rich Table of a comparison: a row per delta, marked worse / better where the interval excludes 0."""

    def mark(d: MetricDelta) -> str:
        if not d.significant:
            return ""
        return "[red]worse[/red]" if d.worse_by > 0 else "[green]better[/green]"

    title = (f"B - A (A: {comp.a_model}, B: {comp.b_model}); paired bootstrap {comp.confidence:.0%} CI, "
             f"{comp.n_resamples} resamples")
    return delta_table(title, ("A", "B"), [(d, (mark(d),)) for d in comp.deltas], (("", "left"),))
