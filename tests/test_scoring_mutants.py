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
import pandas as pd
import pytest

from most_eval.data import files as F
from most_eval.scoring import wer as W


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

from most_eval.scoring import bootstrap as B  # noqa: E402


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


def test_percentile_interval_widens_float32_and_none_to_float64():
    """Kills bootstrap ``x_percentile_interval__mutmut_4``/``_6`` (``np.asarray(..., dtype=None)``): a float32
    distribution must be interpolated in float64, and None (a missing statistic) counts as NaN and is left out."""
    dist = np.array([0.9, 0.1, 0.45, 0.3, 0.7], dtype=np.float32)
    s = sorted(float(v) for v in dist)  # the float32 values, exactly, as Python floats: .1 .3 .45 .7 .9
    lo_want = s[0] + 0.1 * (s[1] - s[0])  # position 4 * 0.025 = 0.1
    hi_want = s[3] + 0.9 * (s[4] - s[3])  # position 4 * 0.975 = 3.9
    lo, hi = B.percentile_interval(dist)
    assert lo == pytest.approx(lo_want, rel=1e-12, abs=0) and hi == pytest.approx(hi_want, rel=1e-12, abs=0)
    assert B.percentile_interval([1.0, None, 3.0]) == pytest.approx((1.05, 2.95), rel=1e-12)


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


# ------------------------------------------------------------------------------- report/ (compare, check)

from most_eval.report.comparison import MetricDelta
from most_eval.report.check import grade
from most_eval.report.compare import compare


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


# ---------------------------------------------------------------------------------------------- lm_eval_bridge.py

class _FakeGenerator:
    """A text-only model that echoes what generate_text received, so the bridge's bookkeeping is visible."""

    name = "fake"

    def __init__(self):
        self.calls = []

    def capabilities(self):
        from most_eval.core.adapter import GENERATE_TEXT, SCORE_TEXT
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
    from most_eval.core.lm_eval_bridge import DEFAULT_MAX_GEN_TOKS, MostEvalLM

    model = _FakeGenerator()
    lm = MostEvalLM(model)
    assert lm.token_level is False and lm.tokenizer is None and DEFAULT_MAX_GEN_TOKS == 256
    requests = [_Req("a", {"until": ["\n", "."], "max_gen_toks": 8}), _Req("b", {"until": "Q:"}),
                _Req("c", {"max_gen_toks": 8}), _Req("d", {"until": None, "max_gen_toks": "3"})]
    assert lm.generate_until(requests) == ["a|\n,.|8", "b|Q:|256", "c||8", "d||3"]
    assert model.calls == [(["d"], [[]], 3), (["a", "c"], [["\n", "."], []], 8), (["b"], [["Q:"]], 256)]


def test_bridge_text_path_scores_and_rolling_documents():
    from most_eval.core.lm_eval_bridge import MostEvalLM

    lm = MostEvalLM(_FakeGenerator())
    got = lm.loglikelihood([_Req("ctx", "x"), _Req("", "yz")])
    assert got == [(-13.0, True), (-20.0, False)]
    assert lm.loglikelihood_rolling([_Req("abc"), _Req("")]) == [-30.0, 0.0]
    assert lm.loglikelihood([]) == []


def test_bridge_builds_a_named_model_on_cpu_by_default(monkeypatch):
    import most_eval.registry as registry
    from most_eval.run.lm_eval_model import NamedMostEvalLM

    seen = []

    def fake_build(name, args, device):
        seen.append((name, args, device))
        return _FakeGenerator()

    monkeypatch.setattr(registry, "build_model", fake_build)
    NamedMostEvalLM("dummy", batch_size=4, max_batch_size=None, device=None, path="/m", seed=3, skip=None)
    NamedMostEvalLM("dummy", device="cuda:1")
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


# ---------------------------------------------------------------------- models/causal_text_lm.py (CausalTextLM)

class _CharTokenizer:
    """A Llama-like toy tokenizer: BOS ``<s>`` = 0 added by default (also before a literal ``<s>``), EOS = 1;
    letters a-z are 2..27, a lone space is 28 and a space glued to the following letter is one token, 30..55 (so a
    pair's split is context-sensitive)."""

    bos_token_id, eos_token_id = 0, 1

    def encode(self, text, add_special_tokens=True):
        ids, i = ([0] if add_special_tokens else []), 0
        if text.startswith("<s>"):  # the literal BOS text is the BOS token (a second one when BOS is added)
            ids, i = ids + [0], 3
        while i < len(text):
            if text[i] == " " and i + 1 < len(text) and text[i + 1].isalpha():
                ids.append(30 + ord(text[i + 1]) - 97)
                i += 2
            else:
                ids.append(28 if text[i] == " " else 2 + ord(text[i]) - 97)
                i += 1
        return ids

    def decode(self, token_id):
        return {0: "<s>", 1: "</s>"}[token_id]


_VOCAB = 56
_EMBED = np.random.default_rng(7).normal(size=(_VOCAB, _VOCAB))  # logits row of each input token


class _ToyCausalModel:
    """logits[b, t] = E[ids[b, t]] + 0.3 * (t + 1) * cos(v): causal (position t reads tokens <= t only) and
    position-dependent, so left truncation and right padding are both visible in the scores."""

    def __init__(self):
        self.calls = []

    def __call__(self, ids):
        import torch

        self.calls.append(ids.clone())
        t = torch.arange(ids.shape[1], dtype=torch.float64)[None, :, None] + 1
        logits = torch.tensor(_EMBED)[ids] + 0.3 * t * torch.cos(torch.arange(_VOCAB, dtype=torch.float64))
        return type("Out", (), {"logits": logits.to(torch.float32)})()


