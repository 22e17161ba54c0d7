"""Word error rate as the field computes it: normalise both sides, align with jiwer, sum edits over the corpus.

Two named protocols:

* ``whisper`` (default; UltraEval-Audio, Kimi-Audio-Evalkit): Whisper's English normaliser on reference and
  hypothesis, corpus WER = (S + D + I) / N summed over utterances, in percent.
* ``seed-tts-eval``: Seed-TTS-eval's ``run_wer.py`` (``process_one``, English branch) and ``average_wer.py``: every
  character of ``zhon.hanzi.punctuation + string.punctuation`` except the ASCII apostrophe deleted (CJK and
  typographic marks too: 「」、。！，“ ” ‘ ’ — …, the ideographic space U+3000), then one pass of ``"  " -> " "``, then
  lower-casing; words are what jiwer's default transform makes of that (runs of 2+ whitespace -> one space, strip,
  split on " "); each utterance's WER = (S + D + I) / N as jiwer counts it; the score is ``round(mean(wers) * 100, 3)``
  — the *mean of per-utterance WERs*, not corpus WER.

Edge cases (documented because peers differ): an empty reference contributes 0 reference words and one insertion per
hypothesis word (its own WER is 0 when the hypothesis is empty too, else 100 % in the per-utterance mean); an empty
hypothesis is all deletions. (Seed-TTS-eval itself cannot score an empty reference: jiwer raises on it and the run
stops; an empty hypothesis is all deletions there too.)
"""

from __future__ import annotations

import importlib.util
import re
import string
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import jiwer
import numpy as np
from zhon.hanzi import punctuation as zhon_punctuation

from most_eval.scoring.bootstrap import percentile_interval, resample


@lru_cache(maxsize=1)
def _english_normalizer():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


@lru_cache(maxsize=65536)
def whisper_normalize(text: str) -> str:
    """Whisper's English text normaliser (``whisper_normalizer.english.EnglishTextNormalizer``), memoised."""
    return _english_normalizer()(text)


@lru_cache(maxsize=1)
def _openai_whisper_normalizer():
    """openai-whisper's own ``EnglishTextNormalizer`` (the Open ASR Leaderboard's), read from the installed package's
    ``whisper/normalizers/`` without importing ``whisper`` itself, whose package import loads torch, numba and
    tiktoken. ValueError when the package is not installed."""
    spec = importlib.util.find_spec("whisper")  # a top-level package: found, not imported
    folder = Path(spec.submodule_search_locations[0]) / "normalizers" if spec and spec.submodule_search_locations \
        else None
    if folder is None or not (folder / "english.py").is_file():
        raise ValueError("normalizer=openai-whisper needs the openai-whisper package "
                         "(pip install --no-deps openai-whisper: only its normaliser files are read)")
    name = "_most_eval_openai_whisper_normalizers"
    if name not in sys.modules:
        package = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                         submodule_search_locations=[str(folder)])
        module = importlib.util.module_from_spec(package)
        sys.modules[name] = module
        package.loader.exec_module(module)
    return sys.modules[name].EnglishTextNormalizer()


@lru_cache(maxsize=65536)
def openai_whisper_normalize(text: str) -> str:
    """openai-whisper's English text normaliser, memoised. It differs from whisper-normalizer's copy by four rules
    that only whisper-normalizer has: "kinda" -> "kind of", "sorta" -> "sort of", "dunno" -> "do not know" and
    "cause" -> "because" (so "'cause" stays "cause" here)."""
    return _openai_whisper_normalizer()(text)


#: the implementations of Whisper's English normaliser a ``whisper``-protocol WER can use
WHISPER_NORMALIZERS = {"whisper-normalizer": whisper_normalize, "openai-whisper": openai_whisper_normalize}


# run_wer.py: ``punctuation_all = zhon.hanzi.punctuation + string.punctuation``; it skips only the ASCII apostrophe
# (the typographic ’ and the full-width ＇ are in zhon's set, so they are deleted: "don’t" -> "dont").
SEED_TTS_PUNCTUATION = "".join(c for c in dict.fromkeys(zhon_punctuation + string.punctuation) if c != "'")
_DELETE_SEED_TTS_PUNCTUATION = str.maketrans("", "", SEED_TTS_PUNCTUATION)
_WHITESPACE_RUN = re.compile(r"\s\s+")  # jiwer's RemoveMultipleSpaces


