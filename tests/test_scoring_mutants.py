"""Tests that kill the mutants the scoring core's own tests let survive (benchmarks/mutation/README.md).

Every expected value here is computed independently of the code under test: a hand count, a plain-Python loop or a
numpy call written out in the test, never a second call of the same function. Sections follow the modules in the
mutation report; each test names the mutant family it kills.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from pathlib import Path

import numpy as np
import pytest

from most_eval import dataset_files as F
from most_eval.metrics import wer as W


# ------------------------------------------------------------------------------------------------- metrics/wer.py

def _bootstrap_reference(errors, words, resamples, seed, q_low, q_high):
    """Percentile bootstrap of corpus WER written out: resampled utterance indices (numpy's default_rng), the
    corpus WER of each resample, np.percentile at the given percentiles."""
    errors, words = np.asarray(errors, dtype=float), np.asarray(words, dtype=float)
    draws = np.random.default_rng(seed).integers(0, len(errors), size=(resamples, len(errors)))
    wers = 100.0 * errors[draws].sum(axis=1) / words[draws].sum(axis=1)
    return float(np.percentile(wers, q_low)), float(np.percentile(wers, q_high))


def _skewed_corpus(n=40, seed=5):
    rng = np.random.default_rng(seed)
    words = rng.integers(3, 25, size=n)
    errors = rng.binomial(words, 0.15)
    return errors.astype(np.int64), words.astype(np.int64)


def test_wer_bootstrap_ci95_is_the_2_5_and_97_5_percentiles_not_a_90_interval():
    """Planted-bug gap: a 90 % interval (5th/95th percentiles) reported as the 95 % one."""
    errors, words = _skewed_corpus()
    records = [{"substitutions": int(e), "deletions": 0, "insertions": 0, "ref_words": int(w)}
               for e, w in zip(errors, words)]
    got = W.aggregate_wer(records, "whisper", resamples=400, seed=11)["wer_ci95"]
    lo95, hi95 = _bootstrap_reference(errors, words, 400, 11, 2.5, 97.5)
    lo90, hi90 = _bootstrap_reference(errors, words, 400, 11, 5.0, 95.0)
    assert got == [round(lo95, 4), round(hi95, 4)]
    assert hi95 - lo95 > (hi90 - lo90) + 0.05  # the 95 % interval is visibly wider than the 90 % one
    assert got[1] - got[0] > hi90 - lo90


def test_wer_bootstrap_default_level_resamples_and_seed():
    errors, words = _skewed_corpus(n=25, seed=2)
    lo, hi = W.bootstrap_ci(errors, words)  # defaults: 1000 resamples, seed 0, level 0.95
    want = _bootstrap_reference(errors, words, 1000, 0, 2.5, 97.5)
    assert (lo, hi) == (round(want[0], 4), round(want[1], 4))
    lo80, hi80 = W.bootstrap_ci(errors, words, level=0.8, resamples=300, seed=4)
    want80 = _bootstrap_reference(errors, words, 300, 4, 10.0, 90.0)
    assert (lo80, hi80) == (round(want80[0], 4), round(want80[1], 4))


def test_wer_bootstrap_of_nothing_is_nan():
    lo, hi = W.bootstrap_ci(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    assert math.isnan(lo) and math.isnan(hi)
    assert W.aggregate_wer([], "whisper")["wer_ci95"] == [pytest.approx(float("nan"), nan_ok=True)] * 2


def test_seed_tts_bootstrap_resamples_the_mean_of_utterance_wers():
    # utterance WERs 0, 50, 100 (empty ref + insertion), 0 (both empty), 200
    records = [{"substitutions": 0, "deletions": 0, "insertions": 0, "ref_words": 4},
               {"substitutions": 1, "deletions": 1, "insertions": 0, "ref_words": 4},
               {"substitutions": 0, "deletions": 0, "insertions": 2, "ref_words": 0},
               {"substitutions": 0, "deletions": 0, "insertions": 0, "ref_words": 0},
               {"substitutions": 2, "deletions": 0, "insertions": 2, "ref_words": 2}]
    per_utt = [0.0, 50.0, 100.0, 0.0, 200.0]
    got = W.aggregate_wer(records, "seed-tts-eval", resamples=300, seed=3)
    assert got["wer"] == round(sum(per_utt) / 5, 3) == 70.0
    rng = np.random.default_rng(3)
    means = [sum(per_utt[i] for i in row) / 5 for row in rng.integers(0, 5, size=(300, 5))]
    assert got["wer_ci95"] == [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]
    assert (got["substitutions"], got["deletions"], got["insertions"], got["ref_words"]) == (3, 1, 4, 10)
    assert got["wer_protocol"] == "seed-tts-eval"


def test_corpus_wer_totals_and_protocol_name():
    records = [{"substitutions": 1, "deletions": 2, "insertions": 3, "ref_words": 10},
               {"substitutions": 0, "deletions": 0, "insertions": 1, "ref_words": 0},
               {"substitutions": 4, "deletions": 0, "insertions": 0, "ref_words": 5}]
    got = W.aggregate_wer(records, resamples=10)
    assert got["wer"] == round(100 * 11 / 15, 4)
    assert (got["substitutions"], got["deletions"], got["insertions"], got["ref_words"]) == (5, 2, 4, 15)
    assert got["wer_protocol"] == "whisper"
    assert math.isnan(W.corpus_wer([W.EditCounts(0, 0, 3, 0)]))


# ------------------------------------------------------------------------------------------ metrics/bootstrap.py

from most_eval.metrics import bootstrap as B  # noqa: E402


def test_resample_in_blocks_equals_one_draw(monkeypatch):
    """Blocks only cap memory: the distribution equals the statistic over one (resamples, n) draw, in draw order."""
    values = np.arange(7, dtype=float) ** 2
    want = values[np.random.default_rng(4).integers(0, 7, size=(50, 7))].mean(axis=1)
    monkeypatch.setattr(B, "MAX_INDICES_PER_BLOCK", 3 * 7)  # blocks of 3 resamples, the last one of 2
    got = B.resample(lambda idx: values[idx].mean(axis=1), 7, 50, np.random.default_rng(4))
    np.testing.assert_array_equal(got, want)


def test_percentile_interval_is_central_linear_and_leaves_nan_out():
    dist = np.array([np.nan, 4.0, 1.0, np.nan, 3.0, 2.0, 5.0])  # 1..5 once the NaNs are left out
    assert B.percentile_interval(dist, 0.5) == (2.0, 4.0)  # positions 4 * 0.25 = 1 and 4 * 0.75 = 3
    assert B.percentile_interval(dist) == pytest.approx((1.1, 4.9))  # positions 0.1 and 3.9, interpolated
    for empty in (np.array([np.nan, np.nan]), np.array([])):
        assert all(math.isnan(v) for v in B.percentile_interval(empty))


# ------------------------------------------------------------------------------------------- dataset_files.py

def test_safe_path_resolves_symlinks_instead_of_checking_lexically(tmp_path):
    """Planted-bug gap: a lexical check (no '..', not absolute) passes a symlink that leaves the root."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "deep" / "er").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET")
    (root / "deep" / "er" / "door").symlink_to(outside)  # a directory symlink below the top level
    (root / "ok.txt").write_text("ok")
    (root / "deep" / "inside-link").symlink_to(root / "ok.txt")
    relative = "deep/er/door/secret.txt"
    assert ".." not in relative and not os.path.isabs(relative)  # lexically clean
    assert os.path.realpath(root / relative) == os.path.realpath(outside / "secret.txt")  # but it leaves root
    with pytest.raises(ValueError, match="escapes the dataset root") as err:
        F.safe_path(root, relative)
    assert "dangling" not in str(err.value) and "symlink to" in str(err.value)
    # a root that is itself reached through a symlink: paths inside it stay inside
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    assert F.safe_path(alias, "ok.txt") == alias / "ok.txt"
    assert F.safe_path(root, "deep/inside-link") == root / "deep" / "inside-link"
    # a dangling link out says so
    (root / "gone").symlink_to(outside / "nope")
    with pytest.raises(ValueError, match="dangling symlink"):
        F.safe_path(root, "gone")


