"""What ``compare`` and ``check`` share: the one gate that refuses incomparable runs, the paired bootstrap of a metric
delta, the task x metric loop and the table formatting.

Two runs are *comparable* only when they ran the same thing the same way; otherwise both commands raise
:class:`NotComparable` (one line naming the difference) instead of printing a delta that measures the difference in
set-up: the ``limit`` differs (``"limit differs: 5 vs none"``), or for a task both runs scored, its config differs
(protocol, options including scoring-only ones such as ``bootstrap`` or ``reduction``, judge identity, embedder:
``"asr:librispeech-test-clean: protocol differs: whisper vs seed-tts-eval"``), its ``dataset_sha256`` differs, a
metric value in ``results.json`` is NaN, infinite or not a number, or the sample ids differ
(:func:`refusal_problems`).

Statistics recomputed on each resample (:func:`metric_delta`):

- ``wer``: corpus WER = 100 * sum(errors) / sum(ref_words) (the harness's definition; ``errors`` = S + D + I); for the
  ``seed-tts-eval`` protocol, the mean of per-utterance WERs instead, as that protocol defines it;
- ``accuracy``: 100 * mean(correct) (``correct`` is 1, 0.5 or 0) over *items*: records of one item are averaged
  first and items are what gets resampled (:func:`~most_eval.results.runs.item_of`; for sWUGGY/sBLIMP this is the
  official per-id / per-(type, subtype, id) averaging over voices, i.e. the results' ``accuracy_exact``; otherwise
  each record is an item and this is the plain mean);
- ``sim``: mean(sim) (cosine, raw units).

A run over several seeds (``--seeds``) has one record per sample and seed. Each sample's fields are first averaged
over its seeds, and the samples are what gets resampled and paired: a cluster bootstrap, in which each resampled
sample carries all its seeds, so the interval holds both the spread over samples and the spread over seeds (seeds
are not paired across runs: seed 1 of one model has nothing in common with seed 1 of another). The statistic is
then the mean over seeds of each run's headline (corpus WER included: every seed scores the same reference words),
and two runs with different numbers of seeds, or one seed against several, compare the same way.

The interval is the percentile bootstrap interval of ``B - A`` over ``n_resamples`` resamples drawn by
``numpy.random.default_rng`` seeded with ``(seed, crc32(task))``, so a task's interval does not depend on which other
tasks are compared; the resampling loop and the percentiles are :mod:`most_eval.scoring.bootstrap`'s, the same as for
a single run's WER CI.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from most_eval.scoring.bootstrap import percentile_interval, resample
from most_eval.core.errors import MostEvalError
from most_eval.results.fields import METRICS, SCORING_IDENTITY, THREE_DECIMALS
from most_eval.results.runs import Run, item_of
from most_eval.results.store import ResultsFileError


# --------------------------------------------------------------------------------------------------------------------
# Paired bootstrap


def _arrays(run: Run, task: str, metric: str, ids: list[str]) -> dict[str, np.ndarray]:
    """The per-sample fields of ``metric`` for ``ids`` as float arrays (accuracy: one value per item); a sample of
    a ``--seeds`` run has the mean of its seeds' values (:meth:`Run.by_sample`). A non-numeric, NaN or infinite
    field raises :class:`ResultsFileError` naming the task, metric and sample."""
    grouped, _ = run.by_sample(task)
    groups = [grouped[i] for i in ids]
    recs = [group[0] for group in groups]
    path = run.samples_path(task)
    arrays = {}
    for name in METRICS[metric][0]:
        try:
            values = np.array([math.fsum(float(r[name]) for r in group) / len(group) for group in groups],
                              dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ResultsFileError(path, f"{task}: non-numeric {metric} field {name!r} ({err})") from None
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ResultsFileError(path, f"{task}: {metric} field {name!r} is {values[bad[0]]} in sample "
                                         f"{ids[bad[0]]!r}")
        arrays[name] = values
    if metric == "accuracy":
        # one value per item: records of the same item (voices of a ZeroSpeech pair) averaged first
        _, inverse = np.unique(np.array([item_of(r) for r in recs], dtype=object), return_inverse=True)
        arrays["correct"] = np.bincount(inverse, weights=arrays["correct"]) / np.bincount(inverse)
    return arrays


def _statistic(metric: str, aggregation: str, arrays: dict[str, np.ndarray], idx: np.ndarray | None) -> np.ndarray:
    """Metric value(s). ``idx`` None: the full sample (a 0-d array); ``idx`` (B, n): one value per resample (B,)."""

    def take(a: np.ndarray) -> np.ndarray:
        return a if idx is None else a[idx]  # (n,) or (B, n)

    if metric == "wer":
        errors, ref = take(arrays["errors"]), take(arrays["ref_words"])
        if aggregation == "utterance_mean":
            # per-utterance WER; an empty reference counts 0 without insertions, else 100 (as metrics.wer does)
            per_utt = np.where(ref > 0, errors / np.maximum(ref, 1.0), (errors > 0).astype(np.float64))
            return 100.0 * per_utt.mean(axis=-1)
        return 100.0 * errors.sum(axis=-1) / np.maximum(ref.sum(axis=-1), 1e-12)
    if metric == "accuracy":
        return 100.0 * take(arrays["correct"]).mean(axis=-1)
    (field,) = METRICS[metric][0]  # a per-sample mean: SIM, DNSMOS
    return take(arrays[field]).mean(axis=-1)


def paired_bootstrap(metric: str, arrays_a: dict[str, np.ndarray], arrays_b: dict[str, np.ndarray], *,
                     n_resamples: int = 1000, rng: np.random.Generator, aggregation: str = "corpus") -> np.ndarray:
    """Bootstrap distribution (n_resamples,) of ``stat(B) - stat(A)`` over resampled ids, A and B paired by position:
    both statistics are evaluated on the same index rows of :func:`most_eval.scoring.bootstrap.resample`."""

    def delta(idx: np.ndarray) -> np.ndarray:  # (block, n) -> (block,)
        return _statistic(metric, aggregation, arrays_b, idx) - _statistic(metric, aggregation, arrays_a, idx)

    return resample(delta, len(next(iter(arrays_a.values()))), n_resamples, rng)


def task_rng(seed: int, task: str) -> np.random.Generator:
    """The Generator of ``task``'s resamples: seeded with ``(seed, crc32(task))``, independent of the other tasks."""
    return np.random.default_rng([int(seed), zlib.crc32(task.encode("utf-8"))])


