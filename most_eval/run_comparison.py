"""Compare two runs: per-task deltas with paired bootstrap intervals (``most-eval compare``) and the regression check
built on them (``most-eval check``). One module, so both read runs, refuse incomparable ones and resample the same way.

**Compare.** A run is a results folder (``results.json`` + ``samples/*.jsonl``) or the path of its ``results.json``.
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

**Check**: does a candidate run do significantly worse than a baseline, beyond a tolerance?

Rule, per task and metric (``wer``, ``accuracy``, ``sim``; tolerances in the metric's units -- percentage points for
WER and accuracy, raw cosine for sim):

- ``worse = candidate - baseline`` for WER (lower is better), ``baseline - candidate`` for accuracy and sim, so
  ``worse > 0`` always means the candidate is worse; computed on the (identical) sample ids of both runs.
- ``[lo, hi]`` = the paired percentile bootstrap interval of ``worse`` at ``confidence`` (default 95%, 1,000 resamples,
  seeded, as above).
- **fail** when ``worse > tol`` *and* ``lo > tol``: the point estimate exceeds the tolerance and the whole interval lies
  strictly beyond the tolerance boundary, i.e. "the regression is at most ``tol``" is rejected by a one-sided test at
  level ``(1 - confidence) / 2`` (2.5%). With ``tol = 0`` any significant regression fails.
- **warn** when ``worse > tol`` but ``lo <= tol`` (beyond tolerance, not significant: a noisy difference).
- **pass** otherwise (including significant regressions smaller than the tolerance and any improvement).

The check *refuses* (:class:`CheckRefused`, a one-line message naming the first difference) instead of judging when
the two runs are not comparable: the ``limit`` differs (``"limit differs: 5 vs none"``, named before any sample
difference it causes); a task the baseline scored is missing or unscored in the candidate; a task's config differs
(protocol, options including scoring-only ones, judge, embedder: ``"asr:librispeech-test-clean: protocol differs:
whisper vs seed-tts-eval"``); its ``dataset_sha256`` differs (or is recorded in one run only); a metric is missing on
one side or is NaN, infinite or not a number in either; or the sets of scored sample ids differ (an error record in
one run and not the other counts as a difference: the hard samples may be the ones that failed). The
comparability rules are those of ``compare`` above.
"""

from __future__ import annotations

import html
import json
import math
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from most_eval.scoring.bootstrap import percentile_interval, resample
from most_eval.results.store import ResultsFileError
from most_eval.core.errors import MostEvalError
from most_eval.results.fields import METRICS, SCORING_IDENTITY
from most_eval.results.runs import Run, item_of, load_run


# --------------------------------------------------------------------------------------------------------------------
# Runs and their samples


# --------------------------------------------------------------------------------------------------------------------
# Paired bootstrap


def _arrays(run: Run, task: str, metric: str, ids: list[str]) -> dict[str, np.ndarray]:
    """The per-sample fields of ``metric`` for ``ids`` as float arrays (accuracy: one value per item). A
    non-numeric, NaN or infinite field raises :class:`ResultsFileError` naming the task, metric and sample."""
    scored, _ = run.samples(task)
    recs = [scored[i] for i in ids]
    path = run.samples_path(task)
    arrays = {}
    for name in METRICS[metric][0]:
        try:
            values = np.array([float(r[name]) for r in recs], dtype=np.float64)
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
    return take(arrays["sim"]).mean(axis=-1)


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
    """Two runs that cannot be compared; ``str(err)`` is one line naming the first difference."""


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
        scored, errors = run.samples(task)
        listed.append(set(scored) | errors)
    if listed[0] == listed[1]:
        return None
    parts = [f"{task}: sample ids differ ({sides[0]} {len(listed[0])}, {sides[1]} {len(listed[1])}"]
    for side, ids in ((sides[0], listed[0] - listed[1]), (sides[1], listed[1] - listed[0])):
        if ids:
            parts.append(f"; {len(ids)} only in {side}, e.g. {min(ids)!r}")
    return "".join(parts) + ")"


def comparability_problem(run_a: Run, run_b: Run, tasks: list[str]) -> str | None:
    """The first reason the runs cannot be compared on ``tasks`` (run by both), else None: the limit
    (:func:`limit_difference`) first, then per task :func:`task_difference` and :func:`sample_difference`."""
    problem = limit_difference(run_a, run_b)
    for task in tasks:
        problem = problem or task_difference(run_a, run_b, task) or sample_difference(run_a, run_b, task)
    return problem


