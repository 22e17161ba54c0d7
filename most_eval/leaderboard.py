"""Leaderboard: the MoST paper's tables plus the user's runs, as markdown, a static HTML page and PNG plots.

Inputs (``data_dir``, by default the repo's ``leaderboards/data``):

- ``paper/*.csv`` -- the paper's three tables, values *as printed* (strings, so "71.50" stays "71.50"), blank = not
  reported, plus a ``source`` column naming the table.
- ``runs/**/*.json`` -- most-eval ``results.json`` files (format ``most-eval-results``, version 1) dropped there by
  users. Every ``.json`` file under ``runs/`` must be one; anything else raises
  :class:`most_eval.results.store.ResultsFileError`.

A run's number is placed in the paper cell its task declares (:class:`most_eval.core.task.LeaderboardSlot`, on the task
class), which the runner records in results.json (``tasks[task]["leaderboard"]``, read by
:func:`most_eval.results.store.leaderboard_slot`): ``asr:librispeech-test-clean`` fills ``librispeech_clean`` of an ``asr``
row, ``tts:librispeech-test-clean`` the same column of a ``tts`` row, ``slm:swuggy-dev`` the ``swuggy`` column, and so
on; no task class is imported here. A task whose results record no cell (older files, tasks without a paper column)
is not placed, and its run details say so. A column holds the family's headline metric (``wer`` for ASR/TTS,
``accuracy`` for the rest; for sWUGGY that is the lexical "all" accuracy, not ``accuracy_in_vocab``). Every run
metric, placed or not, is also listed in a "run details" table per family (the family of its cell, else of its task
name's prefix).

Outputs (``output_dir``): ``asr_tts.md``, ``spoken_lm.md``, ``spoken_qa.md``, ``index.html`` (sortable tables, a few
lines of inline JS, no external assets) and ``plots/<family>.png``. The same inputs give byte-identical outputs: rows
are ordered deterministically, nothing depends on time, absolute paths or hash order, and the PNGs are written with
fixed rcParams and no metadata.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from most_eval.results.efficiency import summary_line as efficiency_line
from most_eval.results.store import leaderboard_slot, load_results
from most_eval.core.task import LeaderboardSlot

# --------------------------------------------------------------------------------------------------------------------
# Families (one per paper table) and the paper cell of a run's task


@dataclass(frozen=True)
class Family:
    """One paper table and how runs fill it: its file, row keys, metric columns, metric and direction."""

    key: str  # output file stem, HTML section id
    title: str
    paper_csv: str  # file under data/paper/; its stem is the table a task's LeaderboardSlot names
    source: str  # value of the `source` column for paper rows
    keys: tuple[str, ...]  # row identity columns, paper names
    columns: tuple[str, ...]  # metric columns, paper names
    metric: str  # results.json metric that fills the columns
    lower_is_better: bool
    unit: str
    task_prefixes: tuple[str, ...]  # run tasks listed in this family's details table when they name no cell

    @property
    def table(self) -> str:
        """The paper table's name as tasks declare it (``asr_tts_wer``)."""
        return Path(self.paper_csv).stem


FAMILIES: tuple[Family, ...] = (
    Family(
        "asr_tts", "ASR and TTS word error rate", "asr_tts_wer.csv", "MoST paper (asr_tts_wer)",
        ("model", "task"), ("librispeech_clean", "librispeech_other", "voxpopuli", "common_voice"),
        "wer", True, "WER %", ("asr", "tts"),
    ),
    Family(
        "spoken_lm", "Spoken language modelling accuracy", "audio_lm_accuracy.csv", "MoST paper (audio_lm_accuracy)",
        ("model",), ("swuggy", "sblimp", "stopic_storycloze", "sstorycloze", "average"),
        "accuracy", False, "accuracy %", ("slm",),
    ),
    Family(
        "spoken_qa", "Spoken question answering accuracy", "spoken_qa_accuracy.csv", "MoST paper (spoken_qa_accuracy)",
        ("model",), ("llama_questions_s2t", "llama_questions_s2s", "triviaqa_s2t", "triviaqa_s2s",
                     "webquestions_s2t", "webquestions_s2s"),
        "accuracy", False, "accuracy %", ("sqa",),
    ),
)
FAMILY_BY_TABLE = {f.table: f for f in FAMILIES}

