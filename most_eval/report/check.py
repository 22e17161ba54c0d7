"""``most-eval check``: the regression gate -- does a candidate run do significantly worse than a baseline, beyond a tolerance?

Rule, per task and metric (``wer``, ``accuracy``, ``sim``, the ``dnsmos_*`` fields; tolerances in the metric's units --
percentage points for WER and accuracy, raw cosine for sim, MOS points for DNSMOS):

- ``worse = candidate - baseline`` for WER (lower is better), ``baseline - candidate`` for the others, so
  ``worse > 0`` always means the candidate is worse; computed on the (identical) sample ids of both runs.
- ``[lo, hi]`` = the paired percentile bootstrap interval of ``worse`` at ``confidence`` (default 95%, 1,000 resamples,
  seeded, as above). For runs over several seeds (``--seeds``) the values are each run's mean over its seeds and the
  interval is the cluster bootstrap over samples, each carrying all its seeds (see ``comparison``).
- **fail** when ``worse > tol`` *and* ``lo > tol``: the point estimate exceeds the tolerance and the whole interval lies
  strictly beyond the tolerance boundary, i.e. "the regression is at most ``tol``" is rejected by a one-sided test at
  level ``(1 - confidence) / 2`` (2.5%). With ``tol = 0`` any significant regression fails.
- **warn** when ``worse > tol`` but ``lo <= tol`` (beyond tolerance, not significant: a noisy difference).
- **pass** otherwise (including significant regressions smaller than the tolerance and any improvement).

The check *refuses* (:class:`~most_eval.report.comparison.NotComparable`, a one-line message naming the first difference) instead of judging when
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
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from most_eval.report.comparison import (MetricDelta, delta_table, fmt_delta, fmt_value, metric_deltas, refuse,
                                         refusal_problems)
from most_eval.results.runs import Run, load_run
from most_eval.scoring.speech_quality import MOS_FIELDS


#: the largest worsening ``check`` lets pass, per metric (WER and accuracy in points, SIM in cosine, DNSMOS in MOS)
DEFAULT_TOLERANCE: dict[str, float] = {"wer": 0.3, "accuracy": 1.0, "sim": 0.01, **{m: 0.1 for m in MOS_FIELDS}}


def parse_tolerance(spec: str | dict[str, float] | None) -> dict[str, float]:
    """``"wer=0.3,accuracy=1.0"`` (the ``--tolerance`` text) or ``{"wer": 0.3}`` -> the defaults updated with those
    values. Unknown metrics and negative or non-numeric values raise ValueError naming the part at fault."""
    tol = dict(DEFAULT_TOLERANCE)
    if isinstance(spec, dict):
        parts = [(f"{k}={v}", str(k), "=", v) for k, v in spec.items()]
    else:
        parts = [(p.strip(), *p.strip().partition("=")) for p in (spec or "").split(",") if p.strip()]
    for part, key, sep, value in parts:
        key = key.strip().lower()
        if not sep:
            raise ValueError(f"tolerance {part!r}: expected metric=value")
        if key not in DEFAULT_TOLERANCE:
            raise ValueError(f"tolerance {part!r}: unknown metric {key!r} (known: {', '.join(DEFAULT_TOLERANCE)})")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"tolerance {part!r}: {str(value).strip()!r} is not a number") from None
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
    #: tasks the baseline scored that the candidate did not: each fails the gate (unless --allow-missing)
    missing: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[CheckRow]:
        """The rows that fail (significant regressions beyond tolerance)."""
        return [r for r in self.rows if r.status == "fail"]

    @property
    def passed(self) -> bool:
        """No row fails (warnings pass) and no baseline task is missing from the candidate."""
        return not self.failures and not self.missing

    @property
    def verdict(self) -> str:
        """``PASS``, or ``FAIL (<n> significant regressions beyond tolerance[, <k> baseline tasks missing])``."""
        n, k = len(self.failures), len(self.missing)
        if not n and not k:
            return "PASS"
        parts = [f"{n} significant regression{'s' if n != 1 else ''} beyond tolerance"] if n else []
        parts += [f"{k} baseline task{'s' if k != 1 else ''} missing from the candidate"] if k else []
        return f"FAIL ({', '.join(parts)})"

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
                f"| {_md(d.task)} | {d.metric} | {d.n_label} | {fmt_value(d.metric, d.a)} | "
                f"{fmt_value(d.metric, d.b)} | "
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
        properties = (("baseline", self.baseline), ("candidate", self.candidate),
                      ("tolerance", ",".join(f"{k}={v:g}" for k, v in sorted(self.tolerance.items()))),
                      ("n_resamples", str(self.n_resamples)), ("seed", str(self.seed)))
        cases = [(f"most_eval.check.{r.delta.task}", r.delta.metric,
                  {"fail": "failure", "warn": "warning"}.get(r.status), r.reason) for r in self.rows]
        cases += [(f"most_eval.check.{task}", "scored", "failure",
                   f"{task}: scored in the baseline, not in the candidate") for task in self.missing]
        return junit_xml(cases, properties)

    # -------------------------------------------------------------------------------------------------------- rich
    def rich_table(self):
        """The terminal table of the rows (:func:`most_eval.report.comparison.delta_table`)."""
        style = {"pass": "[green]pass[/green]", "warn": "[yellow]warn[/yellow]", "fail": "[bold red]FAIL[/bold red]"}
        title = (f"check: baseline {self.baseline_model} vs candidate {self.candidate_model}; paired bootstrap "
                 f"{self.confidence:.0%} CI, {self.n_resamples} resamples")
        rows = [(r.delta, (f"{r.tolerance:g}", style[r.status])) for r in self.rows]
        return delta_table(title, ("base", "cand"), rows, (("tol", "right"), ("status", "left")))


def junit_xml(cases: list[tuple[str, str, str | None, str]], properties: tuple[tuple[str, str], ...] = ()) -> str:
    """A JUnit XML document: one test case per ``(classname, name, outcome, message)``, where outcome is None
    (passed), ``"failure"`` (a regression), ``"warning"`` (passed, the message as output) or ``"error"`` (the check
    could not run)."""
    counts = {kind: str(sum(1 for case in cases if case[2] == kind)) for kind in ("failure", "error")}
    attrs = {"name": "most-eval check", "tests": str(len(cases)), "failures": counts["failure"],
             "errors": counts["error"], "skipped": "0", "time": "0"}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", attrs)
    if properties:
        props = ET.SubElement(suite, "properties")
        for key, value in properties:
            ET.SubElement(props, "property", {"name": key, "value": value})
    for classname, name, outcome, message in cases:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": name, "time": "0"})
        if outcome in ("failure", "error"):
            node = ET.SubElement(case, outcome, {"message": message,
                                                 "type": "regression" if outcome == "failure" else "refused"})
            node.text = message
        elif outcome == "warning":
            ET.SubElement(case, "system-out").text = "warning: " + message
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _md(text: str) -> str:
    """Text from results files in the markdown summary: HTML escaped (as the leaderboard does), ``|`` escaped."""
    return html.escape(text).replace("|", "\\|")


def grade(delta: MetricDelta, tolerance: float) -> CheckRow:
    """The check's verdict on one metric delta: pass, warn or fail by the module's rule."""
    worse = delta.worse_by
    lo, hi = delta.worse_ci
    m = delta.metric
    detail = (f"{delta.task} {m}: baseline {fmt_value(m, delta.a)}, candidate {fmt_value(m, delta.b)}, worse by "
              f"{fmt_delta(m, worse)} ({delta.n} {delta.unit}, CI [{fmt_delta(m, lo)}, {fmt_delta(m, hi)}]), "
              f"tolerance {tolerance:g}")
    if worse > tolerance and lo > tolerance:
        return CheckRow(delta, tolerance, "fail", f"significant regression beyond tolerance: {detail}")
    if worse > tolerance:
        return CheckRow(delta, tolerance, "warn", f"beyond tolerance but not significant: {detail}")
    return CheckRow(delta, tolerance, "pass", detail)


def validate_pair(base: Run, cand: Run, tasks: list[str] | None = None) -> list[str]:
    """Every reason the runs cannot be checked against each other on ``tasks`` (default: the tasks both scored;
    empty when they can), the limit first: the shared gate (:func:`~most_eval.report.comparison.refusal_problems`),
    comparing scored ids per metric."""
    if tasks is None:
        tasks = shared_tasks(base, cand)
    return refusal_problems(base, cand, sorted(tasks), sides=("the baseline", "the candidate"), ids="scored")


def shared_tasks(base: Run, cand: Run, wanted: list[str] | None = None) -> list[str]:
    """The tasks of ``wanted`` (default: every task either run scored) that one run scored and the other ran (so a
    metric missing from one of them is refused, not skipped)."""
    scored_a, scored_b = base.scored_tasks(), cand.scored_tasks()
    names = sorted(set(scored_a) | set(scored_b)) if wanted is None else wanted
    return [t for t in names if (t in scored_a and cand.ran(t)) or (t in scored_b and base.ran(t))]


def task_selection(base: Run, cand: Run, tasks: list[str] | None) -> tuple[list[str], list[str], list[str]]:
    """(shared, baseline only, candidate only) among ``tasks`` (default: every task either run scored). A task
    named in ``tasks`` that neither run scored is refused (NotComparable)."""
    from most_eval.report.comparison import NotComparable

    scored_a, scored_b = base.scored_tasks(), cand.scored_tasks()
    wanted = list(dict.fromkeys(tasks)) if tasks else sorted(set(scored_a) | set(scored_b))
    unknown = [t for t in wanted if t not in scored_a and t not in scored_b]
    if unknown:
        raise NotComparable(f"--tasks {', '.join(unknown)}: scored in neither {base.results_path} nor "
                            f"{cand.results_path}")
    shared = shared_tasks(base, cand, wanted)
    only_base = [t for t in wanted if t in scored_a and t not in shared]
    only_cand = [t for t in wanted if t in scored_b and t not in shared]
    return shared, only_base, only_cand


def check(baseline: str | Path, candidate: str | Path, tolerance: dict[str, float] | None = None, *,
          n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95, markdown_path: str | Path | None = None,
          junit_path: str | Path | None = None, console: Any = None, tasks: list[str] | None = None,
          allow_missing: bool = False) -> CheckReport:
    """Check ``candidate`` against ``baseline`` (results folders or ``results.json`` paths); see the module docstring
    for the rule. ``tolerance`` updates :data:`DEFAULT_TOLERANCE` (``{"wer": 0.3, "accuracy": 1.0, "sim": 0.01}``).
    ``tasks``: only these (default: every task either run scored). The tasks both runs have are checked; one the
    baseline scored that the candidate did not fails the gate (a note instead with ``allow_missing``); one only the
    candidate has is a note.

    Writes the markdown summary / JUnit XML when paths are given and prints a rich table when ``console`` is given.
    Raises :class:`~most_eval.report.comparison.NotComparable` when the runs are not comparable and :class:`ResultsFileError` for unreadable files
    (both one-line messages)."""
    tol = parse_tolerance(tolerance)
    base, cand = load_run(baseline), load_run(candidate)
    shared, only_base, only_cand = task_selection(base, cand, tasks)
    refuse(base, cand, validate_pair(base, cand, shared), count_more=True)
    rows, notes = [], []
    for task, metric, d in metric_deltas(base, cand, shared, n_resamples=n_resamples, seed=seed,
                                         confidence=confidence):
        if d is None:
            notes.append(f"{task} {metric}: no scored samples; not checked")
        else:
            rows.append(grade(d, tol[metric]))
    for task in only_base:
        notes.append(f"{task}: scored in the baseline, not in the candidate"
                     + ("; allowed by --allow-missing" if allow_missing else "; fails the gate (--allow-missing "
                                                                             "accepts it)"))
    for task in only_cand:
        notes.append(f"{task}: only in the candidate; not checked")
    report = CheckReport(str(base.results_path), str(cand.results_path), base.label, cand.label, tol, n_resamples,
                         seed, confidence, rows, notes, missing=[] if allow_missing else only_base)
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
        _write(junit_path, junit_xml([("most_eval.check", "inputs", "error", message)]))
