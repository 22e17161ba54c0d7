"""Spoken StoryCloze scoring (sStoryCloze, tStoryCloze): is the true ending more likely than the false one?

Protocol (TWIST paper; data slp-rl/SpokenStoryCloze; reference scorer slp-rl/slamkit
``slamkit/metric/modelling_metric.py``): every story is spoken twice in full, once with its true fifth sentence and
once with a false one (sStoryCloze: the original StoryCloze wrong ending; tStoryCloze: an ending from another story).
The model scores both wavs; a pair's outcome is 1 if the true version scores higher, 0.5 on an exact tie, 0 otherwise;
accuracy is the plain mean of the outcomes (1,871 pairs per set).

**Sum or mean.** slamkit compares *length-normalised* log-likelihoods by default: ``config/metric/default.yaml`` sets
``mean_nll: true`` and ``calc_nll(..., len_norm=True)`` divides the summed token log-probabilities by the number of
predicted tokens (every token after the first, padding excluded). Sum-of-log-probabilities (no normalisation) is the
other convention (it favours the shorter story). We make it an explicit option, ``reduction`` in ``REDUCTIONS``,
defaulting to slamkit's ``"mean"``, and name it in the results. The model adapter says how its ``score_audio`` values
are reduced (``Model.score_reduction``); pass that as ``scores_reduction``. When the two differ the scores are
converted with per-wav token counts (``n_tokens``) or the call fails — never silently compared in the wrong units.

Small differences from slamkit, none affecting the printed accuracy: slamkit averages in float32 on the GPU (we use
float64), a NaN score there silently counts as a wrong pair (here it is an error naming the wav), and slamkit finds
a story's two wavs by sorting the folder on the numeric prefix ``<idx>_...`` and taking the first of each two as the
true ending — an order that depends on the directory listing. The dataset reader names the true and false wav of
each pair explicitly instead (``ClozePair``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

MEAN, SUM = "mean", "sum"
REDUCTIONS = (MEAN, SUM)
DEFAULT_REDUCTION = MEAN  # slamkit's default (mean_nll: true)


@dataclass(frozen=True)
class ClozePair:
    """One story: the wav with its true ending and the wav with the false one (stems, as keys of the scores)."""

    id: str  # story index
    true_stem: str
    false_stem: str


@dataclass(frozen=True)
class ClozePairResult:
    id: str
    true_stem: str
    false_stem: str
    true_score: float  # log-likelihood, reduced as ClozeResult.reduction says
    false_score: float
    outcome: float  # 1.0 true ending scored higher, 0.5 tie, 0.0 otherwise

    def to_record(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ClozeResult:
    accuracy: float  # plain mean of the outcomes, a fraction in [0, 1]
    n_pairs: int
    reduction: str  # "mean" (per-token) or "sum" log-likelihood: what was compared
    pairs: list[ClozePairResult]
    missing_stems: list[str]  # stems without a score (allow_missing=True only); their pairs are not counted

    def summary(self) -> dict:
        return {"accuracy": self.accuracy, "n_pairs": self.n_pairs, "reduction": self.reduction,
                "missing": len(self.missing_stems)}


def pair_outcome(true_score: float, false_score: float) -> float:
    """1.0 if the true ending scores higher, 0.5 if equal, 0.0 otherwise."""
    return 1.0 if true_score > false_score else 0.5 if true_score == false_score else 0.0


def accuracy(outcomes: list[float]) -> float:
    """Plain mean of pair outcomes (a fraction in [0, 1]), summed exactly (``math.fsum``)."""
    if not outcomes:
        raise ValueError("no scorable StoryCloze pair")
    return math.fsum(outcomes) / len(outcomes)


def reduce_log_likelihood(total: float, n_tokens: int, reduction: str) -> float:
    """A wav's score from its summed token log-probabilities: the sum itself, or the per-token mean."""
    _check(reduction)
    if reduction == SUM:
        return float(total)
    if n_tokens <= 0:
        raise ValueError(f"per-token mean needs a positive token count, got {n_tokens}")
    return float(total) / n_tokens


def convert_scores(scores: Mapping[str, float], *, from_reduction: str, to_reduction: str,
                   n_tokens: Mapping[str, int] | None = None) -> dict[str, float]:
    """Scores reduced one way, re-expressed the other way with per-wav token counts (identity when equal)."""
    _check(from_reduction), _check(to_reduction)
    if from_reduction == to_reduction:
        return dict(scores)
    if n_tokens is None:
        raise ValueError(f"scores are {from_reduction}-reduced log-likelihoods but {to_reduction!r} was asked for: "
                         "converting needs each wav's token count (n_tokens), or set the task's reduction to "
                         f"{from_reduction!r}")
    out = {}
    for stem, value in scores.items():
        if stem not in n_tokens or n_tokens[stem] <= 0:
            raise ValueError(f"no positive token count for {stem!r}")
        out[stem] = value / n_tokens[stem] if to_reduction == MEAN else value * n_tokens[stem]
    return out


def score_storycloze(pairs: Iterable[ClozePair], scores: Mapping[str, float], *,
                     reduction: str = DEFAULT_REDUCTION, scores_reduction: str | None = None,
                     n_tokens: Mapping[str, int] | None = None, allow_missing: bool = False) -> ClozeResult:
    """Accuracy over (true, false) story pairs.

    ``scores``: natural-log likelihood per stem, reduced as ``scores_reduction`` says (default: as ``reduction``);
    converted to ``reduction`` with ``n_tokens`` when they differ. A missing or non-finite score is an error, unless
    ``allow_missing`` (then the pair is left out and its stems listed in ``missing_stems``).
    """
    _check(reduction)
    scores = convert_scores(scores, from_reduction=scores_reduction or reduction, to_reduction=reduction,
                            n_tokens=n_tokens)
    results, missing, bad = [], [], []
    for pair in pairs:
        values = []
        for stem in (pair.true_stem, pair.false_stem):
            value = scores.get(stem)
            if value is None:
                missing.append(stem)
            elif not math.isfinite(value):
                bad.append(stem)
            values.append(value)
        if any(v is None for v in values) or any(v is not None and not math.isfinite(v) for v in values):
            continue
        results.append(ClozePairResult(id=pair.id, true_stem=pair.true_stem, false_stem=pair.false_stem,
                                       true_score=float(values[0]), false_score=float(values[1]),
                                       outcome=pair_outcome(values[0], values[1])))
    if bad:
        raise ValueError(f"{len(bad)} non-finite score(s): {', '.join(bad[:5])}")
    if missing and not allow_missing:
        raise ValueError(f"{len(missing)} stem(s) have no score: {', '.join(missing[:5])}"
                         + (", ..." if len(missing) > 5 else ""))
    if not results:
        raise ValueError("no scorable StoryCloze pair")
    return ClozeResult(accuracy=accuracy([r.outcome for r in results]), n_pairs=len(results), reduction=reduction,
                       pairs=results, missing_stems=missing)


def _check(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