# --------------------------------------------------------------------------------------------------------------------
# Comparison


@dataclass(frozen=True)
class MetricDelta:
    """One task/metric of a comparison: both runs' values on the paired ids, ``B - A`` and its interval."""

    task: str
    metric: str  # "wer" | "accuracy" | "sim"
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
        same_dataset=None if sha_a is None or sha_b is None else sha_a == sha_b,
    )


def compare_runs(run_a: Run, run_b: Run, *, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95,
                 tasks: list[str] | None = None) -> Comparison:
    """:func:`compare` on loaded runs; raises :class:`NotComparable` (see :func:`comparability_problem`)."""
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    tasks_a, tasks_b = set(run_a.scored_tasks()), set(run_b.scored_tasks())
    wanted = sorted(tasks_a | tasks_b) if tasks is None else list(tasks)
    ran_both = [t for t in wanted if (t in tasks_a or t in tasks_b) and run_a.ran(t) and run_b.ran(t)]
    problem = comparability_problem(run_a, run_b, ran_both)
    if problem:
        raise NotComparable(f"refused to compare {run_a.results_path} with {run_b.results_path}: {problem}")
    deltas, skipped = [], []
    for task in wanted:
        if task not in tasks_a or task not in tasks_b:
            where = "A" if task not in tasks_a else "B"
            skipped.append((task, f"not scored in run {where}"))
            continue
        metrics = [m for m in METRICS if m in run_a.data["results"][task] and m in run_b.data["results"][task]]
        for metric in metrics:
            d = metric_delta(run_a, run_b, task, metric, n_resamples=n_resamples, seed=seed, confidence=confidence)
            if d is None:
                skipped.append((task, f"{metric}: no sample id scored by both runs"))
            else:
                deltas.append(d)
    return Comparison(str(run_a.results_path), str(run_b.results_path), run_a.model, run_b.model, n_resamples, seed,
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


# --------------------------------------------------------------------------------------------------------------------
# Display


def fmt_value(metric: str, value: float | None) -> str:
    """A metric value as the tables print it (3 decimals for sim, else 2; empty for none)."""
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.3f}" if metric == "sim" else f"{value:.2f}"


def fmt_delta(metric: str, value: float) -> str:
    """A signed delta as the tables print it (never ``-0.00``)."""
    decimals = 3 if metric == "sim" else 2
    value = 0.0 if round(value, decimals) == 0 else value  # no "-0.00"
    return f"{value:+.{decimals}f}"


def comparison_table(comp: Comparison):
    """A rich Table of a comparison."""
    from rich import box
    from rich.table import Table

    table = Table(title=f"B - A (A: {comp.a_model}, B: {comp.b_model}); paired bootstrap {comp.confidence:.0%} CI, "
                        f"{comp.n_resamples} resamples", box=box.SIMPLE_HEAD)
    for name, justify in (("task", "left"), ("metric", "left"), ("n", "right"), ("A", "right"), ("B", "right"),
                          ("delta [CI]", "right"), ("", "left")):
        table.add_column(name, justify=justify, overflow="fold",  # type: ignore[arg-type]
                         no_wrap=name not in ("task", "metric"))
    for d in comp.deltas:
        mark = ""
        if d.significant:
            mark = "[red]worse[/red]" if d.worse_by > 0 else "[green]better[/green]"
        table.add_row(d.task, d.metric, str(d.n), fmt_value(d.metric, d.a), fmt_value(d.metric, d.b),
                      f"{fmt_delta(d.metric, d.delta)} "
                      f"[{fmt_delta(d.metric, d.ci_low)}, {fmt_delta(d.metric, d.ci_high)}]",
                      mark)
    return table


# --------------------------------------------------------------------------------------------------------------------
# Regression check


DEFAULT_TOLERANCE: dict[str, float] = {"wer": 0.3, "accuracy": 1.0, "sim": 0.01}


class CheckRefused(MostEvalError, ValueError):
    """The runs cannot be compared; ``str(err)`` is one line saying why."""