def test_wer_bootstrap_defaults_are_1000_resamples_seed_0():
    # many distinct utterance lengths, so one resample more or another seed moves the percentiles
    rng = np.random.default_rng(21)
    words = rng.integers(1, 60, size=300)
    errors = rng.binomial(words, 0.2)
    records = [{"substitutions": int(e), "deletions": 0, "insertions": 0, "ref_words": int(w)}
               for e, w in zip(errors, words)]
    want = _bootstrap_reference(errors, words, 1000, 0, 2.5, 97.5)
    want = [round(want[0], 4), round(want[1], 4)]
    assert list(W.bootstrap_ci(errors, words)) == want
    assert W.aggregate_wer(records)["wer_ci95"] == want
    assert want != [round(v, 4) for v in _bootstrap_reference(errors, words, 1001, 0, 2.5, 97.5)]
    assert want != [round(v, 4) for v in _bootstrap_reference(errors, words, 1000, 1, 2.5, 97.5)]


def test_wer_bootstrap_of_one_utterance_is_its_wer():
    assert W.bootstrap_ci(np.array([3]), np.array([10])) == (30.0, 30.0)


def test_seed_tts_wer_rounds_the_mean_of_jiwer_fractions_like_average_wer_py():
    # average_wer.py: round(np.mean(e / n) * 100, 3); going through percent first (100 * e / n / 100) lands on the
    # other side of the 3rd decimal for this set: 20.937 vs 20.938
    pairs = [(3, 16), (7, 21), (1, 15), (1, 4)]
    records = [{"substitutions": e, "deletions": 0, "insertions": 0, "ref_words": n} for e, n in pairs]
    want = float(np.round(np.mean([e / n for e, n in pairs]) * 100, 3))
    assert want == 20.937
    assert W.aggregate_wer(records, "seed-tts-eval", resamples=5)["wer"] == want


