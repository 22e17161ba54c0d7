"""``most-eval report RUN_DIR``: one self-contained page, ``RUN_DIR/report.html``, to look at a run's samples.

Per task: the headline numbers with their comparability verdict, then the worst ``worst`` samples by the task's
per-sample metric and ``random`` more drawn with ``seed``. Per sample: the reference and the hypothesis with a
word-level diff (jiwer's alignment: substitutions, deletions and insertions marked), the input audio, the speaker
prompt and the generated audio as ``<audio>`` players with links relative to the page, the judge's transcript where
there is one, and every per-sample number. A task filter and a sort by any column run in the page's own script;
every text from the run is HTML-escaped. The page's script also marks each player once its audio has loaded or
failed (``data-audio-state``), so a browser test can see that every source decodes.
"""

from __future__ import annotations

import html
import json
import math
import os
import random
from pathlib import Path
from typing import Any

import jiwer

from most_eval.results.fields import HEADLINE
from most_eval.results.runs import Run, load_run
from most_eval.results.store import atomic_write_text

REPORT_NAME = "report.html"
#: per-sample fields shown as numbers (in this order, where a record has them)
NUMBER_FIELDS = ("wer", "errors", "ref_words", "substitutions", "deletions", "insertions", "correct", "sim",
                 "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808", "true_score", "false_score",
                 "audio_seconds")
AUDIO_FIELDS = (("input_audio", "input"), ("prompt_audio", "speaker prompt"), ("audio", "generated"))


def sample_wer(record: dict) -> float | None:
    """A record's own WER in percent (errors over reference words), or None without those fields."""
    errors, words = record.get("errors"), record.get("ref_words")
    if not isinstance(errors, (int, float)) or not isinstance(words, (int, float)):
        return None
    return 100.0 * errors / words if words else (100.0 if errors else 0.0)


def badness(record: dict) -> float:
    """How bad a sample is, for the worst-N: its WER, else 1 - correct, else 0."""
    wer = sample_wer(record)
    if wer is not None:
        return wer
    correct = record.get("correct")
    return 1.0 - float(correct) if isinstance(correct, (int, float)) else 0.0


def word_diff(ref: str, hyp: str) -> str:
    """The hypothesis against the reference as HTML: equal words plain, substitutions ``<span class=sub>`` with the
    reference word in its title, insertions ``<ins>``, deletions ``<del>`` (jiwer's word alignment)."""
    if not ref.strip() and not hyp.strip():
        return ""
    if not ref.strip():
        return " ".join(f"<ins>{html.escape(w)}</ins>" for w in hyp.split())
    out = jiwer.process_words(ref, hyp if hyp.strip() else "")
    refs, hyps = out.references[0], out.hypotheses[0]
    parts = []
    for chunk in out.alignments[0]:
        r, h = refs[chunk.ref_start_idx:chunk.ref_end_idx], hyps[chunk.hyp_start_idx:chunk.hyp_end_idx]
        if chunk.type == "equal":
            parts += [html.escape(w) for w in h]
        elif chunk.type == "substitute":
            parts += [f'<span class="sub" title="reference: {html.escape(a, quote=True)}">{html.escape(b)}</span>'
                      for a, b in zip(r, h)]
        elif chunk.type == "insert":
            parts += [f"<ins>{html.escape(w)}</ins>" for w in h]
        else:  # delete
            parts += [f"<del>{html.escape(w)}</del>" for w in r]
    return " ".join(parts)


