"""Whether a task's number can stand beside the paper's: the ``comparability`` block of results.json.

A number is *paper-comparable* only when it was measured the way the paper (or the official scorer) measured it, on
the whole official set: no ``--limit``, no fewer samples than the official count (from the dataset manifest), no error
record, and the task's protocol as the task itself declares it (:meth:`most_eval.core.task.Task.protocol_differences`:
judge, embedder, reduction, normalisation). Anything else is still a real number, labelled with the reasons it is
not comparable; the terminal prints one line per such task and the leaderboard draws it apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from most_eval.core.task import Task


def assess(task: "Task", result: dict, limit: int | None) -> dict:
    """``{"paper_comparable": bool, "reasons": [...], "notes": [...], "metrics": {metric: {"paper_comparable",
    "reasons"}}}`` for one task's results entry: the headline verdict (the paper's cell) and one per metric that has
    its own (:meth:`~most_eval.core.task.Task.metric_differences`)."""
    from most_eval.data.catalog import DatasetDownloadError, official_sample_count, official_sample_source

    reasons: list[str] = []
    notes: list[str] = []
    if result.get("status"):
        reasons.append(f"{result['status']}: nothing comparable was measured")
        return {"paper_comparable": False, "reasons": reasons, "notes": notes}
    if limit is not None:
        reasons.append(f"--limit {limit}")
    try:
        official = official_sample_count(task.name)
    except DatasetDownloadError as exc:  # a broken custom manifest: say so rather than guess
        official, notes = None, [f"dataset manifest unreadable ({exc})"]
    listed = int(result.get("listed", 0))
    if official is not None and official_sample_source(task.name):
        notes.append(f"official sample count {official:,}: {official_sample_source(task.name)}")
    if official is None:
        reasons.append("the official sample count is not in the dataset manifest (official_samples), so "
                       "completeness cannot be checked")
    elif listed < official:
        reasons.append(f"{listed:,} of the official {official:,} samples")
    elif listed > official:
        reasons.append(f"{listed:,} samples listed, more than the official {official:,}")
    if result.get("errors"):
        reasons.append(f"{result['errors']} error record(s)")
    common = list(reasons)
    reasons += task.protocol_differences()
    metrics = {task.headline_metric: {"paper_comparable": not reasons, "reasons": reasons}}
    for metric, differences in task.metric_differences().items():
        if metric in result:
            metrics[metric] = {"paper_comparable": not (common + differences), "reasons": common + differences}
    return {"paper_comparable": not reasons, "reasons": reasons, "notes": notes + task.protocol_notes(),
            "metrics": metrics}


def summary_line(task: str, entry: dict) -> str | None:
    """One terminal line for a task that is not paper-comparable, else None."""
    if entry.get("paper_comparable", False) or not entry.get("reasons"):
        return None
    return f"{task}: not comparable with the paper: {'; '.join(entry['reasons'])}"


def judge_difference(judge, adapter: str, folder: str, role: str, args: tuple = ()) -> str | None:
    """None when ``judge`` is the reference judge (registry name ``adapter`` loaded from a folder named ``folder``,
    e.g. hf-whisper from ``.../whisper-large-v3``, run with the generation settings ``args``: ``(name, value)``
    pairs of its ``--judge-args``), else the reason in words. ``role`` says whose reference it is."""
    if judge is None:
        return f"no judge ASR (the {role} is {folder})"
    path = str(getattr(judge.args, "path", "") or "")
    name = path.rstrip("/").rsplit("/", 1)[-1] if path else ""
    if judge.name == adapter and name == folder:
        changed = [f"{key}={getattr(judge.args, key, None)!r} (the reference's {value!r})" for key, value in args
                   if getattr(judge.args, key, value) != value]
        return f"judge {judge.name}:{name} run with {', '.join(changed)}" if changed else None
    shown = f"{judge.name}:{name}" if name else judge.name
    return f"judge {shown}, not the {role} {folder}"