def _toy_lm(max_length=6, batch_size=1):
    from most_eval.models.causal_text_lm import CausalTextLM

    class Toy(CausalTextLM):
        text_batch_size = batch_size
        text_max_length_override = max_length
        device = "cpu"

    lm = Toy()
    lm.model, lm.tokenizer = _ToyCausalModel(), _CharTokenizer()
    return lm


def _toy_logp_rows(window):
    """numpy: natural-log softmax of the toy model's logits at every position of one input window."""
    z = _EMBED[np.asarray(window)] + 0.3 * (np.arange(len(window))[:, None] + 1) * np.cos(np.arange(_VOCAB))
    return z - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) - z.max(1, keepdims=True)


def _toy_score(ctx, cont, max_length):
    """The expected (logp, greedy), written out: one window = the last max_length tokens of ctx + cont[:-1]; the
    token cont[j] is predicted at the window position of full index len(ctx) + j - 1."""
    full = list(ctx) + list(cont)
    window = full[:-1][-max_length:]
    offset = len(full) - 1 - len(window)  # tokens cut from the left
    rows = _toy_logp_rows(window)
    total, greedy = 0.0, True
    for j, tok in enumerate(cont):
        p = len(ctx) + j - 1 - offset
        total += rows[p, tok]
        greedy &= int(np.argmax(rows[p])) == tok
    return total, greedy


def _toy_greedy_continuation(ctx, n, max_length):
    """n tokens decoded greedily from the toy model in numpy (each step re-reads the last max_length tokens)."""
    seq = list(ctx)
    for _ in range(n):
        seq.append(int(np.argmax(_toy_logp_rows(seq[-max_length:])[-1])))
    return seq[len(ctx):]


def test_causal_text_lm_score_tokens_truncates_left_pads_right_and_batches():
    """Kills hf_lm ``score_tokens`` mutants: the window (``limit = max_length + 1``, ``[-limit:][:-1]``), the
    longest-first batching and right padding (batch_size 3 over 5 lengths), the picked positions, the gather/sum,
    greedy flags, empty continuations (0.0, True) and the result order."""
    L = 6
    greedy_cont = _toy_greedy_continuation([0, 5, 9], 3, L)
    pairs = [([0, 5, 9], [12, 3]),                 # fits: window of 4
             ([0, 2, 3, 4, 5, 6, 7, 8], [9, 10]),  # 10 tokens: the window drops 3 from the left
             ([0, 5, 9], greedy_cont),             # greedy by construction
             ([4], []),                            # empty continuation
             ([0], [20]),                          # one-token window
             ([7, 7, 7, 7, 7], [1, 2, 3, 4, 5, 6])]  # continuation of exactly max_length: only ctx[-1:] is kept
    for batch_size in (1, 3, 8):
        lm = _toy_lm(L, batch_size)
        got = lm.score_tokens([c for c, _ in pairs], [x for _, x in pairs])
        assert len(got) == len(pairs)
        for (ctx, cont), (logp, greedy) in zip(pairs, got):
            if not cont:
                assert (logp, greedy) == (0.0, True)
                continue
            want, want_greedy = _toy_score(ctx, cont, L)
            assert logp == pytest.approx(want, rel=1e-5, abs=1e-5) and greedy is want_greedy
        assert got[2][1] is True and got[0][1] is False
        widths = [c.shape for c in lm.model.calls]
        want_widths = {1: [(1, 6), (1, 6), (1, 5), (1, 4), (1, 1)], 3: [(3, 6), (2, 4)], 8: [(5, 6)]}[batch_size]
        assert widths == want_widths
        for call in lm.model.calls:  # right padding with 0 after each row's own tokens
            assert call.dtype.is_floating_point is False
    lm = _toy_lm(L, 3)
    lm.score_tokens([[0, 5, 9], [0, 2, 3, 4, 5, 6, 7, 8]], [[12, 3], [9, 10]])
    assert lm.model.calls[0].tolist() == [[4, 5, 6, 7, 8, 9], [0, 5, 9, 12, 0, 0]]


def test_causal_text_lm_score_tokens_errors_and_empty_input():
    lm = _toy_lm(4)
    assert lm.score_tokens([], []) == [] and lm.model.calls == []
    assert lm.score_tokens([[], [3]], [[], []]) == [(0.0, True), (0.0, True)]  # an empty pair needs no context
    with pytest.raises(ValueError) as err:
        lm.score_tokens([[0], []], [[3], [4]])
    assert str(err.value) == "score_tokens needs at least one context token (use prefix_token_id)"
    with pytest.raises(ValueError) as err:
        lm.score_tokens([[0]], [[1, 2, 3, 4, 5]])
    assert str(err.value) == "continuation of 5 tokens exceeds max_length 4"
    got = lm.score_tokens([[0]], [[1, 2, 3, 4]])  # exactly max_length is allowed
    assert got[0][0] == pytest.approx(_toy_score([0], [1, 2, 3, 4], 4)[0], rel=1e-5)