def seed_tts_normalize(text: str) -> str:
    """Seed-TTS-eval's English normalisation, returned in the form jiwer scores (words = ``.split(" ")``).

    ``process_one``: delete each punctuation character (deleting single characters commutes, so one ``translate``
    equals its loop), replace ``"  "`` by ``" "`` once, lower-case; then jiwer's default transform, which its
    ``compute_measures`` applies: whitespace runs -> one space, strip. A lone tab or no-break space between two words
    therefore stays inside one "word", as it does there.
    """
    text = text.translate(_DELETE_SEED_TTS_PUNCTUATION)
    text = text.replace("  ", " ")
    text = text.lower()
    return _WHITESPACE_RUN.sub(" ", text).strip()


NORMALIZERS = {"whisper": whisper_normalize, "seed-tts-eval": seed_tts_normalize, "none": lambda t: t.strip()}
#: what each protocol's normalisation is, and the package (with its installed version) that defines it
NORMALIZER_SOURCES = {"whisper": ("whisper-normalizer", "EnglishTextNormalizer"),
                      "openai-whisper": ("openai-whisper", "EnglishTextNormalizer"),
                      "seed-tts-eval": ("zhon", "seed-tts-eval run_wer.py punctuation (zhon.hanzi + ASCII)"),
                      "none": (None, "none (whitespace stripped)")}


def normalizer(protocol: str, implementation: str = "whisper-normalizer"):
    """The text normaliser of a protocol (``implementation`` picks whose copy of Whisper's, for ``whisper``)."""
    return WHISPER_NORMALIZERS[implementation] if protocol == "whisper" else NORMALIZERS[protocol]


@lru_cache(maxsize=None)
def normalizer_label(protocol: str, implementation: str = "whisper-normalizer") -> str:
    """The normaliser a WER was computed after, with its package and version, e.g.
    ``whisper-normalizer 0.1.15: EnglishTextNormalizer``: an upgrade that changes a transcript's normal form is then
    visible in every result."""
    from importlib.metadata import PackageNotFoundError, version

    package, what = NORMALIZER_SOURCES["openai-whisper" if protocol == "whisper" and implementation == "openai-whisper"
                                       else protocol]
    if package is None:
        return what
    try:
        return f"{package} {version(package)}: {what}"
    except PackageNotFoundError:
        return f"{package} (version unknown): {what}"


@dataclass(frozen=True)
class EditCounts:
    """Word-level edit counts of one utterance (or a corpus)."""

    substitutions: int
    deletions: int
    insertions: int
    ref_words: int

    @property
    def errors(self) -> int:
        """S + D + I."""
        return self.substitutions + self.deletions + self.insertions


def _jiwer_words(text: str) -> list[str]:
    """The words jiwer's default transform makes of a text (whitespace runs -> " ", strip, split on " ")."""
    return [w for w in _WHITESPACE_RUN.sub(" ", text).strip().split(" ") if w]


def edit_counts(refs: Sequence[str], hyps: Sequence[str]) -> list[EditCounts]:
    """Per-utterance counts for already-normalised texts (jiwer alignment; empty sides handled here)."""
    out: list[EditCounts | None] = [None] * len(refs)
    idx = []
    for i, (r, h) in enumerate(zip(refs, hyps)):
        rw, hw = _jiwer_words(r), _jiwer_words(h)
        if not rw:
            out[i] = EditCounts(0, 0, len(hw), 0)
        elif not hw:
            out[i] = EditCounts(0, len(rw), 0, len(rw))
        else:
            idx.append(i)
    if idx:
        result = jiwer.process_words([refs[i] for i in idx], [hyps[i] for i in idx])
        for i, chunks, ref in zip(idx, result.alignments, result.references):
            s = d = ins = 0
            for c in chunks:
                if c.type == "substitute":
                    s += c.ref_end_idx - c.ref_start_idx
                elif c.type == "delete":
                    d += c.ref_end_idx - c.ref_start_idx
                elif c.type == "insert":
                    ins += c.hyp_end_idx - c.hyp_start_idx
            out[i] = EditCounts(s, d, ins, len(ref))
    return out  # type: ignore[return-value]


