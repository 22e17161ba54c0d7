"""Collecting the leaderboard: the paper's rows as printed (``paper/*.csv``) and each run's numbers placed in the paper
cell its task declares, plus every run metric in a per-table details list."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from most_eval.core.task import LeaderboardSlot
from most_eval.results.efficiency import summary_line as efficiency_line
from most_eval.results.store import leaderboard_slot, load_results
from most_eval.results.fields import THREE_DECIMALS
from most_eval.results.runs import run_label
from most_eval.scoring.speech_quality import MOS_FIELDS
from most_eval.scoring.paper import PAPER_TABLE_BY_NAME, PAPER_TABLES, SLM_AVERAGE_OF, PaperTable


def place(slot: LeaderboardSlot | None) -> tuple[PaperTable, str | None, str] | str:
    """The paper cell of a recorded slot as ``(family, row task or None, column)``, or why there is none (words for
    the run details)."""
    if slot is None:
        return "not placed: results.json names no paper column for this task"
    family = PAPER_TABLE_BY_NAME.get(slot.table)
    if family is None or slot.column not in family.columns:
        return f"not placed: {slot.table}/{slot.column} is not a column of a paper table"
    if ("task" in family.keys) != (slot.row_task is not None):
        return f"not placed: {slot.table} rows " + ("need a task (asr, tts)" if "task" in family.keys
                                                    else "have no task")
    return family, slot.row_task, slot.column


@dataclass
class Row:
    """A table row: a paper row (values as printed) or a run's row (values formatted from results.json)."""

    keys: dict[str, str]  # model (+ task)
    values: dict[str, str]  # column -> printed value ("" = not reported)
    source: str
    is_run: bool = False
    highlight: bool = False  # the paper's own model
    comparable: bool = True  # a run row measured as the paper measured (see most_eval.scoring.comparability)
    counts: list[str] = field(default_factory=list)  # run rows: "<column> scored/listed" per filled cell


@dataclass
class RunDetail:
    """One line of a family's run details: a run's metric with its interval, counts and comparability."""

    model: str
    task: str
    metric: str
    value: str
    ci95: str
    scored: str
    notes: str
    source: str
    comparable: str = ""  # "yes", or "no: <reasons>"


@dataclass
class LeaderboardTable:
    """One paper table's rows (paper first, then runs) and run details, ready to render."""

    paper_table: PaperTable
    rows: list[Row] = field(default_factory=list)
    details: list[RunDetail] = field(default_factory=list)


def _fmt(value: Any, decimals: int = 2) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    return f"{value:.{decimals}f}"


#: between a mean over seeds and its standard deviation in a cell (``12.30 ± 0.45``)
PLUS_MINUS = " ± "


def _with_std(entry: dict[str, Any], metric: str, decimals: int = 2) -> str:
    """``metric``'s value as a cell: ``mean ± std`` for a run over several seeds (``<metric>_std``), else the value."""
    value, std = _fmt(entry.get(metric), decimals), _fmt(entry.get(f"{metric}_std"), decimals)
    return f"{value}{PLUS_MINUS}{std}" if value and std else value