def test_causal_text_lm_encode_and_pairs_as_lm_eval():
    """Kills hf_lm ``_encode`` / ``_encode_pair`` / ``score_text`` mutants: the tokenizer's own special-token default,
    no second BOS when the text starts with it, trailing context spaces moved to the continuation, an empty context
    conditioned on the prefix token (or on the continuation's own leading BOS)."""
    lm = _toy_lm(40)
    a, c, t = 2, 4, 21  # letters
    assert lm._encode("cat") == [0, c, a, t]
    assert lm._encode("cat", add_special_tokens=False) == [c, a, t]
    assert lm._encode("cat", add_special_tokens=True) == [0, c, a, t]
    assert lm._encode("<s>cat") == [0, c, a, t]  # not [0, 0, ...]
    assert lm._encode("<s>cat", add_special_tokens=True) == [0, 0, c, a, t]  # an explicit choice is passed on
    sp_c, sp_a = 30 + 2, 30 + 0
    assert lm._encode_pair("a cat ", "at") == ([0, a, sp_c, a, t], [sp_a, t])  # "a cat" | " at": the space moves
    assert lm._encode_pair("a cat", " at") == ([0, a, sp_c, a, t], [sp_a, t])
    assert lm._encode_pair("a  ", "t") == ([0, a], [28, 30 + 19])  # "a" | "  t": a lone space, then " t"
    assert lm._encode_pair("", "cat") == ([0], [c, a, t])
    assert lm._encode_pair("", "<s>cat") == ([0], [c, a, t])  # the continuation's BOS is the context
    assert lm._encode_pair("", "") == ([0], [])
    contexts, conts = ["a cat ", "", "ca"], ["at", "cat", "t"]
    got = lm.score_text(contexts, conts)
    want_pairs = [([0, a, sp_c, a, t], [sp_a, t]), ([0], [c, a, t]), ([0, c, a], [t])]
    for (logp, greedy), (cx, x) in zip(got, want_pairs):
        want, want_greedy = _toy_score(cx, x, 40)
        assert logp == pytest.approx(want, rel=1e-5, abs=1e-5) and greedy is want_greedy
    assert len(got) == 3


# ------------------------------------------------------------------------- lm_eval_bridge.py: the token path

class _FakeTokenModel:
    """A token-level model: score_tokens records its inputs and scores a pair as -(sum of ids) - len(ctx) / 2
    (greedy when the continuation is one token), returned as numpy scalars so the bridge's casts are visible."""

    name = "fake-tokens"
    prefix_token_id = 0

    def __init__(self, max_length=3):
        self.max_length = max_length
        self.tokenizer = _CharTokenizer()
        self.calls = []

    def capabilities(self):
        from most_eval.core.adapter import SCORE_TEXT
        return {SCORE_TEXT}

    def score_tokens(self, contexts, continuations):
        self.calls.append(([list(c) for c in contexts], [list(x) for x in continuations]))
        return [(np.float32(-sum(x) - len(c) / 2), np.bool_(len(x) == 1)) for c, x in zip(contexts, continuations)]


class _Hook:
    def __init__(self):
        self.partials = []

    def add_partial(self, kind, key, value):
        self.partials.append((kind, key, value))


def _fake_score(ctx, cont):
    return float(-sum(cont) - len(ctx) / 2), len(cont) == 1


def test_bridge_token_path_truncates_contexts_and_caches_per_request():
    """Kills lm_eval_bridge ``_loglikelihood_tokens`` mutants: ``keep = max_length + 1 - len(cont)`` context tokens,
    the two error texts, float/bool answers, the cache only for requests with a key, the empty batch."""
    from most_eval.core.lm_eval_bridge import MostEvalLM

    model = _FakeTokenModel(max_length=3)
    lm = MostEvalLM(model)
    assert lm.token_level is True and lm.tokenizer is model.tokenizer and lm.max_length == 3
    assert lm.prefix_token_id == 0 and lm.eot_token_id == 1
    lm.cache_hook = _Hook()
    assert lm._loglikelihood_tokens([]) == [] and model.calls == []
    requests = [(("c", "x"), [5, 6, 7, 8], [9]),      # keep 3 of 4 context tokens
                (None, [5, 6, 7, 8], [9, 10, 11]),    # keep 1
                (("d", "y"), [4], [2, 3]),            # nothing cut
                (("e", "z"), [1, 2, 3], [4, 5])]      # keep 2
    got = lm._loglikelihood_tokens(requests)
    want_ctx = [[6, 7, 8], [8], [4], [2, 3]]
    want_cont = [[9], [9, 10, 11], [2, 3], [4, 5]]
    assert model.calls == [(want_ctx, want_cont)]
    assert got == [_fake_score(c, x) for c, x in zip(want_ctx, want_cont)]
    assert all(type(lp) is float and type(g) is bool for lp, g in got)
    assert lm.cache_hook.partials == [("loglikelihood", ("c", "x"), got[0]), ("loglikelihood", ("d", "y"), got[2]),
                                      ("loglikelihood", ("e", "z"), got[3])]
    for bad in ([(None, [], [1])], [(None, [1], [])]):
        with pytest.raises(ValueError) as err:
            lm._loglikelihood_tokens(bad)
        assert str(err.value) == "loglikelihood needs a non-empty context and continuation (in tokens)"
    with pytest.raises(ValueError) as err:
        lm._loglikelihood_tokens([(None, [1], [1, 2, 3, 4])])
    assert str(err.value) == "continuation of 4 tokens is longer than the model's maximum length 3"
    lm._loglikelihood_tokens([(None, [1, 2], [1, 2, 3])])  # exactly max_length: one context token kept
    assert model.calls[-1] == ([[2]], [[1, 2, 3]])


