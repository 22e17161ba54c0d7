"""The percentile bootstrap: the one resampling loop behind every interval the harness reports.

A resample draws ``n`` units (utterances, items, paired samples) with replacement: one row of indices
``rng.integers(0, n, size=(B, n))`` from a numpy Generator per resample. The statistic is evaluated on a block of
rows at once (vectorised over the first axis); the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2``
quantiles of the resampled statistics (numpy's default linear interpolation; resamples whose statistic is NaN, such as
a WER over no reference words, are left out).

Two users, one loop:

* :func:`most_eval.scoring.wer.bootstrap_ci` -- the single-run CI of a WER (``statistic`` = the WER of the resampled
  utterances, ``rng`` seeded with the run's seed);
* :func:`most_eval.report.comparison.paired_bootstrap` -- the paired delta of two runs (``statistic`` = ``stat(B) -
  stat(A)`` on the *same* resampled indices, ``rng`` seeded per task).

Blocks only cap memory (:data:`MAX_INDICES_PER_BLOCK`): consecutive draws from one Generator equal a single larger
draw, so the numbers do not depend on the block size.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

MAX_INDICES_PER_BLOCK = 1 << 22  # resample indices held at once (32 MiB of int64)
#: the most resamples an interval may ask for: 100x the default 1,000, already far past where a 95 % interval's
#: Monte Carlo error stops mattering; more only costs time (a typo such as 10**12 would run for days)
MAX_RESAMPLES = 100_000


def check_resamples(resamples: int, what: str = "bootstrap") -> int:
    """``resamples`` when it is a whole number in [0, :data:`MAX_RESAMPLES`]; ValueError naming ``what`` otherwise."""
    if isinstance(resamples, bool) or not isinstance(resamples, int) or not 0 <= resamples <= MAX_RESAMPLES:
        raise ValueError(f"{what} must be 0 to {MAX_RESAMPLES:,} resamples, got {resamples}")
    return resamples


def resample(statistic: Callable[[np.ndarray], np.ndarray], n: int, resamples: int,
             rng: np.random.Generator) -> np.ndarray:
    """The bootstrap distribution, shape ``(resamples,)``: ``statistic(idx)`` for index matrices ``idx`` of shape
    ``(block, n)`` (each row one resample of ``n`` positions drawn with replacement), concatenated in draw order.

    ``statistic`` maps ``(block, n)`` indices to ``(block,)`` values. ``n`` must be at least 1."""
    out = np.empty(resamples, dtype=np.float64)
    block = max(1, min(resamples, MAX_INDICES_PER_BLOCK // max(n, 1)))
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        idx = rng.integers(0, n, size=(size, n))  # (size, n) resampled positions
        out[start:start + size] = statistic(idx)
    return out


def percentile_interval(distribution: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of a bootstrap distribution, NaN values left out; ``(nan, nan)`` when
    nothing is left (no resamples, or every resampled statistic undefined)."""
    values = np.asarray(distribution, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return (float(lo), float(hi))
