"""Tests that kill the mutants of run comparison (most_eval/report/: comparison, compare, check) that the compare /
check tests let survive (benchmarks/mutation/README.md): the paired percentile interval, the per-metric statistic,
the gate's decision boundaries and its reason text, compare's argument checks.

Every expected value here is computed independently of the code under test: a hand count, a plain-Python loop or a
numpy call written out in the test, never a second call of the same function. Sections follow the modules in the
mutation report; each test names the mutant family it kills. The kill tests of the other modules are in the other
tests/test_mutants_*.py files (one per subject).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from most_eval.report.check import grade
from most_eval.report.compare import compare
from most_eval.report.comparison import MetricDelta


# ------------------------------------------------------------------------------- report/ (compare, check)


def _write_run(root: Path, task: str, records: list[dict], metric: str, value: float, config=None) -> Path:
    """A minimal results folder in the harness's results.json format."""
    (root / "samples").mkdir(parents=True)
    rel = f"samples/{task.replace(':', '_')}.jsonl"
    (root / rel).write_text("".join(json.dumps(r) + "\n" for r in records))
    data = {"format": "most-eval-results", "format_version": 1,
            "model": {"name": root.name, "args": {}, "fingerprint": "f" * 16},
            "results": {task: {metric: value, "scored": len(records)}},
            "tasks": {task: {"config": config or {}, "samples_file": rel, "dataset_sha256": "ab" * 32}},
            "seed": 0, "limit": None, "git_revision": "0" * 40, "versions": {}, "created": "2026-01-01T00:00:00Z"}
    (root / "results.json").write_text(json.dumps(data))
    return root


def _paired_interval(stat_a, stat_b, n, seed, task, resamples, lo_q, hi_q):
    """The paired percentile bootstrap written out: seeded as compare's docstring says, the same resampled ids for
    both runs, np.percentile of the per-resample differences."""
    rng = np.random.default_rng([seed, zlib.crc32(task.encode("utf-8"))])
    draws = rng.integers(0, n, size=(resamples, n))
    deltas = np.array([stat_b(row) - stat_a(row) for row in draws])
    return float(np.percentile(deltas, lo_q)), float(np.percentile(deltas, hi_q))


def test_compare_interval_is_the_95_percent_paired_percentile_interval(tmp_path):
    """Planted-bug gap: compare/check reporting the 90 % paired interval (5th/95th percentiles) as the 95 % one."""
    task, n = "asr:test", 80
    rng = np.random.default_rng(8)
    words = rng.integers(5, 40, size=n)
    err_a, err_b = rng.binomial(words, 0.08), rng.binomial(words, 0.11)

    def recs(err):
        return [{"id": f"u{i:03d}", "errors": int(e), "ref_words": int(w)} for i, (e, w) in enumerate(zip(err, words))]

    a = _write_run(tmp_path / "a", task, recs(err_a), "wer", 100 * err_a.sum() / words.sum())
    b = _write_run(tmp_path / "b", task, recs(err_b), "wer", 100 * err_b.sum() / words.sum())
    (d,) = compare(a, b, n_resamples=500, seed=3).deltas

    def corpus(err):
        return lambda row: 100.0 * err[row].sum() / words[row].sum()

    lo95, hi95 = _paired_interval(corpus(err_a), corpus(err_b), n, 3, task, 500, 2.5, 97.5)
    lo90, hi90 = _paired_interval(corpus(err_a), corpus(err_b), n, 3, task, 500, 5.0, 95.0)
    assert d.ci_low == pytest.approx(lo95, abs=1e-9) and d.ci_high == pytest.approx(hi95, abs=1e-9)
    assert (hi95 - lo95) > (hi90 - lo90) + 0.05
    assert d.delta == pytest.approx(100 * (err_b.sum() - err_a.sum()) / words.sum())
    assert (d.n, d.units, d.only_a, d.only_b, d.aggregation) == (n, n, 0, 0, "corpus")
    # defaults: 1000 resamples, seed 0, 95 %
    (d0,) = compare(a, b).deltas
    assert (d0.ci_low, d0.ci_high) == pytest.approx(_paired_interval(corpus(err_a), corpus(err_b), n, 0, task, 1000,
                                                                      2.5, 97.5), abs=1e-9)
    (d80,) = compare(a, b, n_resamples=300, seed=1, confidence=0.8).deltas
    assert (d80.ci_low, d80.ci_high) == pytest.approx(_paired_interval(corpus(err_a), corpus(err_b), n, 1, task, 300,
                                                                        10.0, 90.0), abs=1e-9)