def test_bridge_token_path_loglikelihood_encodes_as_lm_eval(capsys):
    """``loglikelihood`` over a token-level model goes through lm-eval's encoding (tok_encode: BOS by the tokenizer's
    default, none added to a text that starts with it), not through score_text. Its progress bar is on by default
    (``disable_tqdm=False``, as HFLM's; kills ``loglikelihood__mutmut_1``)."""
    from most_eval.core.lm_eval_bridge import MostEvalLM

    model = _FakeTokenModel(max_length=8)
    lm = MostEvalLM(model)
    a, c, t = 2, 4, 21
    assert lm.tok_encode("cat") == [0, c, a, t] and lm.tok_encode("<s>cat") == [0, c, a, t]
    assert lm.tok_encode("cat", add_special_tokens=False) == [c, a, t]
    assert lm.tok_encode("<s>cat", add_special_tokens=True) == [0, 0, c, a, t]  # kills tok_encode__mutmut_8
    got = lm.loglikelihood([_Req("ca", "t"), _Req("", "cat"), _Req("a cat ", "at")])
    want_ctx = [[0, c, a], [0], [0, a, 30 + 2, a, t]]
    want_cont = [[t], [c, a, t], [30 + 0, t]]
    assert model.calls == [(want_ctx, want_cont)]
    assert got == [_fake_score(cx, x) for cx, x in zip(want_ctx, want_cont)]
    assert "Tokenizing inputs" in capsys.readouterr().err
    lm.loglikelihood([_Req("ca", "t")], disable_tqdm=True)
    assert "Tokenizing inputs" not in capsys.readouterr().err


def test_bridge_token_path_rolling_windows_sum_per_document():
    """Kills ``loglikelihood_rolling`` token-path mutants: lm-eval's disjoint rolling windows (max_seq_len =
    max_length, context_len 1, the first window on the prefix token), worked out by hand, summed per document and
    cached per document."""
    from most_eval.core.lm_eval_bridge import MostEvalLM

    model = _FakeTokenModel(max_length=3)
    lm = MostEvalLM(model)
    lm.cache_hook = _Hook()
    # "abcdefg" -> [0, 2, 3, 4, 5, 6, 7, 8]; windows (context, predicted): ([0], [0, 2, 3]), ([3], [4, 5, 6]),
    # ([5, 6], [7, 8]).  "ab" -> [0, 2, 3]: one window ([0], [0, 2, 3]).
    got = lm.loglikelihood_rolling([_Req("abcdefg"), _Req("ab")])
    want_doc1 = _fake_score([0], [0, 2, 3])[0] + _fake_score([3], [4, 5, 6])[0] + _fake_score([5, 6], [7, 8])[0]
    want_doc2 = _fake_score([0], [0, 2, 3])[0]
    assert got == [pytest.approx(want_doc1), pytest.approx(want_doc2)]
    assert sorted(zip(*model.calls[0])) == sorted([([0], [0, 2, 3]), ([3], [4, 5, 6]), ([5, 6], [7, 8]),
                                                   ([0], [0, 2, 3])])
    assert lm.cache_hook.partials == [("loglikelihood_rolling", ("abcdefg",), got[0]),
                                      ("loglikelihood_rolling", ("ab",), got[1])]
    assert lm.loglikelihood_rolling([]) == []


# -------------------------------------------------------------------- slm/zerospeech.py: gold_from_rows (row form)

def _lexical_rows():
    return [{"filename": "w1.wav", "id": 7.0, "voice": "v", "frequency": 3.0, "word": "cat", "phones": "k a t",
             "length": 3, "correct": True, "extra": "ignored"},
            {"filename": "n1.wav.wav", "id": 7, "voice": "v", "frequency": None, "word": float("nan"),
             "phones": "k o t", "correct": False},  # no "length" key at all: an empty optional cell
            {"filename": "w2", "id": "8", "voice": 2, "frequency": "0", "word": "dog", "phones": "d o g",
             "length": "3", "correct": "1"},
            {"filename": "n2", "id": 8, "voice": "2", "frequency": float("nan"), "word": None, "phones": None,
             "length": None, "correct": "0"}]


def test_zerospeech_gold_from_rows_converts_cells_as_gold_csv(tmp_path):
    """Kills ``gold_from_rows`` mutants: null / NaN optional cells become empty, an integral float loses ".0",
    ``correct`` from a bool, ``.wav`` removed once, header = the kind's gold columns only, the path kept."""
    gold = ZR.gold_from_rows(iter(_lexical_rows()), "lexical", str(tmp_path / "src"))
    assert gold.kind == "lexical" and gold.path == tmp_path / "src"
    t = gold.table
    assert list(t.columns) == ["filename", "id", "voice", "frequency", "word", "phones", "length", "correct"]
    assert t["filename"].tolist() == ["w1", "n1.wav", "w2", "n2"]
    assert t["id"].tolist() == [7, 7, 8, 8] and t["id"].dtype == np.int64
    assert t["voice"].tolist() == ["v", "v", "2", "2"]
    assert t["correct"].tolist() == [1, 0, 1, 0]
    assert [None if v is pd.NA else v for v in t["frequency"].tolist()] == [3, None, 0, None]
    assert [None if v is pd.NA else v for v in t["length"].tolist()] == [3, None, 3, None]
    assert t["word"].isna().tolist() == [False, True, False, True] and t["word"][[0, 2]].tolist() == ["cat", "dog"]
    assert t["phones"].isna().tolist() == [False, False, False, True]
    assert t["phones"][:3].tolist() == ["k a t", "k o t", "d o g"]
    syn = ZR.gold_from_rows([{"filename": "g", "id": 1, "voice": "a", "type": "t", "subtype": "s",
                              "transcription": float("nan"), "correct": 1.0}], "syntactic", tmp_path / "s")
    assert list(syn.table.columns) == ["filename", "id", "voice", "type", "subtype", "transcription", "correct"]
    assert syn.table["transcription"].isna().tolist() == [True] and syn.table["correct"].tolist() == [1]