def test_seed_tts_wer_of_nothing_is_nan():
    got = W.aggregate_wer([], "seed-tts-eval", resamples=5)
    assert math.isnan(got["wer"]) and got["ref_words"] == 0


def test_seed_tts_normalize_whitespace_rules():
    assert W.seed_tts_normalize("Hi,\t\tThere") == "hi there"  # a whitespace run -> one space
    assert W.seed_tts_normalize("XX  XX") == "xx xx"  # the "  " -> " " pass, then lower-casing
    assert W.seed_tts_normalize("a\tb") == "a\tb"  # a lone tab stays inside one "word"


def test_edit_counts_of_a_whitespace_only_reference_is_all_insertions():
    assert W.edit_counts(["   ", " \t "], ["a b", ""]) == [W.EditCounts(0, 0, 2, 0), W.EditCounts(0, 0, 0, 0)]


def test_wer_records_default_protocol_and_record_fields():
    (rec,) = W.wer_records(["u1"], ["Mr. Smith, 21!"], ["mister smith twenty one"])
    assert rec == {"id": "u1", "hyp_raw": "mister smith twenty one", "ref": "mister smith 21",
                   "hyp": "mister smith 21", "substitutions": 0, "deletions": 0, "insertions": 0, "ref_words": 3,
                   "errors": 0}


# ------------------------------------------------------------------------------- tasks/slm/storycloze_scoring.py

from most_eval_tasks.slm import storycloze_scoring as SC  # noqa: E402


def test_storycloze_summary_and_pair_records():
    pairs = [SC.ClozePair("s0", "0_t", "0_f"), SC.ClozePair("s1", "1_t", "1_f")]
    result = SC.score_storycloze(pairs, {"0_t": -1.0, "0_f": -2.0, "1_t": -3.0}, reduction="sum",
                                 allow_missing=True)
    assert result.summary() == {"accuracy": 1.0, "n_pairs": 1, "reduction": "sum", "missing": 1}
    assert [p.to_record() for p in result.pairs] == [
        {"id": "s0", "true_stem": "0_t", "false_stem": "0_f", "true_score": -1.0, "false_score": -2.0,
         "outcome": 1.0}]


def test_storycloze_a_missing_first_pair_does_not_stop_the_others():
    pairs = [SC.ClozePair("a", "a_t", "a_f"), SC.ClozePair("b", "b_t", "b_f"), SC.ClozePair("c", "c_t", "c_f")]
    scores = {"a_t": -1.0, "b_t": -1.0, "b_f": -1.0, "c_t": -5.0, "c_f": -1.0}
    result = SC.score_storycloze(pairs, scores, reduction="sum", allow_missing=True)
    assert [p.id for p in result.pairs] == ["b", "c"] and result.accuracy == (0.5 + 0.0) / 2
    assert result.missing_stems == ["a_f"]


