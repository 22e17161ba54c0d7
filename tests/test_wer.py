"""WER equals an independent word-level Levenshtein count, under both protocols and on awkward text."""

from __future__ import annotations

import random

import numpy as np
import pytest

from most_eval.scoring.wer import (aggregate_wer, edit_counts, seed_tts_normalize, utterance_wer, wer_records,
                                   whisper_normalize)


def levenshtein(ref: list[str], hyp: list[str]) -> int:
    """Minimum word edits turning ref into hyp (textbook dynamic programme, written independently of jiwer)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


HAND_MADE = [
    ("", ""), ("", "hello there"), ("hello there", ""), ("HELLO, World!", "hello world"),
    ("He's twenty-one years old.", "he is 21 years old"), ("I can't go", "i cannot go"),
    ("Mr. Smith paid $5.", "mister smith paid five dollars"), ("colour", "color"), ("the the the", "the"),
    ("a b c d", "d c b a"), ("It's 3 o'clock", "its three oclock"), ("  spaced   out  ", "spaced out"),
    ("UPPER lower MiXeD", "upper lower mixed"), ("1,000 people", "one thousand people"),
]


def _random_pairs(n: int, seed: int = 0):
    rng = random.Random(seed)
    vocab = "the a cat dog sat on mat he she it's twenty 21 one 1 mr. mister, colour color ok! why?".split()
    for _ in range(n):
        ref = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 12)))
        hyp = " ".join(w for w in ref.split() if rng.random() > 0.2)
        hyp = " ".join(rng.choice(vocab) if rng.random() < 0.2 else w for w in hyp.split())
        if rng.random() < 0.3:
            hyp += " " + rng.choice(vocab)
        yield ref, hyp


@pytest.mark.parametrize("protocol,norm", [("whisper", whisper_normalize), ("seed-tts-eval", seed_tts_normalize)])
def test_wer_matches_independent_levenshtein(protocol, norm):
    pairs = HAND_MADE + list(_random_pairs(300))
    records = wer_records([str(i) for i in range(len(pairs))], [r for r, _ in pairs], [h for _, h in pairs],
                          protocol)
    total_edits = total_words = 0
    per_utt, utt_edits, utt_words = [], [], []
    for (ref, hyp), rec in zip(pairs, records):
        r, h = norm(ref).split(), norm(hyp).split()
        edits = levenshtein(r, h)
        assert rec["errors"] == edits, (ref, hyp)
        assert rec["ref_words"] == len(r)
        assert rec["substitutions"] + rec["deletions"] <= len(r) and rec["insertions"] >= len(h) - len(r)
        total_edits += edits
        total_words += len(r)
        utt_edits.append(edits)
        utt_words.append(len(r))
        per_utt.append(0.0 if not r and not h else 100.0 if not r else 100.0 * edits / len(r))
    metrics = aggregate_wer(records, protocol, resamples=200)
    if protocol == "whisper":
        assert metrics["wer"] == round(100.0 * total_edits / total_words, 4)
    else:
        assert metrics["wer"] == round(float(np.mean(per_utt)), 3)
    # the 95 % interval, recomputed independently: 200 resamples of utterance indices drawn by numpy's default_rng
    # with aggregate_wer's default seed 0, the protocol's statistic per resample, np.percentile
    draws = np.random.default_rng(0).integers(0, len(pairs), size=(200, len(pairs)))
    if protocol == "whisper":  # corpus WER of the resampled utterances
        stats = 100.0 * np.array(utt_edits)[draws].sum(axis=1) / np.array(utt_words)[draws].sum(axis=1)
    else:  # the mean of their per-utterance WERs
        stats = np.array(per_utt)[draws].mean(axis=1)
    want = [float(v) for v in np.percentile(stats, [2.5, 97.5])]
    assert metrics["wer_ci95"] == pytest.approx(want, abs=1e-4)  # aggregate_wer rounds to 4 decimals
    assert want[0] < want[1]  # a real interval, not a point


def test_zero_resamples_reports_no_interval():
    """``bootstrap=0`` (the tasks' option) means no interval: the key is left out rather than scoring failing."""
    records = wer_records(["a", "b"], ["the cat sat", "a dog"], ["the cat", "a dog"])
    metrics = aggregate_wer(records, resamples=0)
    assert "wer_ci95" not in metrics and metrics["wer"] == 20.0
    assert "wer_ci95" in aggregate_wer(records, resamples=10)


def test_empty_sides_are_documented_counts():
    empty_ref, empty_hyp, both = edit_counts(["", "a b", ""], ["x y", "", ""])
    assert (empty_ref.insertions, empty_ref.ref_words) == (2, 0)
    assert (empty_hyp.deletions, empty_hyp.ref_words) == (2, 2)
    assert both.errors == 0 and utterance_wer(both) == 0.0 and utterance_wer(empty_ref) == 100.0


def test_normalisers_behave_as_their_protocols_say():
    assert whisper_normalize("He's Mr. Smith's colour, 21!") == "he is mister smith is color 21"
    assert seed_tts_normalize("He's  Mr. Smith, OK!") == "he's mr smith ok"