# --------------------------------------------------------------------------------------------------------------------
# Comparability: refuse instead of measuring a difference in set-up


class NotComparable(MostEvalError, ValueError):
    """Two runs that cannot be compared (``compare`` and ``check`` alike); ``str(err)`` is one line naming the first
    difference, ``problems`` lists them all."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [message])


_MISSING = object()  # a key one run has and the other has not


def _show(value: Any) -> str:
    """A value in a message: strings as they are, None as ``none``, the rest as compact JSON."""
    if value is _MISSING:
        return "missing"
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _flat_config(run: Run, task: str) -> dict[str, Any]:
    """The task's config with nested dicts as dotted keys (``options.protocol``, ``judge.args.path``)."""

    def flatten(value: Any, prefix: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            return {prefix.rstrip("."): value}
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out

    config = run.task_info(task).get("config") or {}
    return flatten(config if isinstance(config, dict) else {"config": config}, "")


def limit_difference(run_a: Run, run_b: Run) -> str | None:
    """``"limit differs: 5 vs none"`` when the runs were made with different ``--limit`` (a results.json without the
    ``limit`` key counts as none), else None."""
    limit_a, limit_b = run_a.data.get("limit"), run_b.data.get("limit")
    return None if limit_a == limit_b else f"limit differs: {_show(limit_a)} vs {_show(limit_b)}"


def config_difference(run_a: Run, run_b: Run, task: str) -> str | None:
    """The first difference in how the runs ran and scored ``task``, e.g. ``"protocol differs: whisper vs
    seed-tts-eval"``, else None. Compared: the task's config in results.json (every option, scoring-only ones such as
    ``bootstrap`` and ``reduction`` included, named without the ``options.`` prefix; nested values such as the judge
    identity by dotted name), then the scoring fields of its results entry (:data:`SCORING_IDENTITY`)."""
    config_a, config_b = _flat_config(run_a, task), _flat_config(run_b, task)
    keys = [*config_a, *(k for k in config_b if k not in config_a)]
    pairs = [(k.removeprefix("options."), config_a.get(k, _MISSING), config_b.get(k, _MISSING)) for k in keys]
    entry_a, entry_b = run_a.data["results"].get(task, {}), run_b.data["results"].get(task, {})
    pairs += [(k, entry_a.get(k, _MISSING), entry_b.get(k, _MISSING)) for k in SCORING_IDENTITY]
    for name, value_a, value_b in pairs:
        if value_a != value_b:
            return f"{name} differs: {_show(value_a)} vs {_show(value_b)}"
    return None


def _value_problem(value: Any) -> str | None:
    if value is None:
        return "is null"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"is not a number ({json.dumps(value, default=str)})"
    if not math.isfinite(value):
        return "is NaN" if math.isnan(value) else "is infinite"
    return None


def _short_sha(sha: str | None) -> str:
    return "missing" if sha is None else sha[:12]


def task_difference(run_a: Run, run_b: Run, task: str, sides: tuple[str, str] = ("run A", "run B")) -> str | None:
    """Why ``task``, run by both runs, cannot be compared, as ``"<task>: <reason>"``, else None: its config
    (:func:`config_difference`), its ``dataset_sha256``, or a metric of :data:`METRICS` reported by one run only or
    NaN, infinite or not a number in either (``sides`` name the runs in that message)."""
    diff = config_difference(run_a, run_b, task)
    if diff:
        return f"{task}: {diff}"
    sha_a, sha_b = run_a.dataset_sha256(task), run_b.dataset_sha256(task)
    if sha_a != sha_b:
        return f"{task}: dataset_sha256 differs: {_short_sha(sha_a)} vs {_short_sha(sha_b)}"
    entries = run_a.data["results"][task], run_b.data["results"][task]
    for metric in METRICS:
        if not any(metric in e for e in entries):
            continue
        for entry, side in zip(entries, sides):
            problem = "is missing" if metric not in entry else _value_problem(entry[metric])
            if problem:
                return f"{task}: {metric} {problem} in {side}"
    return None


def sample_difference(run_a: Run, run_b: Run, task: str, sides: tuple[str, str] = ("run A", "run B")) -> str | None:
    """``"<task>: sample ids differ (...)"`` when the samples files list different ids (scored or error records),
    else None."""
    listed = []
    for run in (run_a, run_b):
        scored, errors = run.by_sample(task)
        listed.append(set(scored) | errors)
    if listed[0] == listed[1]:
        return None
    parts = [f"{task}: sample ids differ ({sides[0]} {len(listed[0])}, {sides[1]} {len(listed[1])}"]
    for side, ids in ((sides[0], listed[0] - listed[1]), (sides[1], listed[1] - listed[0])):
        if ids:
            parts.append(f"; {len(ids)} only in {side}, e.g. {min(ids)!r}")
    return "".join(parts) + ")"


def scored_id_difference(task: str, metric: str, run_a: Run, run_b: Run,
                         sides: tuple[str, str] = ("run A", "run B")) -> str | None:
    """``"<task>: scored sample ids differ (...)"`` when the runs scored different ids for ``metric`` (with how many
    error records each has: the hard samples may be the ones that failed), else None."""
    ids_a, ids_b = run_a.metric_ids(task, metric), run_b.metric_ids(task, metric)
    if ids_a == ids_b:
        return None
    names = [side.removeprefix("the ") for side in sides]
    only_a, only_b = sorted(ids_a - ids_b), sorted(ids_b - ids_a)
    parts = [f"{task}: scored sample ids differ ({names[0]} {len(ids_a)}, {names[1]} {len(ids_b)}"]
    if only_a:
        parts.append(f"; {len(only_a)} only in {names[0]}, e.g. {only_a[0]!r}")
    if only_b:
        parts.append(f"; {len(only_b)} only in {names[1]}, e.g. {only_b[0]!r}")
    for side, run in zip(sides, (run_a, run_b)):
        errs = run.by_sample(task)[1]
        if errs:
            parts.append(f"; {side} has {len(errs)} error record{'s' if len(errs) != 1 else ''}")
    return "".join(parts) + ")"


def refusal_problems(run_a: Run, run_b: Run, tasks: list[str], *, sides: tuple[str, str] = ("run A", "run B"),
                     ids: str = "listed", first_only: bool = False) -> list[str]:
    """Every reason the runs cannot be compared on ``tasks`` (empty when they can): the limit
    (:func:`limit_difference`) first, then per task: a task run B did not run, :func:`task_difference`, and the
    sample ids -- ``ids="listed"``: every id of the samples files, error records included (:func:`sample_difference`,
    ``compare``); ``ids="scored"``: the ids scored for each metric (:func:`scored_id_difference`, ``check``).
    ``first_only``: stop at the first problem (no later samples file is read)."""
    problems = [p for p in [limit_difference(run_a, run_b)] if p]
    for task in tasks:
        if first_only and problems:
            break
        if not run_b.ran(task):
            status = run_b.data["results"].get(task, {}).get("status")
            problems.append(f"{task}: scored in {sides[0]} but " + (f"{status!r} in {sides[1]}" if status
                                                                     else f"missing from {sides[1]}"))
            continue
        problem = task_difference(run_a, run_b, task, sides)
        if not problem and ids == "listed":
            problem = sample_difference(run_a, run_b, task, sides)
        elif not problem:
            problem = next((p for m in METRICS if m in run_a.data["results"][task]
                            and (p := scored_id_difference(task, m, run_a, run_b, sides))), None)
        if problem:
            problems.append(problem)
    return problems


def refuse(run_a: Run, run_b: Run, problems: list[str], *, count_more: bool) -> None:
    """Raise :class:`NotComparable` naming the problems (every one with ``count_more``, else the first), on one
    line; nothing when ``problems`` is empty."""
    if not problems:
        return
    shown = problems if count_more else problems[:1]
    raise NotComparable(f"refused to compare {run_a.results_path} with {run_b.results_path}: {'; '.join(shown)}",
                        problems)


# --------------------------------------------------------------------------------------------------------------------
# Comparison


@dataclass(frozen=True)
class MetricDelta:
    """One task/metric of a comparison: both runs' values on the paired ids, ``B - A`` and its interval."""

    task: str
    metric: str  # "wer" | "accuracy" | "sim" | a DNSMOS field
    lower_is_better: bool
    aggregation: str  # "corpus" | "utterance_mean" (wer) or "mean"
    n: int  # sample keys both runs scored (the paired sample)
    units: int  # resampled units: n, or for accuracy the items those samples form
    only_a: int  # ids only run A scored (not in the paired sample)
    only_b: int
    a: float  # metric of A on the paired ids
    b: float
    delta: float  # b - a, metric units (percentage points for wer/accuracy)
    ci_low: float  # percentile bootstrap interval of delta
    ci_high: float
    a_reported: float | None  # the value in each results.json (over all the ids that run scored)
    b_reported: float | None
    same_dataset: bool | None  # dataset_sha256 equal (None: missing in a run)
    unit: str = "samples"  # what n counts: "samples", "pairs" (spoken-LM tasks) or "documents" (text tasks)
    seeds: tuple[int, int] = (1, 1)  # seeds behind each run's numbers (--seeds), each sample's mean over them

    @property
    def n_label(self) -> str:
        """``n`` with its unit, and the seeds of each side where either ran several (``12 samples, seeds 3/3``)."""
        label = f"{self.n} {self.unit}"
        return label if self.seeds == (1, 1) else f"{label}, seeds {self.seeds[0]}/{self.seeds[1]}"

    @property
    def significant(self) -> bool:
        """The interval excludes 0."""
        return self.ci_low > 0 or self.ci_high < 0

    @property
    def worse_by(self) -> float:
        """Delta oriented so that positive means B is worse than A."""
        return self.delta if self.lower_is_better else -self.delta

    @property
    def worse_ci(self) -> tuple[float, float]:
        """The interval of :attr:`worse_by`."""
        return (self.ci_low, self.ci_high) if self.lower_is_better else (-self.ci_high, -self.ci_low)


def _reported(run: Run, task: str, metric: str) -> float | None:
    value = run.data["results"].get(task, {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def metric_delta(run_a: Run, run_b: Run, task: str, metric: str, *, n_resamples: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> MetricDelta | None:
    """Paired bootstrap delta of one task/metric over the ids both runs scored (None when they share none)."""
    ids_a, ids_b = run_a.metric_ids(task, metric), run_b.metric_ids(task, metric)
    common = sorted(ids_a & ids_b)
    if not common:
        return None
    aggregation = run_a.wer_aggregation(task) if metric == "wer" else "mean"
    arr_a, arr_b = _arrays(run_a, task, metric, common), _arrays(run_b, task, metric, common)
    a = float(_statistic(metric, aggregation, arr_a, None))
    b = float(_statistic(metric, aggregation, arr_b, None))
    dist = paired_bootstrap(metric, arr_a, arr_b, n_resamples=n_resamples, rng=task_rng(seed, task),
                            aggregation=aggregation)
    lo, hi = percentile_interval(dist, confidence)
    sha_a, sha_b = run_a.dataset_sha256(task), run_b.dataset_sha256(task)
    return MetricDelta(
        task=task, metric=metric, lower_is_better=METRICS[metric][1], aggregation=aggregation, n=len(common),
        units=len(next(iter(arr_a.values()))),
        only_a=len(ids_a - ids_b), only_b=len(ids_b - ids_a), a=a, b=b, delta=b - a, ci_low=lo,
        ci_high=hi, a_reported=_reported(run_a, task, metric), b_reported=_reported(run_b, task, metric),
        same_dataset=None if sha_a is None or sha_b is None else sha_a == sha_b, unit=sample_unit(run_a, task),
        seeds=(run_a.seed_count(task), run_b.seed_count(task)),
    )


def sample_unit(run: Run, task: str) -> str:
    """What a task's samples-file records are, as counts are labelled: ``pairs`` for spoken-LM tasks (whose
    results.json counts wav files as samples), ``documents`` for text tasks, else ``samples``."""
    entry = run.data["results"].get(task, {})
    return "pairs" if "pairs" in entry else "documents" if "documents" in entry else "samples"


def metric_deltas(run_a: Run, run_b: Run, tasks: list[str], *, n_resamples: int = 1000, seed: int = 0,
                  confidence: float = 0.95) -> Iterator[tuple[str, str, MetricDelta | None]]:
    """``(task, metric, delta)`` for every metric of :data:`METRICS` that both runs report for each task, in task
    then metric order; ``delta`` is None when no sample id was scored by both runs."""
    for task in tasks:
        entries = run_a.data["results"][task], run_b.data["results"][task]
        for metric in METRICS:
            if all(metric in entry for entry in entries):
                yield task, metric, metric_delta(run_a, run_b, task, metric, n_resamples=n_resamples, seed=seed,
                                                 confidence=confidence)


# --------------------------------------------------------------------------------------------------------------------
# Display


def fmt_value(metric: str, value: float | None) -> str:
    """A metric value as the tables print it (3 decimals for SIM and DNSMOS, else 2; empty for none)."""
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.3f}" if metric in THREE_DECIMALS else f"{value:.2f}"


def fmt_delta(metric: str, value: float) -> str:
    """A signed delta as the tables print it (never ``-0.00``)."""
    decimals = 3 if metric in THREE_DECIMALS else 2
    value = 0.0 if round(value, decimals) == 0 else value  # no "-0.00"
    return f"{value:+.{decimals}f}"


def delta_table(title: str, sides: tuple[str, str], rows: list[tuple[MetricDelta, tuple[str, ...]]],
                extra: tuple[tuple[str, str], ...]):
    """The terminal table of ``compare`` and ``check``: task, metric, n, both values and ``delta [CI]`` per row, then
    the ``extra`` columns (``(name, justify)``) whose cells each row brings."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD)
    columns = (("task", "left"), ("metric", "left"), ("n", "right"), (sides[0], "right"), (sides[1], "right"),
               ("delta [CI]", "right"), *extra)
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold",  # type: ignore[arg-type]
                         no_wrap=name not in ("task", "metric"))
    for d, cells in rows:
        table.add_row(d.task, d.metric, d.n_label, fmt_value(d.metric, d.a), fmt_value(d.metric, d.b),
                      f"{fmt_delta(d.metric, d.delta)} "
                      f"[{fmt_delta(d.metric, d.ci_low)}, {fmt_delta(d.metric, d.ci_high)}]", *cells)
    return table