def parse_tolerance(text: str | None) -> dict[str, float]:
    """``"wer=0.3,accuracy=1.0"`` -> the defaults updated with those values. Unknown metrics and negative or
    non-numeric values raise ValueError."""
    tol = dict(DEFAULT_TOLERANCE)
    if not text:
        return tol
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep:
            raise ValueError(f"tolerance {part!r}: expected metric=value")
        if key not in DEFAULT_TOLERANCE:
            raise ValueError(f"tolerance {part!r}: unknown metric {key!r} (known: {', '.join(DEFAULT_TOLERANCE)})")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"tolerance {part!r}: {value.strip()!r} is not a number") from None
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"tolerance {part!r}: must be a finite number >= 0")
        tol[key] = number
    return tol


@dataclass(frozen=True)
class CheckRow:
    """The verdict on one task/metric: its delta, the tolerance applied, pass/warn/fail and why."""

    delta: MetricDelta
    tolerance: float
    status: str  # "pass" | "warn" | "fail"
    reason: str

    @property
    def name(self) -> str:
        """``<task> <metric>``."""
        return f"{self.delta.task} {self.delta.metric}"


@dataclass
class CheckReport:
    """The outcome of :func:`check`: a row per checked task/metric, the set-up, and notes on what was not checked."""

    baseline: str
    candidate: str
    baseline_model: str
    candidate_model: str
    tolerance: dict[str, float]
    n_resamples: int
    seed: int
    confidence: float
    rows: list[CheckRow]
    notes: list[str] = field(default_factory=list)  # tasks only in the candidate, skipped tasks

    @property
    def failures(self) -> list[CheckRow]:
        """The rows that fail (significant regressions beyond tolerance)."""
        return [r for r in self.rows if r.status == "fail"]

    @property
    def passed(self) -> bool:
        """No row fails (warnings pass)."""
        return not self.failures

    @property
    def verdict(self) -> str:
        """``PASS`` or ``FAIL (<n> significant regressions beyond tolerance)``."""
        n = len(self.failures)
        return "PASS" if n == 0 else f"FAIL ({n} significant regression{'s' if n != 1 else ''} beyond tolerance)"

    # ---------------------------------------------------------------------------------------------------- markdown
    def to_markdown(self) -> str:
        """The summary CI posts: verdict, set-up and a table of every row."""
        lines = [
            f"# most-eval regression check: {self.verdict}",
            "",
            f"- baseline: `{self.baseline}` (model {_md(self.baseline_model)})",
            f"- candidate: `{self.candidate}` (model {_md(self.candidate_model)})",
            "- tolerance: " + ", ".join(f"{k} {v:g}" for k, v in sorted(self.tolerance.items())),
            f"- paired bootstrap: {self.n_resamples} resamples, seed {self.seed}, {self.confidence:.0%} interval",
            "",
            "| task | metric | n | baseline | candidate | delta | CI | worse by | tolerance | status |",
            "|---|---|---:|---:|---:|---:|---|---:|---:|---|",
        ]
        for r in self.rows:
            d = r.delta
            lo, hi = d.worse_ci
            lines.append(
                f"| {_md(d.task)} | {d.metric} | {d.n} | {fmt_value(d.metric, d.a)} | {fmt_value(d.metric, d.b)} | "
                f"{fmt_delta(d.metric, d.delta)} | [{fmt_delta(d.metric, d.ci_low)}, {fmt_delta(d.metric, d.ci_high)}]"
                f" | {fmt_delta(d.metric, d.worse_by)} [{fmt_delta(d.metric, lo)}, {fmt_delta(d.metric, hi)}] | "
                f"{r.tolerance:g} | {'**FAIL**' if r.status == 'fail' else r.status} |")
        lines += ["", "delta = candidate - baseline; \"worse by\" is the delta oriented so that positive = worse, with "
                  "its interval. A row fails when the worse-by estimate exceeds the tolerance and its whole interval "
                  "lies beyond it; it warns when the estimate exceeds the tolerance but the interval reaches it."]
        if self.notes:
            lines += ["", "Notes:", ""] + [f"- {_md(n)}" for n in self.notes]
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------------------------------------------- junit
    def to_junit(self) -> str:
        """JUnit XML: a test case per row, failures as failures and warnings as output, for CI test reports."""
        suite_attrs = {"name": "most-eval check", "tests": str(len(self.rows)), "failures": str(len(self.failures)),
                       "errors": "0", "skipped": "0", "time": "0"}
        root = ET.Element("testsuites", suite_attrs)
        suite = ET.SubElement(root, "testsuite", suite_attrs)
        props = ET.SubElement(suite, "properties")
        for k, v in (("baseline", self.baseline), ("candidate", self.candidate),
                     ("tolerance", ",".join(f"{k}={v:g}" for k, v in sorted(self.tolerance.items()))),
                     ("n_resamples", str(self.n_resamples)), ("seed", str(self.seed))):
            ET.SubElement(props, "property", {"name": k, "value": v})
        for r in self.rows:
            case = ET.SubElement(suite, "testcase", {"classname": f"most_eval.check.{r.delta.task}",
                                                     "name": r.delta.metric, "time": "0"})
            if r.status == "fail":
                failure = ET.SubElement(case, "failure", {"message": r.reason, "type": "regression"})
                failure.text = r.reason
            elif r.status == "warn":
                out = ET.SubElement(case, "system-out")
                out.text = "warning: " + r.reason
        ET.indent(root)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

    # -------------------------------------------------------------------------------------------------------- rich
    def rich_table(self):
        """The terminal table of the rows."""
        from rich import box
        from rich.table import Table

        table = Table(title=f"check: baseline {self.baseline_model} vs candidate {self.candidate_model}; paired "
                            f"bootstrap {self.confidence:.0%} CI, {self.n_resamples} resamples", box=box.SIMPLE_HEAD)
        for name in ("task", "metric", "n", "base", "cand", "delta [CI]", "tol", "status"):
            table.add_column(name, justify="left" if name in ("task", "metric", "status") else "right",
                             overflow="fold", no_wrap=name not in ("task", "metric"))
        style = {"pass": "[green]pass[/green]", "warn": "[yellow]warn[/yellow]", "fail": "[bold red]FAIL[/bold red]"}
        for r in self.rows:
            d = r.delta
            table.add_row(d.task, d.metric, str(d.n), fmt_value(d.metric, d.a), fmt_value(d.metric, d.b),
                          f"{fmt_delta(d.metric, d.delta)} [{fmt_delta(d.metric, d.ci_low)}, "
                          f"{fmt_delta(d.metric, d.ci_high)}]", f"{r.tolerance:g}", style[r.status])
        return table


