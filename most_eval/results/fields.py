"""The one list of what results fields mean: which per-sample fields make each metric (and whether lower is
better), and which fields of a task's results entry name how it was scored. The runs reader, the results table,
``compare`` and ``check`` all read these."""

from __future__ import annotations

# metric -> (per-sample fields it needs, lower is better)
METRICS: dict[str, tuple[tuple[str, ...], bool]] = {
    "wer": (("errors", "ref_words"), True),
    "accuracy": (("correct",), False),
    "sim": (("sim",), False),
}


# results.json entry fields that name how a task was scored; compared like the task config (older runs may have
# them only here, not in the config)
SCORING_IDENTITY = ("wer_protocol", "judge", "embedder", "reduction", "scorer")

#: the fields the results table shows for a task: each metric with its interval, then how it was scored
HEADLINE = ("wer", "wer_ci95", "accuracy", "accuracy_in_vocab", "sim", "judge", "judge_rtf", "embedder", "reduction",
            "scorer")