def test_storycloze_token_counts():
    assert SC.reduce_log_likelihood(-5.0, 1, "mean") == -5.0  # one token is a valid count
    with pytest.raises(ValueError, match=r"^per-token mean needs a positive token count, got 0$"):
        SC.reduce_log_likelihood(-5.0, 0, "mean")
    assert SC.convert_scores({"a": -2.0}, from_reduction="mean", to_reduction="sum", n_tokens={"a": 5}) == {"a": -10.0}
    assert SC.convert_scores({"a": -10.0}, from_reduction="sum", to_reduction="mean", n_tokens={"a": 4}) == {"a": -2.5}
    assert SC.convert_scores({"a": -7.0}, from_reduction="sum", to_reduction="mean", n_tokens={"a": 1}) == {"a": -7.0}
    for counts in ({"b": 3}, {"a": 0}):
        with pytest.raises(ValueError, match=r"^no positive token count for 'a'$"):
            SC.convert_scores({"a": -2.0}, from_reduction="sum", to_reduction="mean", n_tokens=counts)
    with pytest.raises(ValueError) as err:
        SC.convert_scores({"a": -2.0}, from_reduction="sum", to_reduction="mean")
    assert str(err.value) == ("scores are sum-reduced log-likelihoods but 'mean' was asked for: converting needs each "
                              "wav's token count (n_tokens), or set the task's reduction to 'sum'")


def test_storycloze_error_messages_list_five_stems():
    pairs = [SC.ClozePair(str(i), f"{i}_t", f"{i}_f") for i in range(6)]
    nan = {f"{i}_{s}": (math.nan if s == "t" else -1.0) for i in range(6) for s in "tf"}
    with pytest.raises(ValueError) as err:
        SC.score_storycloze(pairs, nan, reduction="sum")
    assert str(err.value) == "6 non-finite score(s): 0_t, 1_t, 2_t, 3_t, 4_t"
    for n_missing, tail in ((5, ""), (6, ", ...")):
        scores = {f"{i}_t": -1.0 for i in range(6)} | {f"{i}_f": -1.0 for i in range(n_missing, 6)}
        with pytest.raises(ValueError) as err:
            SC.score_storycloze(pairs, scores, reduction="sum")
        assert str(err.value) == f"{n_missing} stem(s) have no score: 0_f, 1_f, 2_f, 3_f, 4_f{tail}"
    with pytest.raises(ValueError) as err:
        SC.score_storycloze(pairs[:1], {}, reduction="sum", allow_missing=True)
    assert str(err.value) == "no scorable StoryCloze pair"


# ------------------------------------------------------------------------------------------------ run_comparison.py

from most_eval.run_comparison import MetricDelta, compare, judge  # noqa: E402


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
    assert judge(_delta("wer", True, delta, lo, hi), tol).status == status


@pytest.mark.parametrize("delta,lo,hi,tol,status", [
    (-2.0, -3.0, -1.5, 1.0, "fail"),  # accuracy down 2 points, interval [-3, -1.5]: worse by [1.5, 3]
    (-2.0, -3.0, -1.0, 1.0, "warn"),  # worse-by interval reaches 1.0 exactly
    (-1.0, -1.5, -1.0, 1.0, "pass"),
    (2.0, 1.0, 3.0, 1.0, "pass"),
])
def test_check_decision_boundaries_higher_is_better(delta, lo, hi, tol, status):
    d = _delta("accuracy", False, delta, lo, hi)
    assert d.worse_by == -delta and d.worse_ci == (-hi, -lo)
    assert judge(d, tol).status == status
    assert d.significant == (lo > 0 or hi < 0)


# ------------------------------------------------------------------------------------------ tasks/slm/zerospeech.py

from most_eval_tasks.slm import zerospeech as ZR  # noqa: E402


def _lexical_gold(tmp_path: Path):
    rows = ["filename,id,voice,frequency,word,phones,length,correct",
            "w1a,1,a,3,cat,k a t,3,1", "n1a,1,a,,,k a p,,0",
            "w1b,1,b,3,cat,k a t,3,1", "n1b,1,b,,,k a p,,0",
            "w2a,2,a,0,zyx,z y x,3,1", "n2a,2,a,,,z y p,,0",
            "w3a,3,a,50,dog,d o g,3,1",  # no partner on (voice, id): unpaired
            ]
    path = tmp_path / "gold.csv"
    path.write_text("\n".join(rows) + "\n")
    return ZR.read_gold(path, "lexical")