def _md(text: str) -> str:
    """Text from results files in the markdown summary: HTML escaped (as the leaderboard does), ``|`` escaped."""
    return html.escape(text).replace("|", "\\|")


def judge(delta: MetricDelta, tolerance: float) -> CheckRow:
    """Apply the module's rule to one metric delta."""
    worse = delta.worse_by
    lo, hi = delta.worse_ci
    m = delta.metric
    detail = (f"{delta.task} {m}: baseline {fmt_value(m, delta.a)}, candidate {fmt_value(m, delta.b)}, worse by "
              f"{fmt_delta(m, worse)} ({delta.n} samples, CI [{fmt_delta(m, lo)}, {fmt_delta(m, hi)}]), "
              f"tolerance {tolerance:g}")
    if worse > tolerance and lo > tolerance:
        return CheckRow(delta, tolerance, "fail", f"significant regression beyond tolerance: {detail}")
    if worse > tolerance:
        return CheckRow(delta, tolerance, "warn", f"beyond tolerance but not significant: {detail}")
    return CheckRow(delta, tolerance, "pass", detail)


def _id_problem(task: str, metric: str, base: Run, cand: Run) -> str | None:
    ids_b, ids_c = base.metric_ids(task, metric), cand.metric_ids(task, metric)
    if ids_b == ids_c:
        return None
    only_b, only_c = sorted(ids_b - ids_c), sorted(ids_c - ids_b)
    _, err_b = base.samples(task)
    _, err_c = cand.samples(task)
    parts = [f"{task}: scored sample ids differ (baseline {len(ids_b)}, candidate {len(ids_c)}"]
    if only_b:
        parts.append(f"; {len(only_b)} only in baseline, e.g. {only_b[0]!r}")
    if only_c:
        parts.append(f"; {len(only_c)} only in candidate, e.g. {only_c[0]!r}")
    for who, errs in (("baseline", err_b), ("candidate", err_c)):
        if errs:
            parts.append(f"; the {who} has {len(errs)} error record{'s' if len(errs) != 1 else ''}")
    return "".join(parts) + ")"