def test_compare_utterance_mean_and_accuracy_items_intervals(tmp_path):
    n = 30
    rng = np.random.default_rng(4)
    words = rng.integers(0, 12, size=n)
    words[:3] = 0  # empty references: 0 without insertions, else 100
    err_a, err_b = rng.integers(0, 4, size=n), rng.integers(0, 5, size=n)
    err_a[0], err_b[0] = 0, 2

    def per_utt(err):
        return np.array([(100.0 * e / w) if w else (100.0 if e else 0.0) for e, w in zip(err, words)])

    def recs(err):
        return [{"id": f"u{i:02d}", "errors": int(e), "ref_words": int(w)} for i, (e, w) in enumerate(zip(err, words))]

    task = "tts:seed-tts-eval-en"
    a = _write_run(tmp_path / "a", task, recs(err_a), "wer", 1.0, {"protocol": "seed-tts-eval"})
    b = _write_run(tmp_path / "b", task, recs(err_b), "wer", 2.0, {"protocol": "seed-tts-eval"})
    (d,) = compare(a, b, n_resamples=200, seed=2).deltas
    ua, ub = per_utt(err_a), per_utt(err_b)
    assert d.aggregation == "utterance_mean"
    assert d.a == pytest.approx(ua.mean()) and d.b == pytest.approx(ub.mean())
    want = _paired_interval(lambda r: ua[r].mean(), lambda r: ub[r].mean(), n, 2, task, 200, 2.5, 97.5)
    assert (d.ci_low, d.ci_high) == pytest.approx(want, abs=1e-9)

    # accuracy: records of one item (voices) averaged first, items resampled; 4 items x 2 voices, sorted item order
    task = "slm:swuggy"
    ca = {("1", "v1"): 1, ("1", "v2"): 0, ("2", "v1"): 1, ("2", "v2"): 1, ("3", "v1"): 0, ("3", "v2"): 0.5,
          ("4", "v1"): 1, ("4", "v2"): 1}
    cb = {k: 1 - v for k, v in ca.items()}
    cb[("4", "v1")] = 1

    def acc_recs(c):
        return [{"id": i, "voice": v, "correct": x} for (i, v), x in c.items()]

    a = _write_run(tmp_path / "acc_a", task, acc_recs(ca), "accuracy", 50.0)
    b = _write_run(tmp_path / "acc_b", task, acc_recs(cb), "accuracy", 50.0)
    (d,) = compare(a, b, n_resamples=100, seed=5).deltas
    items_a = np.array([np.mean([ca[(i, v)] for v in ("v1", "v2")]) for i in "1234"])
    items_b = np.array([np.mean([cb[(i, v)] for v in ("v1", "v2")]) for i in "1234"])
    assert (d.n, d.units, d.aggregation) == (8, 4, "mean")
    assert d.a == pytest.approx(100 * items_a.mean()) and d.b == pytest.approx(100 * items_b.mean())
    want = _paired_interval(lambda r: 100 * items_a[r].mean(), lambda r: 100 * items_b[r].mean(), 4, 5, task, 100,
                            2.5, 97.5)
    assert (d.ci_low, d.ci_high) == pytest.approx(want, abs=1e-9)


def test_compare_argument_checks_and_item_of(tmp_path):
    from most_eval.results.runs import item_of

    task = "asr:t"
    recs = [{"id": "u0", "errors": 1, "ref_words": 4}, {"id": "u1", "errors": 0, "ref_words": 3}]
    a = _write_run(tmp_path / "a", task, recs, "wer", 100 / 7)
    (d,) = compare(a, a, n_resamples=1).deltas  # one resample is allowed
    assert d.ci_low == d.ci_high == 0.0
    for kwargs, message in (({"n_resamples": 0}, "n_resamples must be >= 1"),
                            ({"confidence": 0.0}, "confidence must be in (0, 1)"),
                            ({"confidence": 1.0}, "confidence must be in (0, 1)"),
                            ({"confidence": 1.5}, "confidence must be in (0, 1)")):
        with pytest.raises(ValueError) as err:
            compare(a, a, **kwargs)
        assert str(err.value) == message
    assert item_of({"item": 7, "id": "x", "type": "t", "subtype": "s"}) == "7"
    assert item_of({"id": "x", "type": "t", "subtype": "s"}) == "t/s/x"
    assert item_of({"id": "x", "type": "t"}) == "x" and item_of({"id": "x", "subtype": "s"}) == "x"


def _delta(metric, lower_is_better, delta, lo, hi):
    return MetricDelta(task="t", metric=metric, lower_is_better=lower_is_better, aggregation="corpus", n=10, units=10,
                       only_a=0, only_b=0, a=10.0, b=10.0 + delta, delta=delta, ci_low=lo, ci_high=hi,
                       a_reported=None, b_reported=None, same_dataset=True)


@pytest.mark.parametrize("delta,lo,hi,tol,status", [
    (0.5, 0.31, 0.7, 0.3, "fail"),  # estimate and whole interval beyond the tolerance
    (0.5, 0.3, 0.7, 0.3, "warn"),  # interval reaches the tolerance exactly: not significant beyond it
    (0.5, 0.1, 0.7, 0.3, "warn"),
    (0.3, 0.3, 0.3, 0.3, "pass"),  # estimate exactly at the tolerance
    (0.2, 0.1, 0.25, 0.0, "fail"),  # tol 0: any significant regression fails
    (0.2, 0.0, 0.25, 0.0, "warn"),
    (-1.0, -2.0, -0.5, 0.3, "pass"),  # improvement
])
def test_check_decision_boundaries_lower_is_better(delta, lo, hi, tol, status):
    assert grade(_delta("wer", True, delta, lo, hi), tol).status == status