def test_lexical_unpaired_missing_and_allow_missing(tmp_path):
    gold = _lexical_gold(tmp_path)
    scores = {"w1a": -1.0, "n1a": -2.0, "w1b": -3.0, "n1b": -2.0, "w2a": -1.0, "n2a": -1.0, "w3a": 0.0}
    result = ZR.score_lexical(gold, scores)
    assert result.unpaired_stems == ["w3a"]
    # per id: id 1 = mean(1, 0) = 0.5 (2 pairs), id 2 = 0.5 (tie); all = mean of the two
    assert [(i.key, i.n_pairs, i.score) for i in result.items] == [((1,), 2, 0.5), ((2,), 1, 0.5)]
    assert result.all == result.all_exact == 0.5 and (result.n_items, result.n_pairs) == (2, 3)
    summary = result.summary()
    assert (summary["unpaired"], summary["missing"], summary["n_items"], summary["n_pairs"]) == (1, 0, 2, 3)
    assert set(summary) == {"all", "in_vocab", "all_exact", "in_vocab_exact", "n_items", "n_pairs", "by_frequency",
                            "by_length", "unpaired", "missing"}
    partial = {k: v for k, v in scores.items() if k != "n1b"}
    with pytest.raises(ValueError, match=r"^1 of 7 gold stems have no score: n1b$"):
        ZR.score_lexical(gold, partial)  # allow_missing defaults to False
    kept = ZR.score_lexical(gold, partial, allow_missing=True)
    assert kept.missing_stems == ["n1b"] and kept.n_pairs == 2  # the pair that needs n1b is left out, not scored 0
    assert [(i.key, i.n_pairs, i.score) for i in kept.items] == [((1,), 1, 1.0), ((2,), 1, 0.5)]
    with pytest.raises(ValueError) as err:
        ZR.score_lexical(gold, {"w3a": 1.0}, allow_missing=True)
    assert str(err.value) == "no scorable (word, non-word) pair"


def test_syntactic_consistency_flags_and_items(tmp_path):
    rows = ["filename,id,voice,type,subtype,transcription,correct",
            "g1,1,a,t,s,good one,1", "b1,1,a,t,s,bad one,0",
            "g2,2,a,t,s,good two,1", "b2,9,a,t,s,bad two,0",  # same subtype, different id: inconsistent
            "g3,3,a,t,s,good three,1", "b3,3,a,t,s,bad three,0"]
    path = tmp_path / "gold.csv"
    path.write_text("\n".join(rows) + "\n")
    gold = ZR.read_gold(path, "syntactic")
    result = ZR.score_syntactic(gold, {"g1": 0.0, "b1": -1.0, "g2": -1.0, "b2": 0.0, "g3": 0.0, "b3": 0.0})
    assert result.mismatched_pairs == [1]
    assert [p.consistent for p in result.pairs] == [True, False, True]
    assert [(i.key, i.n_pairs, i.score) for i in result.items] == [(("t", "s", 1), 1, 1.0), (("t", "s", 2), 1, 0.0),
                                                                     (("t", "s", 3), 1, 0.5)]
    assert result.n_items == 3 and result.score_exact == pytest.approx(0.5) and result.score == 0.5
    assert result.summary() == {"score": 0.5, "score_exact": pytest.approx(0.5), "n_items": 3, "n_pairs": 3,
                                "by_type": [{"label": "t", "n": 3, "score": pytest.approx(0.5),
                                             "std": pytest.approx(0.5), "score_rounded": 0.5}],
                                "mismatched": 1, "missing": 0}
    with pytest.raises(ValueError) as err:
        ZR.score_syntactic(gold, {}, allow_missing=True)
    assert str(err.value) == "no scorable (correct, incorrect) pair"
    with pytest.raises(ValueError) as err:
        ZR.score_syntactic(gold.table.iloc[:5], {"g1": 0.0}, allow_missing=True)
    assert str(err.value) == ("syntactic gold has 3 correct and 2 incorrect rows: positional pairing needs as many "
                              "of each")


def test_score_file_error_text_without_a_line(tmp_path):
    assert str(ZR.ScoreFileError(tmp_path / "g.csv", None, "empty gold file")) == f"{tmp_path / 'g.csv'}: empty gold file"
    assert str(ZR.ScoreFileError(tmp_path / "g.csv", 3, "bad")) == f"{tmp_path / 'g.csv'}:3: bad"