def _link(target: str, base: Path, page_dir: Path) -> tuple[str, bool]:
    """(the href of an audio file relative to the page, whether the file exists); ``target`` is absolute or
    relative to ``base`` (the run folder for generated audio, the data root for inputs and prompts)."""
    path = Path(target)
    path = path if path.is_absolute() else base / path
    return Path(os.path.relpath(path.resolve(), page_dir.resolve())).as_posix(), path.is_file()


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _sample_row(task: str, record: dict, run_dir: Path, data_root: Path, page_dir: Path, why: str) -> str:
    """One ``<tr>`` of the samples table."""
    esc = html.escape
    ref = record.get("ref") if isinstance(record.get("ref"), str) else None
    hyp = record.get("hyp") if isinstance(record.get("hyp"), str) else None
    if ref is None and isinstance(record.get("question"), str):  # spoken QA: the question and its answers
        answers = record.get("answers") or []
        ref = f"{record['question']} → {' | '.join(map(str, answers))}"
    text = word_diff(ref or "", hyp) if hyp is not None else esc(str(record.get("response", "")))
    players = []
    for field, label in AUDIO_FIELDS:
        if isinstance(record.get(field), str):
            href, exists = _link(record[field], run_dir if field == "audio" else data_root, page_dir)
            state = "" if exists else ' data-missing="1"'
            players.append(f'<div class="player"><span>{esc(label)}</span><audio controls preload="metadata" '
                           f'src="{esc(href, quote=True)}"{state}></audio></div>')
    numbers = {"wer": sample_wer(record), **{k: record.get(k) for k in NUMBER_FIELDS if k != "wer"}}
    cells = "".join(f'<td class="num" data-key="{k}" data-value="{_number(v)}">{_number(v)}</td>'
                    for k, v in numbers.items())
    raw = record.get("hyp_raw")
    judge = f'<div class="raw">transcript: {esc(raw)}</div>' if isinstance(raw, str) else ""
    return (f'<tr data-task="{esc(task, quote=True)}"><td>{esc(task)}</td><td>{esc(why)}</td>'
            f'<td class="id">{esc(str(record.get("id", "")))}</td>'
            f'<td class="text"><div class="ref">{esc(ref or "")}</div><div class="hyp">{text}</div>{judge}</td>'
            f'<td>{"".join(players)}</td>{cells}</tr>')


def _task_section(run: Run, task: str) -> str:
    """The task's headline numbers and comparability verdict."""
    esc = html.escape
    entry = run.data["results"].get(task, {})
    verdict = (run.data.get("comparability") or {}).get(task) or {}
    shown = [(k, entry[k]) for k in (*HEADLINE, "mos", "scored", "listed", "errors") if k in entry] \
        or [(k, v) for k, v in entry.items() if isinstance(v, (int, float, str))][:8]
    numbers = "".join(f"<tr><th>{esc(k)}</th><td>{esc(json.dumps(v, ensure_ascii=False) if isinstance(v, list) else str(v))}</td></tr>"
                      for k, v in shown)
    if verdict.get("paper_comparable"):
        label = '<p class="ok">comparable with the paper</p>'
    else:
        reasons = "; ".join(map(str, verdict.get("reasons") or [])) or "no verdict recorded"
        label = f'<p class="no">not comparable with the paper: {esc(reasons)}</p>'
    return f'<section data-task="{esc(task, quote=True)}"><h2>{esc(task)}</h2>{label}<table class="head">{numbers}</table></section>'


