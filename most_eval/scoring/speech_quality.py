"""Speech-quality numbers of generated speech (DNSMOS) in sample records and results: the field names, per-sample
values, their means, and the comparability reason every one of them carries. The scorer itself is a helper model
(:mod:`most_eval.models.speech_quality`) that the runner lends a task through ``TaskContext.mos``."""

from __future__ import annotations

import math
from typing import Sequence

#: DNSMOS P.835 overall / signal / background and P.808, each on the 1-5 MOS scale (higher is better)
MOS_FIELDS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")
#: why no DNSMOS number stands beside the paper's (it reports WER and SIM only)
NOT_IN_PAPER = "DNSMOS is not a number of the MoST paper (its speech tables are WER and SIM)"


def add_mos(records: Sequence[dict], scores: Sequence[dict[str, float]]) -> None:
    """Write each clip's DNSMOS numbers (6 decimals) into its record; a non-finite value is left out of it."""
    for record, score in zip(records, scores):
        for name in MOS_FIELDS:
            value = score.get(name)
            if value is not None and math.isfinite(value):
                record[name] = round(float(value), 6)


def mean_mos(items: Sequence[dict]) -> dict[str, float]:
    """Each DNSMOS field's mean over the records that carry it (3 decimals); fields no record has are left out."""
    means = {}
    for name in MOS_FIELDS:
        values = [r[name] for r in items if isinstance(r.get(name), (int, float))]
        if values:
            means[name] = round(sum(values) / len(values), 3)
    return means


def mos_differences() -> dict[str, list[str]]:
    """The comparability verdict of every DNSMOS field: not a paper number."""
    return {name: [NOT_IN_PAPER] for name in MOS_FIELDS}


#: what the ``mos`` task option takes
MOS_CHOICES = ("dnsmos", "none")


def check_mos(spec: str) -> None:
    """ValueError for a ``mos`` option this version cannot score (UTMOS is not built)."""
    if spec not in MOS_CHOICES:
        raise ValueError(f"unknown mos {spec!r}; use dnsmos or none")