def test_compare_argument_checks_and_item_of(tmp_path):
    from most_eval.run_comparison import item_of

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


# ---------------------------------------------------------------------------------------------- lm_eval_bridge.py

class _FakeGenerator:
    """A text-only model that echoes what generate_text received, so the bridge's bookkeeping is visible."""

    name = "fake"

    def __init__(self):
        self.calls = []

    def capabilities(self):
        from most_eval.adapter import GENERATE_TEXT, SCORE_TEXT
        return {GENERATE_TEXT, SCORE_TEXT}

    def generate_text(self, prompts, stops, limit):
        self.calls.append((list(prompts), [list(s) for s in stops], limit))
        return [f"{p}|{','.join(s)}|{limit}" for p, s in zip(prompts, stops)]

    def score_text(self, contexts, continuations):
        return [(-float(len(c) + 10 * len(x)), len(x) == 1) for c, x in zip(contexts, continuations)]


class _Req:
    def __init__(self, *args):
        self.args = args


def test_bridge_generate_until_groups_by_budget_and_keeps_request_order():
    from most_eval.lm_eval_bridge import DEFAULT_MAX_GEN_TOKS, MostEvalLM

    model = _FakeGenerator()
    lm = MostEvalLM(model)
    assert lm.token_level is False and lm.tokenizer is None and DEFAULT_MAX_GEN_TOKS == 256
    requests = [_Req("a", {"until": ["\n", "."], "max_gen_toks": 8}), _Req("b", {"until": "Q:"}),
                _Req("c", {"max_gen_toks": 8}), _Req("d", {"until": None, "max_gen_toks": "3"})]
    assert lm.generate_until(requests) == ["a|\n,.|8", "b|Q:|256", "c||8", "d||3"]
    assert model.calls == [(["d"], [[]], 3), (["a", "c"], [["\n", "."], []], 8), (["b"], [["Q:"]], 256)]


def test_bridge_text_path_scores_and_rolling_documents():
    from most_eval.lm_eval_bridge import MostEvalLM

    lm = MostEvalLM(_FakeGenerator())
    got = lm.loglikelihood([_Req("ctx", "x"), _Req("", "yz")])
    assert got == [(-13.0, True), (-20.0, False)]
    assert lm.loglikelihood_rolling([_Req("abc"), _Req("")]) == [-30.0, 0.0]
    assert lm.loglikelihood([]) == []


def test_bridge_builds_a_named_model_on_cpu_by_default(monkeypatch):
    import most_eval.registry as registry
    from most_eval.lm_eval_bridge import MostEvalLM

    seen = []

    def fake_build(name, args, device):
        seen.append((name, args, device))
        return _FakeGenerator()

    monkeypatch.setattr(registry, "build_model", fake_build)
    MostEvalLM("dummy", batch_size=4, max_batch_size=None, device=None, path="/m", seed=3, skip=None)
    MostEvalLM("dummy", device="cuda:1")
    assert seen == [("dummy", {"path": "/m", "seed": "3"}, "cpu"), ("dummy", {}, "cuda:1")]


def test_zerospeech_row_form_names_rows_and_syntactic_pair_records(tmp_path):
    rows = [{"filename": "g1.wav", "id": 1, "voice": "a", "type": "t", "subtype": "s", "transcription": "ok",
             "correct": True},
            {"filename": "g1", "id": 1, "voice": "a", "type": "t", "subtype": "s", "transcription": None,
             "correct": 0}]
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.gold_from_rows(rows, "syntactic", tmp_path / "src")
    assert str(err.value) == f"{tmp_path / 'src'}:row 2: filename 'g1' already listed on row 1"
    rows[1]["filename"] = "b1"
    gold = ZR.gold_from_rows(rows, "syntactic", tmp_path / "src")
    (pair,) = ZR.score_syntactic(gold, {"g1": -1.0, "b1": -2.0}).pairs
    assert pair.to_record() == {"position": 0, "id": 1, "voice": "a", "type": "t", "subtype": "s",
                                "correct_stem": "g1", "incorrect_stem": "b1", "correct_score": -1.0,
                                "incorrect_score": -2.0, "outcome": 1.0, "sentence": "ok", "non_sentence": None,
                                "consistent": True}