def test_zerospeech_gold_from_rows_errors_name_the_row(tmp_path):
    src = tmp_path / "src"
    with pytest.raises(ValueError) as err:
        ZR.gold_from_rows([], "phonetic", src)
    assert str(err.value) == "kind must be one of ('lexical', 'syntactic'), got 'phonetic'"
    cases = [(2, "voice", None, "'voice' is null"),
             (3, "id", float("nan"), "'id' is null"),
             (1, "filename", None, "'filename' is null"),
             (4, "frequency", True, "frequency is a bool (true), not text or a number"),
             (2, "voice", False, "voice is a bool (false), not text or a number"),
             (3, "correct", "2", "'correct' must be 0 or 1, got '2'")]
    for row, column, value, message in cases:
        rows = _lexical_rows()
        rows[row - 1][column] = value
        with pytest.raises(ZR.ScoreFileError) as err:
            ZR.gold_from_rows(rows, "lexical", src)
        assert str(err.value) == f"{src}:row {row}: {message}", (column, value)
        assert err.value.line == f"row {row}" and err.value.path == src
    rows = _lexical_rows()
    del rows[0]["voice"]  # a missing required key is a null cell
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.gold_from_rows(rows, "lexical", src)
    assert str(err.value) == f"{src}:row 1: 'voice' is null"
    rows = _lexical_rows()
    rows[0]["correct"] = False  # a bool correct converts: two non-words, and the first word row now lacks nothing
    assert ZR.gold_from_rows(rows, "lexical", src).table["correct"].tolist() == [0, 0, 1, 0]
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.gold_from_rows([], "lexical", src)
    assert str(err.value) == f"{src}: gold file lists no wav"


def _lex_record(i, voice, outcome, frequency, length):
    return {"id": i, "voice": voice, "correct_stem": f"w{i}{voice}", "incorrect_stem": f"n{i}{voice}",
            "correct_score": -1.0, "incorrect_score": -1.0 - (outcome - 0.5), "outcome": outcome,
            "word": f"w{i}", "non_word": f"n{i}", "frequency": frequency, "band": None, "length": length}


def test_zerospeech_lexical_from_pairs_bands_lengths_and_in_vocab_by_hand():
    """Kills ``_lexical_result`` mutants on by_length scores, in_vocab_exact (in-vocabulary ids only, NaN-free),
    Item frequency/band, and ``lexical_from_pairs`` / ``_pair_frame`` mutants (empty unpaired/missing lists,
    nullable Int64 frequency/length: a pair may carry no frequency, ``LexicalPair.frequency: int | None``)."""
    records = [_lex_record(1, "a", 1.0, 0, 3), _lex_record(1, "b", 0.0, 0, 3),  # id 1: oov, score 0.5
               _lex_record(2, "a", 1.0, 3, 3),                                  # id 2: band 1-5, score 1.0
               _lex_record(3, "a", 0.5, 50, 4),                                 # id 3: band 21-100, score 0.5
               _lex_record(4, "a", 0.0, None, None)]                            # id 4: no band, no length
    r = ZR.lexical_from_pairs(records)
    assert r.unpaired_stems == [] and r.missing_stems == []
    assert (r.n_items, r.n_pairs) == (4, 5)
    assert r.all_exact == 0.5 and r.all == 0.5  # (0.5 + 1 + 0.5 + 0) / 4
    assert r.in_vocab == 0.75 and r.in_vocab_exact == 0.75  # ids 2 and 3 only (1 is oov, 4 has no band)
    assert [(b.label, b.n, b.score) for b in r.by_frequency] == [
        ("oov", 1, 0.5), ("1-5", 1, 1.0), ("6-20", 0, None), ("21-100", 1, 0.5), (">100", 0, None)]
    assert [(b.label, b.n, b.score, b.score_rounded) for b in r.by_length] == [(3, 2, 0.75, 0.75), (4, 1, 0.5, 0.5)]
    assert r.by_length[0].std == pytest.approx(math.sqrt(((0.5 - 0.75) ** 2 + (1.0 - 0.75) ** 2) / 1), rel=1e-12)
    assert r.by_length[1].std is None
    assert [(it.key, it.correct_text, it.incorrect_text, it.n_pairs, it.score, it.frequency, it.band, it.length)
            for it in r.items] == [((1,), "w1", "n1", 2, 0.5, 0, "oov", 3), ((2,), "w2", "n2", 1, 1.0, 3, "1-5", 3),
                                   ((3,), "w3", "n3", 1, 0.5, 50, "21-100", 4),
                                   ((4,), "w4", "n4", 1, 0.0, None, None, None)]
    assert [(p.frequency, p.band, p.length) for p in r.pairs][-2:] == [(50, "21-100", 4), (None, None, None)]
    # integers stay integers (not 3.0), also beside a missing value (kills lexical_from_pairs__mutmut_9)
    assert all(type(v) is int for it in r.items[:3] for v in (it.frequency, it.length))
    assert all(type(v) is int for p in r.pairs[:4] for v in (p.frequency, p.length))


def test_zerospeech_lexical_all_oov_has_nan_in_vocab():
    """Kills ``_lexical_result__mutmut_102`` (``np.average`` over no band would raise): no in-vocabulary id gives
    NaN for both in-vocabulary numbers."""
    r = ZR.lexical_from_pairs([_lex_record(1, "a", 1.0, 0, 3), _lex_record(2, "a", 0.0, 0, 5)])
    assert math.isnan(r.in_vocab) and math.isnan(r.in_vocab_exact)
    assert r.all == 0.5 and [b.n for b in r.by_frequency] == [2, 0, 0, 0, 0]


