"""Speech-quality numbers of generated speech (DNSMOS, UTMOS) in sample records and results: the field names,
per-sample values, their means, the ``mos`` task option and the comparability reason every one of them carries. The
scorers themselves are helper models (:mod:`most_eval.models.speech_quality`, :mod:`most_eval.models.utmos`) that the
runner lends a task through ``TaskContext.mos``."""

from __future__ import annotations

import math
from typing import Sequence

#: DNSMOS P.835 overall / signal / background and P.808, each on the 1-5 MOS scale (higher is better)
DNSMOS_FIELDS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")
#: every speech-quality field: DNSMOS's four and UTMOS22's MOS (1-5, higher is better)
MOS_FIELDS = (*DNSMOS_FIELDS, "utmos")
#: why no speech-quality number stands beside the paper's (it reports WER and SIM only), per scorer
NOT_IN_PAPER = "{} is not a number of the MoST paper (its speech tables are WER and SIM)"


def add_mos(records: Sequence[dict], scores: Sequence[dict[str, float]]) -> None:
    """Write each clip's speech-quality numbers (6 decimals) into its record; a non-finite value is left out."""
    for record, score in zip(records, scores):
        for name in MOS_FIELDS:
            value = score.get(name)
            if value is not None and math.isfinite(value):
                record[name] = round(float(value), 6)


def mean_mos(items: Sequence[dict]) -> dict[str, float]:
    """Each speech-quality field's mean over the records that carry it (3 decimals); fields no record has are left
    out."""
    means = {}
    for name in MOS_FIELDS:
        values = [r[name] for r in items if isinstance(r.get(name), (int, float))]
        if values:
            means[name] = round(sum(values) / len(values), 3)
    return means


def mos_differences() -> dict[str, list[str]]:
    """The comparability verdict of every speech-quality field: not a paper number."""
    return {name: [NOT_IN_PAPER.format("UTMOS" if name == "utmos" else "DNSMOS")] for name in MOS_FIELDS}


#: what the ``mos`` task option takes, joined with ``+`` for several (``dnsmos+utmos:/models/utmos.pt``)
MOS_CHOICES = ("dnsmos", "utmos:PATH", "none")


def mos_parts(spec: str) -> list[tuple[str, str | None]]:
    """``(scorer, path or None)`` per ``+``-joined part of a ``mos`` option; ValueError (one line) for an unknown
    scorer, a UTMOS without its file, ``none`` beside another part or a part given twice. ``none`` -> ``[]``."""
    parts = [p.strip() for p in str(spec).split("+")]
    if parts == ["none"]:
        return []
    out = []
    for part in parts:
        name, _, path = part.partition(":")
        if name == "dnsmos" and not path:
            out.append(("dnsmos", None))
        elif name == "utmos" and path:
            out.append(("utmos", path))
        elif name == "utmos":
            raise ValueError("mos utmos needs its checkpoint file: utmos:PATH (a local file; nothing is downloaded)")
        else:
            raise ValueError(f"unknown mos {part!r}; use dnsmos, utmos:PATH or none (several joined with +)")
    if len({name for name, _ in out}) != len(out):
        raise ValueError(f"mos {spec!r}: a scorer is given twice")
    return out


def check_mos(spec: str) -> None:
    """ValueError (one line) for a ``mos`` option that names no scorer this version has (:func:`mos_parts`)."""
    mos_parts(spec)