def build_report(run_dir: str | Path, *, worst: int = 10, random_n: int = 10, seed: int = 0) -> Path:
    """Write ``RUN_DIR/report.html`` (see the module docstring) and return its path. Tasks with no samples file
    (not supported, dataset errors) get their headline section only."""
    run = load_run(run_dir)
    run_dir = run.dir
    page = run_dir / REPORT_NAME
    rng = random.Random(seed)
    data_root = Path(str(run.data.get("data_root") or "."))
    sections, rows = [], []
    tasks = sorted(run.data["results"])
    for task in tasks:
        sections.append(_task_section(run, task))
        if not run.samples_path(task).is_file():
            continue
        scored, _ = run.samples(task)
        records = list(scored.values())
        ranked = sorted(records, key=badness, reverse=True)
        picked = ranked[:worst]
        rest = ranked[worst:]
        extra = rng.sample(rest, min(random_n, len(rest)))
        rows += [_sample_row(task, r, run_dir, data_root, page.parent, f"worst {i + 1}") for i, r in enumerate(picked)]
        rows += [_sample_row(task, r, run_dir, data_root, page.parent, "random") for r in extra]
    model = html.escape(run.label)
    options = "".join(f'<option value="{html.escape(t, quote=True)}">{html.escape(t)}</option>' for t in tasks)
    heads = "".join(f'<th class="sortable" data-key="{k}">{k}</th>' for k in NUMBER_FIELDS)
    text = PAGE.format(title=f"most-eval report: {model}", model=model, options=options, sections="".join(sections),
                       heads=heads, rows="".join(rows), n=len(rows), command=html.escape(str(run.data.get("command") or "")))
    atomic_write_text(page, text)
    return page


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; }}
table.head th {{ text-align: left; background: #f4f4f4; }} .num {{ text-align: right; white-space: nowrap; }}
.sortable {{ cursor: pointer; background: #eef; }} .ok {{ color: #060; }} .no {{ color: #a40; }}
.sub {{ background: #fd6; }} ins {{ background: #bfb; text-decoration: none; }} del {{ background: #fbb; }}
.ref {{ color: #555; }} .raw {{ color: #777; font-size: 12px; }} .player span {{ font-size: 11px; color: #666; }}
audio {{ height: 28px; width: 220px; display: block; }} .id {{ font-family: monospace; font-size: 12px; }}
</style></head>
<body>
<h1>{model}</h1>
<p class="command">{command}</p>
{sections}
<h2>Samples</h2>
<p>Worst samples by each task's per-sample metric (WER, else 1 - correct), then a random draw. Diff: <span class="sub">substituted</span>
(hover for the reference word), <ins>inserted</ins>, <del>deleted</del>.
Task: <select id="task-filter"><option value="">all tasks</option>{options}</select> · {n} samples · click a number column to sort</p>
<table id="samples"><thead><tr><th>task</th><th>why</th><th>id</th><th>reference / hypothesis</th><th>audio</th>
{heads}</tr></thead>
<tbody>{rows}</tbody></table>
<script>
(function () {{
  var errors = [];
  window.addEventListener("error", function (e) {{ errors.push(String(e.message)); document.documentElement.dataset.jsErrors = errors.join(" | "); }});
  var body = document.querySelector("#samples tbody"), filter = document.getElementById("task-filter");
  function show(task) {{
    Array.prototype.forEach.call(body.rows, function (r) {{ r.style.display = (!task || r.dataset.task === task) ? "" : "none"; }});
    Array.prototype.forEach.call(document.querySelectorAll("section[data-task]"), function (s) {{ s.style.display = (!task || s.dataset.task === task) ? "" : "none"; }});
  }}
  function sortBy(key, sign) {{  // sign 1: ascending, -1: descending; empty cells last either way
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {{
      var x = a.querySelector('td[data-key="' + key + '"]').dataset.value, y = b.querySelector('td[data-key="' + key + '"]').dataset.value;
      if (x === "" || y === "") return (x === "") - (y === "");
      return sign * (parseFloat(x) - parseFloat(y));
    }});
    rows.forEach(function (r) {{ body.appendChild(r); }});
  }}
  filter.addEventListener("change", function () {{ show(this.value); }});
  var direction = {{}};
  Array.prototype.forEach.call(document.querySelectorAll("th.sortable"), function (th) {{
    th.addEventListener("click", function () {{ var k = th.dataset.key; direction[k] = -(direction[k] || 1); sortBy(k, direction[k]); }});
  }});
  // the URL can say both: #task=<task>&sort=<column>:<asc|desc>
  location.hash.replace(/^#/, "").split("&").forEach(function (part) {{
    var kv = part.split("="), value;
    try {{ value = decodeURIComponent(kv[1] || ""); }} catch (e) {{ return; }}  // a malformed hash is ignored
    if (kv[0] === "task") {{ filter.value = value; show(value); }}
    if (kv[0] === "sort") {{
      var ks = value.split(":"), known = Array.prototype.some.call(document.querySelectorAll("th.sortable"), function (th) {{ return th.dataset.key === ks[0]; }});
      if (known) sortBy(ks[0], ks[1] === "desc" ? -1 : 1);
    }}
  }});
  var players = document.querySelectorAll("audio"), settled = 0;
  function settle(el, state) {{
    if (el.dataset.audioState) return;
    el.dataset.audioState = state;
    settled += 1;
    if (settled === players.length) document.documentElement.dataset.audioSettled = String(settled);
  }}
  Array.prototype.forEach.call(players, function (el) {{
    if (el.readyState >= 1) settle(el, el.duration > 0 ? "ok" : "empty");
    el.addEventListener("loadedmetadata", function () {{ settle(el, el.duration > 0 ? "ok" : "empty"); }});
    el.addEventListener("error", function () {{ settle(el, "error"); }});
  }});
  if (!players.length) document.documentElement.dataset.audioSettled = "0";
  document.documentElement.dataset.reportReady = "1";
}})();
</script>
</body></html>
"""