def corpus_wer(counts: Sequence[EditCounts]) -> float:
    """Summed edits / summed reference words, in percent (nan when there are no reference words)."""
    n = sum(c.ref_words for c in counts)
    return 100.0 * sum(c.errors for c in counts) / n if n else float("nan")


def utterance_wer(c: EditCounts) -> float:
    """One utterance's WER in percent (empty reference: 0 if the hypothesis is empty too, else 100)."""
    if c.ref_words == 0:
        return 0.0 if c.insertions == 0 else 100.0
    return 100.0 * c.errors / c.ref_words


def bootstrap_ci(errors: np.ndarray, ref_words: np.ndarray, *, resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of corpus WER (utterances resampled with replacement, ``numpy.random.default_rng(seed)``;
    :mod:`most_eval.scoring.bootstrap`), in percent, rounded to 4 decimals; ``(nan, nan)`` for no utterances or no
    resamples."""
    n = len(errors)
    if n == 0 or resamples < 1:
        return (float("nan"), float("nan"))
    errors, ref_words = np.asarray(errors), np.asarray(ref_words)

    def corpus_wers(idx: np.ndarray) -> np.ndarray:  # idx (B, n) -> (B,); a resample without words is NaN
        with np.errstate(divide="ignore", invalid="ignore"):
            return 100.0 * errors[idx].sum(axis=1) / ref_words[idx].sum(axis=1)

    lo, hi = percentile_interval(resample(corpus_wers, n, resamples, np.random.default_rng(seed)), level)
    return (round(lo, 4), round(hi, 4))


def wer_records(ids: Sequence[str], refs: Sequence[str], hyps: Sequence[str], protocol: str = "whisper",
                implementation: str = "whisper-normalizer") -> list[dict]:
    """Per-utterance records (normalised texts and S/D/I/N) under the named protocol (``implementation``: whose copy
    of Whisper's normaliser, for ``whisper``)."""
    norm = normalizer(protocol, implementation)
    nrefs = [norm(r) for r in refs]
    nhyps = [norm(h) for h in hyps]
    records = []
    for i, c, r, h, raw in zip(ids, edit_counts(nrefs, nhyps), nrefs, nhyps, hyps):
        records.append({"id": i, "hyp_raw": raw, "ref": r, "hyp": h, "substitutions": c.substitutions,
                        "deletions": c.deletions, "insertions": c.insertions, "ref_words": c.ref_words,
                        "errors": c.errors})
    return records


def aggregate_wer(items: Sequence[dict], protocol: str = "whisper", *, resamples: int = 1000, seed: int = 0,
                  implementation: str = "whisper-normalizer") -> dict:
    """Metrics from per-utterance records: ``wer`` (percent), its 95 % bootstrap CI (left out for ``resamples=0``),
    and the edit totals."""
    counts = [EditCounts(r["substitutions"], r["deletions"], r["insertions"], r["ref_words"]) for r in items]
    errors = np.array([c.errors for c in counts], dtype=np.int64)
    words = np.array([c.ref_words for c in counts], dtype=np.int64)
    if protocol == "seed-tts-eval":  # mean of per-utterance WERs: its CI resamples that mean
        per_utt = np.array([utterance_wer(c) for c in counts], dtype=float)
        # average_wer.py: round(np.mean(wers) * 100, 3) over jiwer's fractions, rounded as a numpy float (np.round:
        # rint(x * 1000) / 1000, not Python's exact-decimal round); the same operations here, to its last digit
        fractions = [utterance_wer(c) / 100.0 if c.ref_words == 0 else c.errors / c.ref_words for c in counts]
        wer = float(np.round(np.mean(fractions) * 100, 3)) if counts else float("nan")
        # 100 "reference words" per utterance turns the resampled ratio into the resampled mean
        ci = bootstrap_ci(per_utt, np.full_like(per_utt, 100.0), resamples=resamples, seed=seed)
    else:
        wer = round(corpus_wer(counts), 4)
        ci = bootstrap_ci(errors, words, resamples=resamples, seed=seed)
    return {"wer": wer, **({"wer_ci95": list(ci)} if resamples > 0 else {}),  # bootstrap=0: no interval
            "wer_protocol": protocol, "normalizer": normalizer_label(protocol, implementation), "substitutions": int(sum(c.substitutions for c in counts)),
            "deletions": int(sum(c.deletions for c in counts)), "insertions": int(sum(c.insertions for c in counts)),
            "ref_words": int(words.sum())}