@pytest.mark.parametrize("delta,lo,hi,tol,status", [
    (-2.0, -3.0, -1.5, 1.0, "fail"),  # accuracy down 2 points, interval [-3, -1.5]: worse by [1.5, 3]
    (-2.0, -3.0, -1.0, 1.0, "warn"),  # worse-by interval reaches 1.0 exactly
    (-1.0, -1.5, -1.0, 1.0, "pass"),
    (2.0, 1.0, 3.0, 1.0, "pass"),
])
def test_check_decision_boundaries_higher_is_better(delta, lo, hi, tol, status):
    d = _delta("accuracy", False, delta, lo, hi)
    assert d.worse_by == -delta and d.worse_ci == (-hi, -lo)
    assert grade(d, tol).status == status
    assert d.significant == (lo > 0 or hi < 0)


# --------------------------------------------------------------- report/: statistic, bootstrap, grade


def test_comparison_statistic_shapes_and_exact_corpus_wer():
    """Kills ``_statistic`` mutants: the full-sample value is a 0-d array (``idx is None``), a corpus WER over one
    reference word is exactly 100 * errors (the 1e-12 floor only guards an empty reference), and the similarity
    mean is per resample row."""
    from most_eval.report.comparison import _statistic, paired_bootstrap

    sim = np.array([0.5, 0.7, 0.9])
    assert _statistic("sim", "mean", {"sim": sim}, None).shape == ()
    idx = np.array([[0, 0, 1], [2, 2, 2]])
    np.testing.assert_allclose(_statistic("sim", "mean", {"sim": sim}, idx), [(0.5 + 0.5 + 0.7) / 3, 0.9])
    one = {"errors": np.array([1.0]), "ref_words": np.array([1.0])}
    assert float(_statistic("wer", "corpus", one, None)) == 100.0
    dist = paired_bootstrap("sim", {"sim": sim}, {"sim": sim + 0.1}, rng=np.random.default_rng(0))
    assert dist.shape == (1000,)  # default n_resamples


def test_grade_reasons_name_the_numbers_with_the_metric_format():
    """Kills ``grade`` mutants on the reason text (sim: 3 decimals; the values, not empty) and ``worse > tol`` for
    the fail branch (an estimate exactly at the tolerance passes even when the interval lies above it)."""
    d = _delta("sim", False, -0.02, -0.03, -0.01)  # a 10.000, b 9.980: worse by 0.020, worse interval [0.010, 0.030]
    detail = "t sim: baseline 10.000, candidate 9.980, worse by +0.020 (10 samples, CI [+0.010, +0.030]), tolerance"
    row = grade(d, 0.005)
    assert (row.status, row.reason) == ("fail", f"significant regression beyond tolerance: {detail} 0.005")
    row = grade(d, 0.015)
    assert (row.status, row.reason) == ("warn", f"beyond tolerance but not significant: {detail} 0.015")
    row = grade(d, 0.05)
    assert (row.status, row.reason) == ("pass", f"{detail} 0.05")
    assert grade(_delta("wer", True, 0.3, 0.31, 0.5), 0.3).status == "pass"


def test_metric_delta_defaults_reported_values_and_same_dataset(tmp_path):
    """Kills ``metric_delta`` mutants: defaults 1000 resamples / seed 0 / 95 %, ``b_reported``, ``same_dataset``
    (True for equal hashes, None when a run has none)."""
    from most_eval.report.comparison import metric_delta
    from most_eval.results.runs import load_run

    task, n = "tts:test", 30
    rng = np.random.default_rng(3)
    sa, sb = rng.uniform(0.3, 0.9, n), rng.uniform(0.3, 0.9, n)
    a = _write_run(tmp_path / "a", task, [{"id": f"s{i}", "sim": float(v)} for i, v in enumerate(sa)], "sim", 0.61)
    b = _write_run(tmp_path / "b", task, [{"id": f"s{i}", "sim": float(v)} for i, v in enumerate(sb)], "sim", 0.62)
    d = metric_delta(load_run(a), load_run(b), task, "sim")
    order = np.argsort([f"s{i}" for i in range(n)])  # ids in sorted (text) order
    xa, xb = sa[order], sb[order]
    want = _paired_interval(lambda r: xa[r].mean(), lambda r: xb[r].mean(), n, 0, task, 1000, 2.5, 97.5)
    assert (d.ci_low, d.ci_high) == pytest.approx(want, abs=1e-12)
    assert (d.a_reported, d.b_reported, d.same_dataset) == (0.61, 0.62, True)
    data = json.loads((b / "results.json").read_text())
    del data["tasks"][task]["dataset_sha256"]
    (b / "results.json").write_text(json.dumps(data))
    assert metric_delta(load_run(a), load_run(b), task, "sim").same_dataset is None
