"""The results table a person reads after a run: the headline metrics and scored-of-listed counts of each task,
a one-line count summary, efficiency lines and each failed task's first error reason."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from most_eval.results.efficiency import summary_line as efficiency_line
from most_eval.results.fields import HEADLINE


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.3f}"
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return f"[{value[0]:.2f}, {value[1]:.2f}]"
    return str(value)




def count_label(res: dict) -> str:
    """The scored / listed counts with their unit where a task's scored items are not its samples: a spoken-LM
    task lists wav files and scores pairs (``16 / 16 files, 8 pairs``), a text task one lm-eval task of N documents."""
    counts = f"{res.get('scored', 0)} / {res.get('listed', 0)}"
    if isinstance(res.get("pairs"), int):
        return f"{counts} files, {res['pairs']} pairs"
    if isinstance(res.get("documents"), int):
        return f"{counts} task, {res['documents']} documents"
    return counts


def results_table(document: dict) -> Table:
    """A rich table of the headline metrics and the scored-of-listed counts of each task."""
    table = Table(title=f"most-eval results — model {document['model']['name']}", show_lines=False)
    table.add_column("task", style="bold", no_wrap=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("scored / listed", justify="right")
    for task, res in document["results"].items():
        if res.get("status"):
            why = f"needs {res['capability']}" if res.get("capability") else (res.get("detail") or "")[:60]
            table.add_row(task, res["status"], why, "", style="yellow")
            continue
        counts = count_label(res)
        style = "red" if res.get("errors") else None
        shown = [k for k in HEADLINE if k in res] or [
            k for k, v in res.items() if k not in ("scored", "listed", "errors", "reused", "seconds")
            and isinstance(v, (int, float, str)) and not isinstance(v, bool)]  # dicts (configs) stay in the file
        if isinstance(res.get("seeds"), list) and len(res["seeds"]) > 1:  # a --seeds run: how many, and whether
            counts += f" × {len(res['seeds'])} seeds" + (" (identical)" if res.get("seeds_identical") else "")
        for i, key in enumerate(shown):
            value = _fmt(res[key])
            if isinstance(res.get(f"{key}_std"), (int, float)):  # the mean over seeds, with its spread
                value += f" ± {_fmt(float(res[f'{key}_std']))}"
            table.add_row(task if i == 0 else "", key, value, counts if i == 0 else "", style=style)
    return table


def print_results(document: dict, console: Console | None = None) -> None:
    """Print the results table, a one-line summary of counts, and per failed task its first error reason."""
    console = console or Console()
    console.print(results_table(document))
    entries = document["results"].values()
    scored = sum(r.get("scored", 0) for r in entries)
    listed = sum(r.get("listed", 0) for r in entries)
    errors = sum(r.get("errors", 0) for r in entries)
    reused = sum(r.get("reused", 0) for r in entries)
    console.print(f"scored {scored} of {listed} listed samples; {errors} error record(s); "
                  f"{reused} record(s) reused from the cache", markup=False, highlight=False, soft_wrap=True)
    for task, entry in (document.get("efficiency") or {}).items():
        if task in document["results"] and isinstance(entry, dict) and "wall_seconds" in entry:
            console.print("efficiency: " + efficiency_line(task, entry), markup=False, highlight=False, soft_wrap=True)
    for task, res in document["results"].items():
        first = res.get("first_error")
        if first:
            console.print(f"{task}: {res.get('errors', 0)} error record(s); first: {first['reason']} "
                          f"({first['alike']} alike)", markup=False, highlight=False, soft_wrap=True)