# spoken_lm "average" = plain mean of these four, as in the paper (e.g. MoST: (75.28+63.42+83.64+65.43)/4 = 71.94).
SLM_AVERAGE_OF = ("swuggy", "sblimp", "stopic_storycloze", "sstorycloze")

def place(slot: LeaderboardSlot | None) -> tuple[Family, str | None, str] | str:
    """The paper cell of a recorded slot as ``(family, row task or None, column)``, or why there is none (words for
    the run details)."""
    if slot is None:
        return "not placed: results.json names no paper column for this task"
    family = FAMILY_BY_TABLE.get(slot.table)
    if family is None or slot.column not in family.columns:
        return f"not placed: {slot.table}/{slot.column} is not a column of a paper table"
    if ("task" in family.keys) != (slot.row_task is not None):
        return f"not placed: {slot.table} rows " + ("need a task (asr, tts)" if "task" in family.keys
                                                    else "have no task")
    return family, slot.row_task, slot.column


# --------------------------------------------------------------------------------------------------------------------
# Rows


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
class FamilyTable:
    """A family's rows (paper first, then runs) and run details, ready to render."""

    family: Family
    rows: list[Row] = field(default_factory=list)
    details: list[RunDetail] = field(default_factory=list)


def _fmt(value: Any, decimals: int = 2) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    return f"{value:.{decimals}f}"


