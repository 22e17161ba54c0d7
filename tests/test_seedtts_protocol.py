"""The ``seed-tts-eval`` WER protocol equals Seed-TTS-eval's own scoring, re-stated here from its source.

Re-statement of seed-tts-eval ``run_wer.py`` (``process_one``, ``lang == "en"``) and ``average_wer.py``, written
without our code: loop over ``zhon.hanzi.punctuation + string.punctuation`` skipping the ASCII apostrophe, replace
``"  "`` once, lower-case, then jiwer's ``compute_measures(truth, hypo)["wer"]`` (its default transform: whitespace
runs -> one space, strip, split on " "; jiwer 4 dropped ``compute_measures``, so the count is a textbook Levenshtein
here and ``jiwer.wer`` as a second opinion), and finally ``round(np.mean(wers) * 100, 3)``.
"""

from __future__ import annotations

import random
import re
import string

import jiwer
import numpy as np
import pytest
from zhon.hanzi import punctuation

from most_eval.scoring.wer import SEED_TTS_PUNCTUATION, aggregate_wer, seed_tts_normalize, wer_records


def run_wer_process_one(hypo: str, truth: str) -> float:
    """seed-tts-eval's per-utterance WER (a fraction), step by step as its ``process_one`` does it."""
    punctuation_all = punctuation + string.punctuation
    for x in punctuation_all:
        if x == "'":
            continue
        truth = truth.replace(x, "")
        hypo = hypo.replace(x, "")
    truth = truth.replace("  ", " ")
    hypo = hypo.replace("  ", " ")
    truth = truth.lower()
    hypo = hypo.lower()
    ref, hyp = _jiwer_default_words(truth), _jiwer_default_words(hypo)
    edits = _levenshtein(ref, hyp)
    assert edits / len(ref) == pytest.approx(jiwer.wer(truth, hypo), abs=1e-12)  # jiwer agrees
    return edits / len(ref)


def _jiwer_default_words(s: str) -> list[str]:
    """jiwer's ``wer_default``: RemoveMultipleSpaces (``\\s\\s+`` -> " "), Strip, ReduceToListOfListOfWords."""
    return [w for w in re.sub(r"\s\s+", " ", s).strip().split(" ") if len(w) >= 1]


def _levenshtein(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def average_wer(wers: list[float]) -> float:
    """average_wer.py's headline number."""
    return round(np.mean(wers) * 100, 3)


# (reference text as in meta.lst, Whisper-style transcript)
HAND = [
    ("「Hello」、world。", "Hello world."),  # CJK brackets and marks vanish without leaving a space
    ("He said “yes”—then left…", " He said yes, then left..."),  # em dash glues "yes" and "then" together
    ("Don’t stop ‘now’!", "Don't stop now!"),  # typographic apostrophe is deleted, the ASCII one kept
    ("Wow！Really，yes", "Wow! Really, yes."),  # full-width marks glue words too
    ("A　B C", "a b c"),  # U+3000 ideographic space is in zhon's punctuation set
    ("twenty-one , , years", "twenty one years"),  # "a , , b" -> "a   b" -> one "  " pass -> jiwer collapses
    ("Ｍｒ．Ｓｍｉｔｈ＇ｓ ｄｏｇ", "Mr. Smith's dog"),  # full-width letters stay (lower-cased), ＇ and ． go
    ("It's 3 o'clock — «late» ‹or› not", "its three oclock late or not"),
    ("tab\tinside word", "tab inside word"),  # a lone tab is no word boundary for jiwer
    ("Ellipsis... and – en dash", "ellipsis and en dash"),
    ("MiXeD CaSe 〈angle〉 《book》 【tag】", "mixed case angle book tag"),
    ("same", ""),  # empty hypothesis: all deletions
    ("one two three", "one two three four five"),  # insertions: WER above 100 % is possible only here
]


def _random_cases(n: int, seed: int = 0):
    rng = random.Random(seed)
    marks = list(punctuation + string.punctuation) + [" ", "  ", "\t"]
    words = "the cat sat on a mat don't it's he she 21 mr ok why".split()

    def text():
        out = []
        for _ in range(rng.randint(1, 10)):
            out.append(rng.choice(words).upper() if rng.random() < 0.2 else rng.choice(words))
            out.append(rng.choice(marks) if rng.random() < 0.4 else " ")
        return "".join(out)

    for _ in range(n):
        ref = text()
        if not _jiwer_default_words(seed_tts_normalize(ref)):
            continue  # seed-tts-eval cannot score an empty reference (jiwer raises)
        yield ref, text() if rng.random() < 0.5 else ref.replace(rng.choice(words), rng.choice(words))


def test_punctuation_set_is_zhon_plus_ascii_minus_apostrophe():
    assert set(SEED_TTS_PUNCTUATION) == set(punctuation + string.punctuation) - {"'"}
    for mark in "「」、。！，“”‘’—…　＇－":
        assert mark in SEED_TTS_PUNCTUATION


@pytest.mark.parametrize("truth,hypo", HAND)
def test_hand_cases_equal_run_wer(truth, hypo):
    (rec,) = wer_records(["u"], [truth], [hypo], "seed-tts-eval")
    expected = run_wer_process_one(hypo, truth)
    assert rec["errors"] / rec["ref_words"] == expected
    assert aggregate_wer([rec], "seed-tts-eval", resamples=10)["wer"] == average_wer([expected])


def test_normalised_text_is_what_run_wer_scores():
    assert seed_tts_normalize("「Hello」、world。") == "helloworld"
    assert seed_tts_normalize("He said “yes”—then left…") == "he said yesthen left"
    assert seed_tts_normalize("Don’t stop ‘now’!") == "dont stop now"
    assert seed_tts_normalize(" He's  Mr. Smith, OK! ") == "he's mr smith ok"
    assert seed_tts_normalize("A　B") == "ab"


def test_corpus_score_equals_average_wer_over_hand_and_random_cases():
    cases = [c for c in HAND] + list(_random_cases(400))
    records = wer_records([str(i) for i in range(len(cases))], [t for t, _ in cases], [h for _, h in cases],
                          "seed-tts-eval")
    wers = [run_wer_process_one(h, t) for t, h in cases]
    assert [r["errors"] / r["ref_words"] for r in records] == wers
    metrics = aggregate_wer(records, "seed-tts-eval", resamples=50)
    assert metrics["wer"] == average_wer(wers)
    assert metrics["wer_protocol"] == "seed-tts-eval"


def test_mean_is_taken_over_fractions_as_average_wer_does():
    # 1/3 + 2/3 ...: the protocol multiplies the mean fraction by 100, and rounds once, at 3 decimals
    records = wer_records(["a", "b", "c"], ["a b c", "a b c", "a b c d e f g"], ["a b x", "x y c", "a"],
                          "seed-tts-eval")
    fractions = [1 / 3, 2 / 3, 6 / 7]
    assert aggregate_wer(records, "seed-tts-eval", resamples=10)["wer"] == round(np.mean(fractions) * 100, 3)