def test_zerospeech_syntactic_from_pairs_lists_are_empty_not_none():
    """Kills ``syntactic_from_pairs__mutmut_76`` (missing_stems None) and checks mismatched positions."""
    rec = {"position": 0, "id": 1, "voice": "a", "type": "t", "subtype": "s", "correct_stem": "g",
           "incorrect_stem": "b", "correct_score": -1.0, "incorrect_score": -2.0, "outcome": 1.0, "sentence": "ok", "non_sentence": None,
           "consistent": True}
    r = ZR.syntactic_from_pairs([rec, {**rec, "position": 3, "correct_stem": "g2", "incorrect_stem": "b2",
                                       "outcome": 0.0, "consistent": False}])
    assert r.missing_stems == [] and r.mismatched_pairs == [3]
    assert (r.score, r.score_exact, r.n_items, r.n_pairs) == (0.5, 0.5, 1, 2)


def test_zerospeech_submission_writing_and_reading_errors(tmp_path):
    """Kills ``submission_text`` (the stem check's ``or``, the space test, both messages), ``write_submission``
    (``parents=True``: missing folders are created), ``read_submission`` (the file is named a "submission" when it
    cannot be opened) and ``score_files`` (the submission is checked against the gold stems) mutants."""
    for stem in ("a b", "", " "):
        with pytest.raises(ValueError) as err:
            ZR.submission_text({"ok": 1.0, stem: 1.0})
        assert str(err.value) == f"stem {stem!r} cannot be written (empty or contains a space)"
    for bad in (math.inf, math.nan):
        with pytest.raises(ValueError) as err:
            ZR.submission_text({"s1": bad})
        assert str(err.value) == f"score of 's1' is not finite: {bad!r}"
    assert ZR.submission_text({"a": -1, "b": 0.1}) == "a -1.0\nb 0.1\n"
    deep = tmp_path / "x" / "y" / "sub.txt"
    assert ZR.write_submission(deep, {"é": 2.5}) == deep
    assert deep.read_bytes() == "é 2.5\n".encode("utf-8")
    missing = tmp_path / "nope.txt"
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.read_submission(missing)
    assert str(err.value) == f"{missing}: cannot open submission: not found"
    gold = tmp_path / "gold.csv"
    gold.write_text("filename,id,voice,type,subtype,transcription,correct\n"
                    "g1,1,a,t,s,ok,1\nb1,1,a,t,s,no,0\n", encoding="utf-8")
    sub = tmp_path / "sub_extra.txt"
    sub.write_text("g1 -1.0\nb1 -2.0\nzz 0.0\n", encoding="utf-8")
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.score_files(gold, sub, "syntactic")
    assert str(err.value) == f"{sub}:3: unknown stem 'zz'"
    sub.write_text("g1 -1.0\n", encoding="utf-8")
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.score_files(gold, sub, "syntactic")
    assert str(err.value) == f"{sub}: 1 of 2 stems missing: b1"


def test_zerospeech_read_submission_hint_and_five_missing(tmp_path):
    """Kills ``read_submission`` message mutants: the folder/extension hint (only when the stem's own stem is
    expected), and ", ..." only beyond five missing stems (exactly five: none)."""
    sub = tmp_path / "s.txt"
    sub.write_text("g1.wav -1.0\n", encoding="utf-8")
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.read_submission(sub, expected_stems=["g1"])
    assert str(err.value) == f"{sub}:1: unknown stem 'g1.wav' (give the wav name without folder or extension)"
    sub.write_text("a -1.0\n", encoding="utf-8")
    expected = ["a", "b", "c", "d", "e", "f"]
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.read_submission(sub, expected_stems=expected)
    assert str(err.value) == f"{sub}: 5 of 6 stems missing: b, c, d, e, f"
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.read_submission(sub, expected_stems=[*expected, "g"])
    assert str(err.value) == f"{sub}: 6 of 7 stems missing: b, c, d, e, f, ..."


_SYN_HEADER = "filename,id,voice,type,subtype,transcription,correct"