def _num(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_paper_table(path: Path, family: Family) -> list[Row]:
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


def _run_rows(data: dict[str, Any], source: str) -> tuple[dict[str, list[Row]], dict[str, list[RunDetail]]]:
    """A run's rows per family: comparable cells in one row, non-comparable cells in a row of their own (labelled,
    drawn apart, never bold); plus a detail line per metric with scored/listed and comparability."""
    model = data["model"]["name"]
    rows: dict[tuple[str, str | None, bool], Row] = {}
    details: dict[str, list[RunDetail]] = {f.key: [] for f in FAMILIES}
    for task in sorted(data["results"]):
        entry = data["results"][task]
        cell = place(leaderboard_slot(data, task))
        prefix = task.split(":", 1)[0].lower()
        family = next((f for f in FAMILIES if prefix in f.task_prefixes), None) if isinstance(cell, str) else cell[0]
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
            row.values[column] = _fmt(entry.get(family.metric))
            if "scored" in entry and "listed" in entry:  # how many samples stand behind the cell
                row.counts.append(f"{column} {entry['scored']}/{entry['listed']}")
        notes = ", ".join(f"{k}: {entry[k]}" for k in ("judge", "embedder", "wer_protocol", "reduction")
                          if isinstance(entry.get(k), str))
        cost = (data.get("efficiency") or {}).get(task)
        if isinstance(cost, dict) and "wall_seconds" in cost:  # what the number cost, beside it
            notes = "; ".join(filter(None, [notes, efficiency_line(task, cost).split(": ", 1)[1]]))
        if isinstance(cell, str) and family.metric in entry:  # a number that stands in no paper column: say why
            notes = "; ".join(filter(None, [cell, notes]))
        scored = f"{entry['scored']}/{entry['listed']}" if "scored" in entry and "listed" in entry else ""
        for metric in ("wer", "accuracy", "accuracy_in_vocab", "sim"):
            if metric in entry:
                decimals = 3 if metric == "sim" else 2
                ci = entry.get(f"{metric}_ci95")
                ci_text = (f"[{_fmt(ci[0], decimals)}, {_fmt(ci[1], decimals)}]"
                           if isinstance(ci, (list, tuple)) and len(ci) == 2 else "")
                details[family_key].append(RunDetail(model, task, metric, _fmt(entry[metric], decimals), ci_text,
                                                     scored, notes, source, words))
    by_family: dict[str, list[Row]] = {f.key: [] for f in FAMILIES}
    for (family_key, _, _), row in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", not kv[0][2])):
        if family_key == "spoken_lm":
            parts = [_num(row.values[c]) for c in SLM_AVERAGE_OF]
            if all(p is not None for p in parts):
                row.values["average"] = _fmt(sum(parts) / len(parts))  # type: ignore[arg-type]
        if row.counts:
            row.source = f"{row.source}; scored/listed: {', '.join(row.counts)}"
        by_family[family_key].append(row)
    return by_family, details


def collect(data_dir: str | Path) -> list[FamilyTable]:
    """Paper rows (paper order) then run rows (by run file path) for every family."""
    data_dir = Path(data_dir)
    paper_dir = data_dir / "paper"
    tables = []
    for family in FAMILIES:
        path = paper_dir / family.paper_csv
        if not path.is_file():
            raise FileNotFoundError(f"{path}: paper table missing (expected under {paper_dir})")
        tables.append(FamilyTable(family, read_paper_table(path, family)))
    by_key = {t.family.key: t for t in tables}
    runs_dir = data_dir / "runs"
    for path in find_run_files(runs_dir):
        data = load_results(path)
        source = "run: runs/" + path.relative_to(runs_dir).as_posix()
        rows, details = _run_rows(data, source)
        for key, family_rows in rows.items():
            by_key[key].rows.extend(family_rows)
            by_key[key].details.extend(details[key])
    return tables


# --------------------------------------------------------------------------------------------------------------------
# Rendering


def _best(table: FamilyTable) -> set[tuple[int, str]]:
    """(row index, column) of the best value per column, separately per `task` group for asr_tts; rows that are not
    comparable with the paper are left out."""
    best: set[tuple[int, str]] = set()
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(table.rows):
        if row.comparable:  # a run not measured as the paper measured never takes bold
            groups.setdefault(row.keys.get("task", ""), []).append(i)
    for indices in groups.values():
        for column in table.family.columns:
            vals = [(i, _num(table.rows[i].values[column])) for i in indices]
            vals = [(i, v) for i, v in vals if v is not None]
            if not vals:
                continue
            pick = min if table.family.lower_is_better else max
            target = pick(v for _, v in vals)
            best.update((i, column) for i, v in vals if v == target)
    return best


def _md_cell(text: str) -> str:
    """A markdown table cell: HTML escaped as on the page (markdown renders inline HTML, so a model name like
    ``<img onerror=...>`` would otherwise run in a viewer), ``|`` escaped, on one line."""
    return html.escape(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(table: FamilyTable) -> str:
    """A family's markdown page: the comparable rows (best in bold), the runs drawn apart, the run
    details and the plot."""
    f = table.family
    direction = "lower is better" if f.lower_is_better else "higher is better"
    out = io.StringIO()
    out.write(f"# {f.title} ({f.unit}, {direction})\n\n")
    out.write("<!-- Generated by `most-eval leaderboard build` from leaderboards/data; "
              "edit the data, not this file. -->\n\n")
    out.write(f"Paper rows: {f.source}, values as printed; empty cell = not reported. "
              "Run rows: results.json files under `data/runs/`, "
              f"column metric `{f.metric}`. "
              f"Best value per column{' and task' if 'task' in f.keys else ''} in **bold**.\n")
    if f.key == "spoken_lm":
        out.write("\n`swuggy` holds the lexical \"all\" accuracy (`accuracy`, not `accuracy_in_vocab`); "
                  "`average` is the plain mean of the four columns.\n")
    header = [*f.keys, *f.columns, "source"]
    best = _best(table)

    def write_rows(indices: list[int]) -> None:
        out.write("\n| " + " | ".join(header) + " |\n")
        out.write("|" + "|".join(["---"] * len(f.keys) + ["---:"] * len(f.columns) + ["---"]) + "|\n")
        for i in indices:
            row = table.rows[i]
            cells = [_md_cell(row.keys[k]) for k in f.keys]
            for c in f.columns:
                v = _md_cell(row.values[c])
                cells.append(f"**{v}**" if v and (i, c) in best else v)
            cells.append(_md_cell(row.source))
            out.write("| " + " | ".join(cells) + " |\n")

    write_rows([i for i, r in enumerate(table.rows) if r.comparable])
    apart = [i for i, r in enumerate(table.rows) if not r.comparable]
    if apart:
        out.write("\n## Runs not comparable with the paper\n\n"
                  "Measured differently from the paper (a subset or mini suite, another judge or reduction, error "
                  "records; reasons in *Run details*): real numbers, not to be ranked against the rows above, "
                  "never bold.\n")
        write_rows(apart)
    if table.details:
        out.write("\n## Run details\n\n"
                  "Every metric of the runs' tasks in this family, mapped to a paper column or not.\n\n")
        out.write("| model | task | metric | value | 95% CI | scored/listed | comparable | notes | source |\n")
        out.write("|---|---|---|---:|---|---:|---|---|---|\n")
        for d in table.details:
            out.write("| " + " | ".join(_md_cell(x) for x in (d.model, d.task, d.metric, d.value, d.ci95, d.scored,
                                                              d.comparable, d.notes, d.source)) + " |\n")
    out.write(f"\n![{f.title}](plots/{f.key}.png)\n")
    return out.getvalue()


_HTML_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222;max-width:1300px}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px}
th{background:#f2f2f2;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.best{font-weight:bold}tr.most td{background:#eef5ff}tr.run td{background:#fff7e6}
tr.apart td{background:#f3f3f3;color:#666;font-style:italic}
img{max-width:100%}p.note{color:#555}
""".strip()

# Click a header to sort (metric columns sort best-first on the first click). `#sort=<table id>:<column>[:asc|desc]`
# in the URL applies a sort on load. Empty cells always sort last.
_HTML_SCRIPT = r"""
(function(){
function val(td){var v=td.getAttribute('data-value');if(v===null||v==='')return null;
 var n=Number(v);return isNaN(n)?v.toLowerCase():n;}
function sortTable(t,col,dir){var th=t.tHead.rows[0].cells,b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);
 rows.sort(function(x,y){var a=val(x.cells[col]),c=val(y.cells[col]);if(a===c)return 0;if(a===null)return 1;
  if(c===null)return -1;return (a<c?-1:1)*(dir==='asc'?1:-1);});
 rows.forEach(function(r){b.appendChild(r);});
 for(var i=0;i<th.length;i++)th[i].removeAttribute('aria-sort');
 th[col].setAttribute('aria-sort',dir==='asc'?'ascending':'descending');}
var tables=document.querySelectorAll('table.sortable');
Array.prototype.forEach.call(tables,function(t){Array.prototype.forEach.call(t.tHead.rows[0].cells,function(h,i){
 h.addEventListener('click',function(){var cur=h.getAttribute('aria-sort');
  var dir=cur?(cur==='ascending'?'desc':'asc'):(h.getAttribute('data-first')||'asc');sortTable(t,i,dir);});});});
var m=/sort=([\w-]+):([\w-]+)(?::(asc|desc))?/.exec(decodeURIComponent(location.hash));
if(m){var t=document.getElementById(m[1]);if(t){var hs=t.tHead.rows[0].cells;for(var i=0;i<hs.length;i++){
 if(hs[i].getAttribute('data-col')===m[2])sortTable(t,i,m[3]||hs[i].getAttribute('data-first')||'asc');}}}
document.documentElement.setAttribute('data-sort-ready','1');
})();
""".strip()


def render_html(tables: list[FamilyTable]) -> str:
    """The static index.html: every family's sortable tables and plot, no external assets."""
    e = html.escape
    out = io.StringIO()
    out.write("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
    out.write("<title>most-eval leaderboard</title>\n<style>\n" + _HTML_STYLE + "\n</style>\n</head>\n<body>\n")
    out.write("<h1>most-eval leaderboard</h1>\n")
    out.write("<p class=\"note\">The MoST paper's tables (values as printed; empty = not reported) plus runs from "
              "<code>leaderboards/data/runs/</code>. Click a column header to sort. Generated by "
              "<code>most-eval leaderboard build</code>.</p>\n<ul>\n")
    for t in tables:
        out.write(f"<li><a href=\"#{t.family.key}-section\">{e(t.family.title)}</a></li>\n")
    out.write("</ul>\n")
    for t in tables:
        f = t.family
        direction = "lower is better" if f.lower_is_better else "higher is better"
        first = "asc" if f.lower_is_better else "desc"
        out.write(f"<section id=\"{f.key}-section\">\n<h2>{e(f.title)} ({e(f.unit)}, {direction})</h2>\n")
        best = _best(t)

        def write_table(table_id: str, indices: list[int]) -> None:
            out.write(f"<table class=\"sortable\" id=\"{table_id}\">\n<thead><tr>")
            for k in f.keys:
                out.write(f"<th data-col=\"{k}\" data-first=\"asc\">{e(k)}</th>")
            for c in f.columns:
                out.write(f"<th data-col=\"{c}\" data-first=\"{first}\">{e(c)}</th>")
            out.write("<th data-col=\"source\" data-first=\"asc\">source</th></tr></thead>\n<tbody>\n")
            for i in indices:
                row = t.rows[i]
                cls = ("run" if row.comparable else "run apart") if row.is_run else ("most" if row.highlight else "")
                out.write(f"<tr class=\"{cls}\">" if cls else "<tr>")
                for k in f.keys:
                    out.write(f"<td data-value=\"{e(row.keys[k])}\">{e(row.keys[k])}</td>")
                for c in f.columns:
                    v = row.values[c]
                    klass = "num best" if v and (i, c) in best else "num"
                    out.write(f"<td class=\"{klass}\" data-value=\"{e(v)}\">{e(v)}</td>")
                out.write(f"<td data-value=\"{e(row.source)}\">{e(row.source)}</td></tr>\n")
            out.write("</tbody>\n</table>\n")

        write_table(f.key, [i for i, r in enumerate(t.rows) if r.comparable])
        apart = [i for i, r in enumerate(t.rows) if not r.comparable]
        if apart:
            out.write("<h3>Runs not comparable with the paper</h3>\n<p class=\"note\">Measured differently from the "
                      "paper (a subset or mini suite, another judge or reduction, error records; reasons in the run "
                      "details): real numbers, not ranked against the table above, never bold.</p>\n")
            write_table(f"{f.key}-apart", apart)
        if t.details:
            out.write(f"<h3>Run details</h3>\n<table class=\"sortable\" id=\"{f.key}-details\">\n<thead><tr>")
            for h in ("model", "task", "metric", "value", "95% CI", "scored/listed", "comparable", "notes", "source"):
                col = re.sub(r"[^\w-]", "", h.replace(" ", "-").replace("/", "-")) or "col"
                out.write(f"<th data-col=\"{col}\" data-first=\"asc\">{e(h)}</th>")
            out.write("</tr></thead>\n<tbody>\n")
            for d in t.details:
                out.write("<tr>" + "".join(
                    f"<td data-value=\"{e(x)}\">{e(x)}</td>"
                    for x in (d.model, d.task, d.metric, d.value, d.ci95, d.scored, d.comparable, d.notes, d.source))
                    + "</tr>\n")
            out.write("</tbody>\n</table>\n")
        out.write(f"<img src=\"plots/{f.key}.png\" alt=\"{e(f.title)} plot\">\n</section>\n")
    out.write("<script>\n" + _HTML_SCRIPT + "\n</script>\n</body>\n</html>\n")
    return out.getvalue()


# Fixed style so the PNG bytes do not depend on the user's matplotlibrc.
_PLOT_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "path.simplify": False,
    "svg.hashsalt": "most-eval",
}
_COLOURS = {"paper": "#9aa5b1", "most": "#1f5fbf", "run": "#e08a00", "apart": "#d9d9d9"}


def _panels(table: FamilyTable) -> list[tuple[str, list[tuple[str, float, str, str]]]]:
    """(panel title, [(label, value, colour key, printed value)]) per column (and per task for asr_tts), best value
    on top."""
    f = table.family
    tasks = sorted({r.keys.get("task", "") for r in table.rows}, key=lambda t: (t != "asr", t))
    panels = []
    for task in tasks:
        for c in f.columns:
            bars = []
            for r in table.rows:
                if r.keys.get("task", "") != task:
                    continue
                v = _num(r.values[c])
                if v is not None:
                    kind = ("run" if r.comparable else "apart") if r.is_run else ("most" if r.highlight else "paper")
                    bars.append((r.keys["model"], v, kind, r.values[c]))
            if not bars:
                continue
            bars.sort(key=lambda b: (b[1] if f.lower_is_better else -b[1], b[0]), reverse=True)  # best at the top
            title = f"{task.upper()} {c}" if task else c
            panels.append((title, bars))
    return panels


def render_plot(table: FamilyTable, path: Path) -> None:
    """One PNG per family: a horizontal bar panel per column. Byte-reproducible (fixed rc, no metadata)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = _panels(table) or [("(no values)", [])]
    f = table.family
    ncols = 4 if len(panels) % 4 == 0 else 3
    nrows = max(1, math.ceil(len(panels) / ncols))
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_PLOT_RC)
        fig = Figure(figsize=(4.2 * ncols, 0.25 * max(max(len(b) for _, b in panels), 1) * nrows + 1.2 * nrows + 0.6))
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax, (title, bars) in zip(axes.flat, panels):
            labels = [b[0] for b in bars]
            values = [b[1] for b in bars]
            ax.barh(range(len(bars)), values, color=[_COLOURS[b[2]] for b in bars])
            ax.set_yticks(range(len(bars)), labels)
            ax.set_title(title)
            ax.set_xlabel(f.unit)
            top = max(values) if values else 1.0
            ax.set_xlim(0, top * 1.18)
            for y, (_, v, _, printed) in enumerate(bars):
                ax.text(v + top * 0.01, y, printed, va="center", fontsize=7)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        direction = "lower is better" if f.lower_is_better else "higher is better"
        fig.suptitle(f"{f.title} ({direction}); blue = MoST (paper), orange = runs, "
                     f"light grey = runs not comparable with the paper")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", metadata={"Software": None}, dpi=100)


def build_leaderboard(data_dir: str | Path, output_dir: str | Path) -> list[Path]:
    """Build the leaderboard from ``data_dir`` (``paper/*.csv`` + ``runs/**/*.json``) into ``output_dir``.

    Writes ``<family>.md`` per family, ``index.html`` and ``plots/<family>.png``; returns the written paths (sorted).
    Raises :class:`most_eval.results.store.ResultsFileError` for a bad run file; nothing is written in that case.
    """
    tables = collect(data_dir)  # validates every input before anything is written
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for t in tables:
        md = output_dir / f"{t.family.key}.md"
        md.write_text(render_markdown(t), encoding="utf-8", newline="\n")
        png = output_dir / "plots" / f"{t.family.key}.png"
        render_plot(t, png)
        written += [md, png]
    index = output_dir / "index.html"
    index.write_text(render_html(tables), encoding="utf-8", newline="\n")
    written.append(index)
    return sorted(written)
