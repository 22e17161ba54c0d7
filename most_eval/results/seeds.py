"""Several seeds of one task in one results entry: the headline metrics as the mean over seeds, their spread, and
every seed's own numbers.

A task that generates (TTS, S->S and S->T answers, transcripts) and a model that samples give a different number for
each seed (``--seeds``). Its results entry then holds, for each metric of :data:`SPREAD_METRICS` it reports:

- ``<metric>``: the mean over seeds (the headline value);
- ``<metric>_std``: the sample standard deviation over seeds (n - 1 in the denominator);
- ``<metric>_seeds_ci95``: the 95 % Student-t interval of that mean, ``mean ± t(0.975, n - 1) · std / sqrt(n)``;

plus ``seeds`` (the seeds, in run order) and ``per_seed``: ``[{"seed": s, <metric>: v, ...}, ...]`` with every
numeric field of that seed's own entry (its bootstrap ``wer_ci95`` included). Counts (edit counts, reference
words) are summed over seeds, as the samples file holds every seed's records; other numbers (a judge's RTF) are
averaged; a text field is kept when every seed agrees on it. When every seed gave the same numbers the entry says
so (``seeds_identical``).
"""

from __future__ import annotations

import math
from typing import Any

from most_eval.results.fields import COUNTS, METRICS

#: the metrics whose spread over seeds is reported (std and interval), where a task reports them
SPREAD_METRICS = (*METRICS, "accuracy_in_vocab", "accuracy_exact")
#: a ran-once entry's ``seeds_identical``: the adapter declared that the seed does not change its outputs
DECLARED_IDENTICAL = "the model is deterministic for this task: every seed gives the same outputs, so it ran once"
OBSERVED_IDENTICAL = "every seed gave the same numbers"


def parse_seeds(spec: str | None, base: int = 0) -> list[int] | None:
    """``--seeds``: ``"3"`` -> ``[base, base + 1, base + 2]`` (``base`` = ``--seed``); ``"0,1,7"`` -> those seeds;
    None -> None (one run at ``--seed``). ValueError (one line) for anything else or a repeated seed."""
    if spec is None:
        return None
    text = str(spec).strip()
    parts = [p.strip() for p in text.split(",")]
    if not text or not all(p.isdigit() for p in parts):
        raise ValueError(f"--seeds {spec!r}: give a count (3) or seeds separated by commas (0,1,2), whole numbers "
                         f">= 0")
    if len(parts) == 1:
        count = int(parts[0])
        if count < 1:
            raise ValueError(f"--seeds {spec!r}: the count must be at least 1")
        return list(range(base, base + count))
    seeds = [int(p) for p in parts]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {spec!r}: a seed is given twice")
    return seeds


def t_quantile_975(dof: int) -> float:
    """The 0.975 quantile of Student's t with ``dof`` degrees of freedom (scipy's)."""
    from scipy import stats

    return float(stats.t.ppf(0.975, dof))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def spread(values: list[float]) -> tuple[float, float, tuple[float, float]]:
    """(mean, sample std, 95 % t interval of the mean) of two or more values."""
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return mean, std, (mean - half, mean + half)


def combine_seed_metrics(per_seed: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """One task's metrics over two or more seeds (module docstring): ``per_seed`` is ``(seed, metrics)`` per seed,
    in run order, each ``metrics`` the task's own aggregate of that seed."""
    if len(per_seed) < 2:
        raise ValueError("combine_seed_metrics needs two or more seeds")
    entries = [m for _, m in per_seed]
    names = [k for k in entries[0] if all(k in e for e in entries)]
    out: dict[str, Any] = {}
    for name in names:
        values = [e[name] for e in entries]
        if all(_number(v) for v in values):
            if name in COUNTS:
                out[name] = int(sum(values))
            elif name in SPREAD_METRICS:
                mean, std, (lo, hi) = spread([float(v) for v in values])
                out[name] = round(mean, 6)
                out[f"{name}_std"] = round(std, 6)
                out[f"{name}_seeds_ci95"] = [round(lo, 6), round(hi, 6)]
            else:
                out[name] = round(math.fsum(values) / len(values), 6)
        elif all(isinstance(v, (str, bool)) for v in values) and all(v == values[0] for v in values):
            out[name] = values[0]
    out["seeds"] = [s for s, _ in per_seed]
    out["per_seed"] = [{"seed": s, **{k: v for k, v in m.items() if _number(v) or isinstance(v, list)}}
                       for s, m in per_seed]
    headline = [k for k in SPREAD_METRICS if k in out]
    if headline and all(out[f"{k}_std"] == 0 for k in headline):
        out["seeds_identical"] = OBSERVED_IDENTICAL
    return out