def test_zerospeech_read_gold_file_errors_and_csv_details(tmp_path):
    """Kills ``read_gold`` / ``_parse_gold`` / ``_open_text`` mutants: each error's exact text, path and line; a
    BOM skipped (utf-8-sig); csv read with ``newline=""`` (a quoted CR LF stays in the field); blank lines (``[]``
    and a lone ``""``) skipped without stopping the file."""
    p = tmp_path / "gold.csv"

    def error(text=None, data=None, kind="syntactic"):
        if data is None:
            p.write_text(text, encoding="utf-8", newline="")
        else:
            p.write_bytes(data)
        with pytest.raises(ZR.ScoreFileError) as err:
            ZR.read_gold(p, kind)
        return err.value

    with pytest.raises(ValueError) as err:
        ZR.read_gold(p, "lex")
    assert str(err.value) == "kind must be one of ('lexical', 'syntactic'), got 'lex'"
    e = error("")
    assert (str(e), e.path, e.line) == (f"{p}: empty gold file", p, None)
    e = error("filename,id\n")
    assert (str(e), e.line) == (f"{p}:1: syntactic gold header lacks column(s) voice, type, subtype, transcription, "
                                "correct (has: filename, id)", 1)
    e = error(f"{_SYN_HEADER},id\n")
    assert (str(e), e.path, e.line) == (f"{p}:1: duplicate column names in header", p, 1)
    e = error(data=f"{_SYN_HEADER}\ng1,1,a,t,s,caf\xe9,1\n".encode("latin-1"))
    assert (str(e), e.path, e.line) == (f"{p}: not valid UTF-8 (byte 0xe9)", p, None)
    missing = tmp_path / "none.csv"
    with pytest.raises(ZR.ScoreFileError) as err:
        ZR.read_gold(missing, "syntactic")
    assert str(err.value) == f"{missing}: cannot open gold file: not found"  # the path is not repeated
    p.write_bytes(("\ufeff" + _SYN_HEADER + "\r\n" + 'g1,1,a,t,s,"two\r\nlines",1\r\n' + "\r\n" + '""\r\n'
                   + "b1,1,a,t,s,no,0\r\n").encode("utf-8"))
    gold = ZR.read_gold(p, "syntactic")
    assert gold.stems == ["g1", "b1"]
    assert gold.table["transcription"].tolist() == ["two\r\nlines", "no"]
    assert list(gold.table.columns) == _SYN_HEADER.split(",")
    assert gold.table["correct"].dtype == np.int64  # kills _gold_table__mutmut_90 (astype(None): float64)
    # an extra column named like a lexical one is not validated in a syntactic gold (kills _gold_table__mutmut_42)
    p.write_text(_SYN_HEADER + ",length\ng1,1,a,t,s,ok,1,long\nb1,1,a,t,s,no,0,\n", encoding="utf-8")
    assert ZR.read_gold(p, "syntactic").table["length"].tolist() == ["long", ""]
    # nullable Int64 even when no row has a frequency or length (non-words only; kills _gold_table__mutmut_121/123)
    p.write_text("filename,id,voice,frequency,word,phones,length,correct\nn1,1,a,,,x,,0\nn2,2,a,,,y,,0\n",
                 encoding="utf-8")
    lex = ZR.read_gold(p, "lexical").table
    assert str(lex["frequency"].dtype) == "Int64" and str(lex["length"].dtype) == "Int64"


def test_zerospeech_outcomes_compare_as_floats():
    """Kills ``outcomes__mutmut_3``/``_5``: scores given as text compare as numbers (2 < 10), not as strings."""
    got = ZR.outcomes(np.array(["2", "3", "1e1"]), np.array(["10", "3", "9"]))
    assert got.tolist() == [0.0, 0.5, 1.0]


def test_zerospeech_missing_scores_message_and_integer_scores(tmp_path):
    """Kills ``_attach_scores`` mutants: the "no score" message lists five stems joined by ", " and adds ", ..."
    only beyond five; integer scores are read as floats (``dtype=float``)."""
    rows = "".join(f"g{k},{k},a,t,s,x,1\nb{k},{k},a,t,s,y,0\n" for k in range(4))
    gold = tmp_path / "gold.csv"
    gold.write_text(_SYN_HEADER + "\n" + rows, encoding="utf-8")
    g = ZR.read_gold(gold, "syntactic")
    with pytest.raises(ValueError) as err:
        ZR.score_syntactic(g, {"g0": 1.0, "b0": 0.0, "g1": 1.0})
    assert str(err.value) == "5 of 8 gold stems have no score: b1, g2, b2, g3, b3"
    with pytest.raises(ValueError) as err:
        ZR.score_syntactic(g, {"g0": 1.0, "b0": 0.0})
    assert str(err.value) == "6 of 8 gold stems have no score: g1, b1, g2, b2, g3, ..."
    r = ZR.score_syntactic(g, {f"{c}{k}": (-1 if c == "g" else -2) for k in range(4) for c in "gb"})
    assert all(type(p.correct_score) is float and type(p.incorrect_score) is float for p in r.pairs)
    assert [p.correct_score for p in r.pairs] == [-1.0] * 4


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