def _num(text: str) -> float | None:
    """The number a cell shows (the mean, for ``mean ± std``), or None."""
    try:
        value = float(str(text).split(PLUS_MINUS)[0])
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_paper_table(path: Path, family: PaperTable) -> list[Row]:
    """Rows of one paper CSV, values kept as the strings printed in the paper."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in (*family.keys, *family.columns) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        rows = []
        for rec in reader:
            rows.append(Row(
                keys={k: rec[k].strip() for k in family.keys},
                values={c: (rec[c] or "").strip() for c in family.columns},
                source=(rec.get("source") or family.source).strip(),
                highlight=rec["model"].strip() == "MoST",
            ))
    return rows


def find_run_files(runs_dir: Path) -> list[Path]:
    """Every ``.json`` file under ``runs_dir``, in a stable order (sorted by relative POSIX path)."""
    if not runs_dir.is_dir():
        return []
    files = (p for p in runs_dir.rglob("*.json") if p.is_file())
    return sorted(files, key=lambda p: p.relative_to(runs_dir).as_posix())


def _comparability(data: dict[str, Any], task: str) -> tuple[bool, str]:
    """(comparable, words) of a run's task from its results.json ``comparability`` block; a file without one
    (older runs) is not comparable."""
    entry = (data.get("comparability") or {}).get(task)
    if not isinstance(entry, dict):
        return False, "no: results.json has no comparability record"
    if entry.get("paper_comparable") is True:
        return True, "yes"
    reasons = [str(r) for r in entry.get("reasons") or []]
    return False, "no: " + ("; ".join(reasons) or "not comparable")


def _run_rows(data: dict[str, Any], source: str, model: str) -> tuple[dict[str, list[Row]], dict[str, list[RunDetail]]]:
    """A run's rows per family, named ``model`` (:func:`run_label`): comparable cells in one row, non-comparable
    cells in a row of their own (labelled, drawn apart, never bold); plus a detail line per metric with
    scored/listed and comparability."""
    rows: dict[tuple[str, str | None, bool], Row] = {}
    details: dict[str, list[RunDetail]] = {f.key: [] for f in PAPER_TABLES}
    for task in sorted(data["results"]):
        entry = data["results"][task]
        cell = place(leaderboard_slot(data, task))
        prefix = task.split(":", 1)[0].lower()
        family = next((f for f in PAPER_TABLES if prefix in f.task_prefixes), None) if isinstance(cell, str) else cell[0]
        if family is None:
            continue  # a task family the paper has no table for
        family_key = family.key
        comparable, words = _comparability(data, task)
        if "status" in entry and family.metric not in entry:
            details[family_key].append(RunDetail(model, task, "-", "", "", "", str(entry["status"]), source, words))
            continue
        if not isinstance(cell, str) and family.metric in entry:
            _, row_task, column = cell
            row = rows.get((family_key, row_task, comparable))
            if row is None:
                label = f"{model} (run)" if comparable else f"{model} (run, not comparable)"
                keys = {"model": label} if row_task is None else {"model": label, "task": row_task}
                row = rows[(family_key, row_task, comparable)] = Row(keys, {c: "" for c in family.columns}, source,
                                                                    is_run=True, comparable=comparable)
            row.values[column] = _with_std(entry, family.metric)
            if "scored" in entry and "listed" in entry:  # how many samples stand behind the cell
                row.counts.append(f"{column} {entry['scored']}/{entry['listed']}")
        notes = ", ".join(f"{k}: {entry[k]}" for k in ("judge", "embedder", "mos", "wer_protocol", "reduction")
                          if isinstance(entry.get(k), str))
        cost = (data.get("efficiency") or {}).get(task)
        if isinstance(cost, dict) and "wall_seconds" in cost:  # what the number cost, beside it
            notes = "; ".join(filter(None, [notes, efficiency_line(task, cost).split(": ", 1)[1]]))
        if isinstance(cell, str) and family.metric in entry:  # a number that stands in no paper column: say why
            notes = "; ".join(filter(None, [cell, notes]))
        scored = f"{entry['scored']}/{entry['listed']}" if "scored" in entry and "listed" in entry else ""
        for metric in ("wer", "accuracy", "accuracy_in_vocab", "sim", *MOS_FIELDS):
            if metric in entry:
                decimals = 3 if metric in THREE_DECIMALS else 2
                ci = entry.get(f"{metric}_ci95")
                ci_text = (f"[{_fmt(ci[0], decimals)}, {_fmt(ci[1], decimals)}]"
                           if isinstance(ci, (list, tuple)) and len(ci) == 2 else "")
                if not ci_text and isinstance(entry.get(f"{metric}_seeds_ci95"), list):  # over seeds, labelled so
                    lo, hi = entry[f"{metric}_seeds_ci95"][:2]
                    ci_text = f"[{_fmt(lo, decimals)}, {_fmt(hi, decimals)}] over {len(entry.get('seeds') or [])} seeds"
                details[family_key].append(RunDetail(model, task, metric, _with_std(entry, metric, decimals), ci_text,
                                                     scored, notes, source, words))
    by_family: dict[str, list[Row]] = {f.key: [] for f in PAPER_TABLES}
    for (family_key, _, _), row in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", not kv[0][2])):
        if family_key == "spoken_lm":
            parts = [_num(row.values[c]) for c in SLM_AVERAGE_OF]
            if all(p is not None for p in parts):
                row.values["average"] = _fmt(sum(parts) / len(parts))  # type: ignore[arg-type]
        if row.counts:
            row.source = f"{row.source}; scored/listed: {', '.join(row.counts)}"
        by_family[family_key].append(row)
    return by_family, details


def collect(data_dir: str | Path, runs: tuple[str | Path, ...] | list[str | Path] = ()) -> list[LeaderboardTable]:
    """Paper rows (paper order) then run rows for every family: the run files under ``data_dir/runs`` (by path),
    then the run folders (or results.json files) ``runs`` names, in the order given."""
    data_dir = Path(data_dir)
    paper_dir = data_dir / "paper"
    tables = []
    for family in PAPER_TABLES:
        path = paper_dir / family.paper_csv
        if not path.is_file():
            raise FileNotFoundError(f"{path}: paper table missing (expected under {paper_dir})")
        tables.append(LeaderboardTable(family, read_paper_table(path, family)))
    by_key = {t.paper_table.key: t for t in tables}
    runs_dir = data_dir / "runs"
    inputs = [(p, "run: runs/" + p.relative_to(runs_dir).as_posix()) for p in find_run_files(runs_dir)]
    for run in runs:
        path = Path(run) / "results.json" if Path(run).is_dir() else Path(run)
        if not path.is_file():
            raise FileNotFoundError(f"{run}: no results.json there (--runs takes run folders or results.json files)")
        inputs.append((path, f"run: {run}"))
    for path, source in inputs:
        data = load_results(path)
        rows, details = _run_rows(data, source, run_label(data))
        for key, family_rows in rows.items():
            by_key[key].rows.extend(family_rows)
            by_key[key].details.extend(details[key])
    return tables
