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

from pathlib import Path

from most_eval.report.leaderboard.collect import collect
from most_eval.report.leaderboard.html import render_html
from most_eval.report.leaderboard.markdown import render_markdown
from most_eval.report.leaderboard.plot import render_plot

def build_leaderboard(data_dir: str | Path, output_dir: str | Path, runs: tuple | list = ()) -> list[Path]:
    """Build the leaderboard from ``data_dir`` (``paper/*.csv`` + ``runs/**/*.json``) and the run folders ``runs``
    names into ``output_dir``.

    Writes ``<family>.md`` per family, ``index.html`` and ``plots/<family>.png``; returns the written paths (sorted).
    Raises :class:`most_eval.results.store.ResultsFileError` for a bad run file; nothing is written in that case.
    """
    tables = collect(data_dir, runs)  # validates every input before anything is written
    output_dir = Path(output_dir)
    outputs: dict[Path, bytes] = {}  # every output rendered first: a failure writes nothing, no page goes stale
    for t in tables:
        outputs[output_dir / f"{t.paper_table.key}.md"] = render_markdown(t).encode("utf-8")
        outputs[output_dir / "plots" / f"{t.paper_table.key}.png"] = render_plot(t)
    outputs[output_dir / "index.html"] = render_html(tables).encode("utf-8")
    for path, content in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return sorted(outputs)
