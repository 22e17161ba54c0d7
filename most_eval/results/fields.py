"""The one list of what results fields mean: which per-sample fields make each metric (and whether lower is
better), and which fields of a task's results entry name how it was scored. The runs reader, the results table,
``compare`` and ``check`` all read these."""

from __future__ import annotations

import math

from most_eval.scoring.speech_quality import MOS_FIELDS

# metric -> (per-sample fields it needs, lower is better)
METRICS: dict[str, tuple[tuple[str, ...], bool]] = {
    "wer": (("errors", "ref_words"), True),
    "accuracy": (("correct",), False),
    "sim": (("sim",), False),
    **{name: ((name,), False) for name in MOS_FIELDS},  # DNSMOS of generated speech: a per-sample mean
}
#: the metrics printed with 3 decimals (the rest with 2)
THREE_DECIMALS = ("sim", *MOS_FIELDS)


# results.json entry fields that name how a task was scored; compared like the task config (older runs may have
# them only here, not in the config)
SCORING_IDENTITY = ("wer_protocol", "judge", "embedder", "reduction", "scorer")

#: the fields the results table shows for a task: each metric with its interval, then how it was scored
HEADLINE = ("wer", "wer_ci95", "wer_seeds_ci95", "accuracy", "accuracy_in_vocab", "sim", "dnsmos_ovrl", "utmos",
            "judge", "judge_rtf", "embedder", "reduction", "scorer")


#: the values a field can take, where a results entry or a sample record has it: (lowest, highest) inclusive. WER
#: has no upper bound (insertions), accuracies are percentages, ``correct`` is a pair outcome (1, 0.5 or 0, or an
#: item's mean of them), ``sim`` a cosine; every count is a whole number of samples, words or edits.
RANGES: dict[str, tuple[float, float]] = {
    "wer": (0.0, math.inf), "accuracy": (0.0, 100.0), "accuracy_in_vocab": (0.0, 100.0),
    "accuracy_exact": (0.0, 100.0), "sim": (-1.0, 1.0), "correct": (0.0, 1.0),
}
#: fields that count things: whole numbers, never negative
COUNTS = ("scored", "listed", "errors", "reused", "substitutions", "deletions", "insertions", "ref_words", "pairs",
          "items")


def range_problem(name: str, value: object) -> str | None:
    """Why a finite number cannot be the value of field ``name`` (``"is -5, below 0"``), else None. Non-numbers,
    NaN and infinities are left to the readers that name them in their own words; unknown fields pass."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if name in COUNTS:
        if value < 0:
            return f"is {value:g}, a negative count"
        if value != int(value):
            return f"is {value:g}, not a whole count"
    low, high = RANGES.get(name, (-math.inf, math.inf))
    if value < low:
        return f"is {value:g}, below {low:g}"
    if value > high:
        return f"is {value:g}, above {high:g}"
    return None