def test_zerospeech_submission_is_utf8_whatever_the_locale(tmp_path):
    """``write_submission`` names its encoding: under a plain C locale (ASCII, no UTF-8 mode) a non-ASCII file stem
    is still written as UTF-8 (kills the ``encoding=None`` mutants, which only differ under such a locale)."""
    import subprocess
    import sys

    out = tmp_path / "lexical" / "dev.txt"
    code = ("import sys; from most_eval_tasks.slm.zerospeech import write_submission; "
            "write_submission(sys.argv[1], {'caf\\u00e9_1': 1.5})")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    proc = subprocess.run([sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "caf\u00e9_1".encode("utf-8") in out.read_bytes()


# ---------------------------------------------------------------------------------------------------------------
# dataset_files: output names, output paths, plain names, the symlink message


def _hashed(sample_id: str, name: str) -> str:
    """The documented prefixed form: 8 hex digits of the id's sha1 (lone surrogates passed through), '-', name."""
    import hashlib

    return hashlib.sha1(sample_id.encode("utf-8", "surrogatepass")).hexdigest()[:8] + "-" + name


def test_output_name_exact_forms():
    assert F.output_name("abc") == "abc" and F.output_name("XX") == "XX"  # safe ids stay, no suffix by default
    assert F.output_name("a/b c", ".wav") == _hashed("a/b c", "a_b_c") + ".wav"  # each odd character -> "_"
    assert F.output_name("..") == _hashed("..", "..") and F.output_name("...") == _hashed("...", "...")
    assert F.output_name("") == _hashed("", "")
    assert F.output_name("a\udc80") == _hashed("a\udc80", "a_")  # a lone surrogate still names one file
    long_id = "x" * 130
    assert F.output_name(long_id) == _hashed(long_id, "x" * 120)


def test_output_path_checks_every_part_and_the_root(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    assert F.output_path(root, "audio/t/a.wav") == root / "audio" / "t" / "a.wav"
    for relative, part in (("audio/../x.wav", ".."), ("a//b.wav", ""), ("a/b c.wav", "b c.wav")):
        with pytest.raises(ValueError) as err:
            F.output_path(root, relative)
        assert str(err.value) == f"output file {relative!r}: part {part!r} is not a plain file name"
    (root / "door").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="escapes the dataset root"):
        F.output_path(root, "door/x.wav")


def test_plain_name_message_names_what_it_checked():
    with pytest.raises(ValueError) as err:
        F.plain_name("a/b")
    assert str(err.value).startswith("id 'a/b' is not a plain file name")
    with pytest.raises(ValueError) as err:
        F.plain_name("..", "speaker")
    assert str(err.value).startswith("speaker '..' is not a plain file name")


def test_safe_path_names_a_live_symlink_out_without_calling_it_dangling(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("x")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ValueError) as err:
        F.safe_path(root, "link.txt")
    assert str(err.value) == (f"path 'link.txt' escapes the dataset root {root} "
                              f"(symlink to {(tmp_path / 'secret.txt').resolve()})")


# ---------------------------------------------------------------------------------------------------------------
# The MoST router's modality mask: the renormalised path, the scaling path and the fall-back to DeepSeek-V2's router


def _router(**overrides):
    import json as _json

    import torch

    from most_reference.model import ModalityAwareRouter, MoSTConfig

    tiny = Path(__file__).resolve().parents[1] / "reference_impl" / "configs" / "most_tiny.json"
    torch.manual_seed(0)
    router = ModalityAwareRouter(MoSTConfig.from_dict({**_json.loads(tiny.read_text()), **overrides})).eval()
    with torch.no_grad():
        router.weight.normal_(0, 1.0)  # spread scores: distinct top-k
    return router


def _expected_routing(router, hidden, marks, k, renorm, scale):
    """numpy: softmax over all 8 experts, the other modality's 4 scores zeroed (text experts 0-3, audio 4-7), the k
    largest kept, then divided by their sum (renorm) or multiplied by the scaling factor."""
    logits = hidden.reshape(-1, hidden.shape[-1]).double().numpy() @ router.weight.detach().double().numpy().T
    scores = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    if marks is not None:
        allowed = (np.arange(8)[None, :] >= 4) == (np.asarray(marks)[:, None] == 1)
        scores = scores * allowed
    order = np.argsort(-scores, axis=1)[:, :k]
    weights = np.take_along_axis(scores, order, axis=1)
    weights = weights / weights.sum(axis=1, keepdims=True) if renorm else weights * scale
    return order, weights


def _sorted_by_index(indices, weights):
    idx = indices.numpy()
    order = np.argsort(idx, axis=1)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(weights.detach().double().numpy(), order, axis=1)


def test_router_renormalised_top_k_with_the_mask():
    """norm_topk_prob=True (DeepSeek-V2's option): the k masked scores divided by their own sum, per token."""
    import torch

    router = _router(norm_topk_prob=True, num_experts_per_tok=2)
    hidden = torch.randn(5, 64, generator=torch.Generator().manual_seed(3))  # 5 tokens != k: broadcasting shows
    marks = torch.tensor([0, 1, 1, 0, 1])
    _, weights, indices = router(hidden, marks)
    want_idx, want_w = _expected_routing(router, hidden, marks.tolist(), 2, renorm=True, scale=None)
    got_idx, got_w = _sorted_by_index(indices, weights)
    order = np.argsort(want_idx, axis=1)
    assert (got_idx == np.take_along_axis(want_idx, order, axis=1)).all()
    np.testing.assert_allclose(got_w, np.take_along_axis(want_w, order, axis=1), rtol=1e-5)
    np.testing.assert_allclose(weights.detach().sum(dim=-1).numpy(), 1.0, rtol=1e-6)
    # without marks the renormalised path still runs (transformers' router would not renormalise)
    _, weights, indices = router(hidden, None)
    want_idx, want_w = _expected_routing(router, hidden, None, 2, renorm=True, scale=None)
    got_idx, got_w = _sorted_by_index(indices, weights)
    order = np.argsort(want_idx, axis=1)
    np.testing.assert_allclose(got_w, np.take_along_axis(want_w, order, axis=1), rtol=1e-5)


def test_router_one_expert_is_scaled_not_renormalised():
    """k = 1: DeepSeek-V2 renormalises only for k > 1; one expert's weight is its score times the scaling factor."""
    import torch

    router = _router(norm_topk_prob=True, num_experts_per_tok=1, routed_scaling_factor=2.5)
    hidden = torch.randn(4, 64, generator=torch.Generator().manual_seed(4))
    marks = torch.tensor([1, 0, 1, 0])
    _, weights, indices = router(hidden, marks)
    want_idx, want_w = _expected_routing(router, hidden, marks.tolist(), 1, renorm=False, scale=2.5)
    assert (indices.numpy() == want_idx).all()
    np.testing.assert_allclose(weights.detach().double().numpy(), want_w, rtol=1e-5)


def test_router_without_marks_defers_to_deepseek_for_other_top_k_methods_and_refuses_a_mask():
    """No marks and no renormalisation: DeepSeek-V2's own router (group-limited greedy included). A mask with a
    top-k method other than greedy is refused with its message."""
    import torch

    router = _router(topk_method="group_limited_greedy", n_group=2, topk_group=1)
    hidden = torch.randn(3, 64, generator=torch.Generator().manual_seed(5))
    _, _, indices = router(hidden, None)
    assert indices.shape == (3, 2)
    with pytest.raises(NotImplementedError) as err:
        router(hidden, torch.tensor([0, 1, 0]))
    assert str(err.value) == "the modality mask is implemented for greedy top-k (DeepSeek-V2-Lite's)"