def validate_pair(base: Run, cand: Run) -> list[str]:
    """Reasons the runs cannot be checked against each other (empty when they can), the limit first; see the module
    docstring."""
    problems = [p for p in [limit_difference(base, cand)] if p]
    # tasks the baseline scored, and those the candidate scored that the baseline ran without a metric
    tasks = set(base.scored_tasks()) | {t for t in cand.scored_tasks() if base.ran(t)}
    for task in sorted(tasks):
        if not cand.ran(task):
            status = cand.data["results"].get(task, {}).get("status")
            problems.append(f"{task}: scored in the baseline but " + (f"{status!r} in the candidate" if status
                                                                       else "missing from the candidate"))
            continue
        issue = task_difference(base, cand, task, sides=("the baseline", "the candidate"))
        if issue:
            problems.append(issue)
            continue
        for metric in METRICS:
            issue = metric in base.data["results"][task] and _id_problem(task, metric, base, cand)
            if issue:
                problems.append(issue)
                break
    return problems


def check(baseline: str | Path, candidate: str | Path, tolerance: dict[str, float] | None = None, *,
          n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95, markdown_path: str | Path | None = None,
          junit_path: str | Path | None = None, console: Any = None) -> CheckReport:
    """Check ``candidate`` against ``baseline`` (results folders or ``results.json`` paths); see the module docstring
    for the rule. ``tolerance`` updates :data:`DEFAULT_TOLERANCE` (``{"wer": 0.3, "accuracy": 1.0, "sim": 0.01}``).

    Writes the markdown summary / JUnit XML when paths are given and prints a rich table when ``console`` is given.
    Raises :class:`CheckRefused` when the runs are not comparable and :class:`ResultsFileError` for unreadable files
    (both one-line messages)."""
    tol = dict(DEFAULT_TOLERANCE)
    for key, value in (tolerance or {}).items():
        if key not in DEFAULT_TOLERANCE:
            raise ValueError(f"unknown tolerance metric {key!r} (known: {', '.join(DEFAULT_TOLERANCE)})")
        tol[key] = float(value)
    base, cand = load_run(baseline), load_run(candidate)
    problems = validate_pair(base, cand)
    if problems:
        more = f"; and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''}" if len(problems) > 1 else ""
        raise CheckRefused(f"refused to compare {base.results_path} with {cand.results_path}: {problems[0]}{more}")
    rows, notes = [], []
    for task in base.scored_tasks():
        for metric in METRICS:
            if metric not in base.data["results"][task]:
                continue
            d = metric_delta(base, cand, task, metric, n_resamples=n_resamples, seed=seed, confidence=confidence)
            if d is None:
                notes.append(f"{task} {metric}: no scored samples; not checked")
                continue
            rows.append(judge(d, tol[metric]))
    for task in sorted(set(cand.scored_tasks()) - set(base.scored_tasks())):
        notes.append(f"{task}: only in the candidate; not checked")
    report = CheckReport(str(base.results_path), str(cand.results_path), base.model, cand.model, tol, n_resamples,
                         seed, confidence, rows, notes)
    if markdown_path is not None:
        _write(markdown_path, report.to_markdown())
    if junit_path is not None:
        _write(junit_path, report.to_junit())
    if console is not None:
        console.print(report.rich_table())
        for r in report.rows:
            if r.status != "pass":
                console.print(f"{r.status.upper()}: {r.reason}", markup=False, highlight=False,
                              soft_wrap=True)
        for n in notes:
            console.print(f"note: {n}", markup=False, highlight=False, soft_wrap=True)
        console.print(report.verdict, markup=False, highlight=False, soft_wrap=True)
    return report


def _write(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def write_refusal(message: str, markdown_path: str | Path | None = None,
                  junit_path: str | Path | None = None) -> None:
    """Record a refused check (or an unreadable input) in the markdown / JUnit outputs, so CI shows why."""
    if markdown_path is not None:
        _write(markdown_path, f"# most-eval regression check: REFUSED\n\n{_md(message)}\n")
    if junit_path is not None:
        attrs = {"name": "most-eval check", "tests": "1", "failures": "0", "errors": "1", "skipped": "0", "time": "0"}
        root = ET.Element("testsuites", attrs)
        suite = ET.SubElement(root, "testsuite", attrs)
        case = ET.SubElement(suite, "testcase", {"classname": "most_eval.check", "name": "inputs", "time": "0"})
        err = ET.SubElement(case, "error", {"message": message, "type": "refused"})
        err.text = message
        ET.indent(root)
        _write(junit_path, '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")
