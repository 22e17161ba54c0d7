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
    """``{"paper_comparable": bool, "reasons": [...], "notes": [...]}`` for one task's results entry."""
    from most_eval.data.catalog import DatasetDownloadError, official_sample_count

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
    if official is None:
        reasons.append("the official sample count is not in the dataset manifest (official_samples), so "
                       "completeness cannot be checked")
    elif listed < official:
        reasons.append(f"{listed:,} of the official {official:,} samples")
    elif listed > official:
        reasons.append(f"{listed:,} samples listed, more than the official {official:,}")
    if result.get("errors"):
        reasons.append(f"{result['errors']} error record(s)")
    reasons += task.protocol_differences()
    return {"paper_comparable": not reasons, "reasons": reasons, "notes": notes}


def summary_line(task: str, entry: dict) -> str | None:
    """One terminal line for a task that is not paper-comparable, else None."""
    if entry.get("paper_comparable", False) or not entry.get("reasons"):
        return None
    return f"{task}: not comparable with the paper: {'; '.join(entry['reasons'])}"


def judge_difference(judge, adapter: str, folder: str, role: str) -> str | None:
    """None when ``judge`` is the reference judge (registry name ``adapter`` loaded from a folder named ``folder``,
    e.g. hf-whisper from ``.../whisper-large-v3``), else the reason in words. ``role`` says whose reference it is."""
    if judge is None:
        return f"no judge ASR (the {role} is {folder})"
    path = str(getattr(judge.args, "path", "") or "")
    name = path.rstrip("/").rsplit("/", 1)[-1] if path else ""
    if judge.name == adapter and name == folder:
        return None
    shown = f"{judge.name}:{name}" if name else judge.name
    return f"judge {shown}, not the {role} {folder}"
