"""Regression check: does a candidate run do significantly worse than a baseline, beyond a tolerance?

Rule, per task and metric (``wer``, ``accuracy``, ``sim``; tolerances in the metric's units -- percentage points for
WER and accuracy, raw cosine for sim):

- ``worse = candidate - baseline`` for WER (lower is better), ``baseline - candidate`` for accuracy and sim, so
  ``worse > 0`` always means the candidate is worse; computed on the (identical) sample ids of both runs.
- ``[lo, hi]`` = the paired percentile bootstrap interval of ``worse`` at ``confidence`` (default 95%, 1,000 resamples,
  seeded; see :mod:`most_eval.compare`).
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
one run and not the other counts as a difference: the hard samples may be the ones that failed). See
:mod:`most_eval.compare` for the comparability rules shared with ``compare``.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from most_eval.compare import (METRICS, MetricDelta, ResultsFileError, Run, fmt_delta, fmt_value, limit_difference,
                               load_run, metric_delta, task_difference)

__all__ = ["DEFAULT_TOLERANCE", "CheckRefused", "CheckReport", "CheckRow", "check", "parse_tolerance",
           "write_refusal", "ResultsFileError"]

DEFAULT_TOLERANCE: dict[str, float] = {"wer": 0.3, "accuracy": 1.0, "sim": 0.01}


class CheckRefused(ValueError):
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
    delta: MetricDelta
    tolerance: float
    status: str  # "pass" | "warn" | "fail"
    reason: str

    @property
    def name(self) -> str:
        return f"{self.delta.task} {self.delta.metric}"


@dataclass
class CheckReport:
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
        return [r for r in self.rows if r.status == "fail"]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def verdict(self) -> str:
        n = len(self.failures)
        return "PASS" if n == 0 else f"FAIL ({n} significant regression{'s' if n != 1 else ''} beyond tolerance)"

    # ---------------------------------------------------------------------------------------------------- markdown
    def to_markdown(self) -> str:
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
