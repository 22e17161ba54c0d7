"""Leaderboard build: paper numbers in every output, run mapping, reproducible bytes, bad inputs, headless Chromium."""

from __future__ import annotations

import csv
import json
import re
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer import Typer
from typer.testing import CliRunner

from most_eval.cli.reports import leaderboard_app
from most_eval.report.leaderboard.build import build_leaderboard
from most_eval.scoring.paper import PAPER_TABLES
from most_eval.report.leaderboard.plot import _COLOURS, _panels
from most_eval.report.leaderboard.collect import collect, place
from most_eval.registry import families
from most_eval.results.store import ResultsFileError, leaderboard_record, load_results

REPO = Path(__file__).resolve().parents[1]
LEADERBOARDS = REPO / "leaderboards"
DATA = LEADERBOARDS / "data"


# ------------------------------------------------------------------------------------------------------------ helpers

def paper_cells():
    """(family key, row keys, column, printed value) for every number of the three paper tables."""
    for f in PAPER_TABLES:
        with (DATA / "paper" / f.paper_csv).open(newline="") as fh:
            for rec in csv.DictReader(fh):
                for c in f.columns:
                    if rec[c].strip():
                        yield f.key, tuple(rec[k] for k in f.keys), c, rec[c].strip()


def md_table(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the first markdown table (bold markers removed)."""
    lines = [ln for ln in text.split("\n## ")[0].splitlines() if ln.startswith("|")]
    split = [[c.strip().replace("**", "") for c in ln.strip().strip("|").split(" | ")] for ln in lines]
    return split[0], split[2:]


def md_lookup(text: str, keys: tuple[str, ...], column: str) -> str:
    header, rows = md_table(text)
    matches = [r for r in rows if tuple(r[: len(keys)]) == keys]
    assert len(matches) == 1, (keys, matches)
    return matches[0][header.index(column)]


class Tables(HTMLParser):
    """table id -> {"head": [header texts], "rows": [[cell texts]]}; plus the <html> attributes."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.html_attrs: dict[str, str | None] = {}
        self._table = self._cell = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.html_attrs = a
        elif tag == "table":
            self._table = self.tables.setdefault(a.get("id") or f"t{len(self.tables)}", {"head": [], "rows": []})
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            key = "head" if not self._table["head"] else "rows"
            if key == "head":
                self._table["head"] = self._row
            else:
                self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse_html(text: str) -> Tables:
    p = Tables()
    p.feed(text)
    return p


def html_lookup(tables: Tables, family: str, keys: tuple[str, ...], column: str) -> str:
    t = tables.tables[family]
    matches = [r for r in t["rows"] if tuple(r[: len(keys)]) == keys]
    assert len(matches) == 1, (family, keys, matches)
    return matches[0][t["head"].index(column)]


def declared_cell(task: str) -> dict | None:
    """The paper cell the runner records for ``task``: its task class's declaration (None for unknown tasks)."""
    family = families().get(task.split(":", 1)[0])
    cls = family.tasks.get(task) if family else None
    return leaderboard_record(cls.leaderboard) if cls else None


def write_results(path: Path, model: str, results: dict, cells: dict | None = None, **extra) -> Path:
    """A results.json whose tasks are all paper-comparable unless ``comparability=`` says otherwise, with the paper
    cell of each task recorded as the runner records it (``cells`` overrides; a cell ``...`` is left out, as in
    files written before tasks declared theirs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    extra.setdefault("comparability", {t: {"paper_comparable": True, "reasons": []} for t in results})
    cells = {t: declared_cell(t) for t in results} | (cells or {})
    data = {"format": "most-eval-results", "format_version": 1,
            "model": {"name": model, "args": {}, "fingerprint": "0" * 16}, "results": results,
            "tasks": {t: {"config": {}, "dataset_sha256": "ab" * 32,
                          "samples_file": f"samples/{t.replace(':', '_')}.jsonl",
                          **({} if cells[t] is ... else {"leaderboard": cells[t]})} for t in results},
            "seed": 0, "git_revision": "0" * 40, "versions": {}, "created": "2026-01-01T00:00:00Z", **extra}
    path.write_text(json.dumps(data, indent=2))
    return path


RUN_RESULTS = {
    "asr:librispeech-test-clean": {"wer": 2.3456, "wer_ci95": [2.1, 2.6], "scored": 2620, "listed": 2620, "errors": 0},
    "asr:librispeech-test-other": {"wer": 4.5, "scored": 2939, "listed": 2939, "errors": 0},
    "tts:librispeech-test-clean": {"wer": 6.1, "sim": 0.6123, "judge": "whisper-large-v3", "embedder": "ecapa",
                                   "scored": 40, "listed": 40, "errors": 0},
    "slm:swuggy-dev": {"accuracy": 75.0, "accuracy_in_vocab": 80.25},
    "slm:sblimp-dev": {"accuracy": 60.0},
    "slm:tstorycloze": {"accuracy": 80.0},
    "slm:sstorycloze": {"accuracy": 66.0},
    "sqa:llama-questions-s2t": {"accuracy": 70.3333},
    "sqa:llama-questions-s2s": {"status": "not supported", "capability": "respond"},
    "asr:my-private-set": {"wer": 9.99},
}


def data_with_run(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(DATA / "paper", data / "paper")
    write_results(data / "runs" / "my-run" / "results.json", "my-model", RUN_RESULTS)
    return data


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("leaderboard")
    build_leaderboard(DATA, out)
    return out


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------------------- markdown

def test_every_paper_number_in_markdown(built):
    cells = list(paper_cells())
    assert len(cells) == 76 + 37 + 42  # asr/tts (Qwen2-Audio has no TTS numbers), spoken LM (AudioLM: 2 of 5), QA
    for family, keys, column, value in cells:
        text = (built / f"{family}.md").read_text()
        assert md_lookup(text, keys, column) == value, (family, keys, column)


def test_paper_copies_carry_source():
    for f in PAPER_TABLES:
        with (DATA / "paper" / f.paper_csv).open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert rows and all(r["source"] == f.source for r in rows)
        assert rows[-1]["model"] == "MoST"


def test_committed_outputs_are_current(built):
    for name in [f"{f.key}.md" for f in PAPER_TABLES] + ["index.html"]:
        assert (LEADERBOARDS / name).read_bytes() == (built / name).read_bytes(), (
            f"leaderboards/{name} is stale: run `most-eval leaderboard build`")
    # the committed plots show what a build draws now (pixels compared, not bytes: PNG encoders and font rasterisers
    # differ between matplotlib builds)
    from matplotlib.image import imread

    for f in PAPER_TABLES:
        committed, fresh = imread(LEADERBOARDS / "plots" / f"{f.key}.png"), imread(built / "plots" / f"{f.key}.png")
        assert committed.shape == fresh.shape, f"leaderboards/plots/{f.key}.png is stale"
        assert np.abs(committed[..., :3] - fresh[..., :3]).mean() < 0.01, f"leaderboards/plots/{f.key}.png is stale"


def bars_drawn(png: Path, kind: str) -> int:
    """How many bars of one colour (a ``_COLOURS`` kind) a plot shows: solid rectangles of exactly that colour,
    counted by their top-left corners (text is black, anti-aliased edges are not exactly the colour)."""
    from matplotlib.image import imread

    colour = _COLOURS[kind]
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    mask = np.abs(imread(png)[..., :3] - rgb).max(axis=-1) < 0.02
    above, left = np.zeros_like(mask), np.zeros_like(mask)
    above[1:], left[:, 1:] = mask[:-1], mask[:, :-1]
    return int((mask & ~above & ~left).sum())


def test_plots_draw_every_paper_number(built):
    """Each panel holds the table's numbers as printed (best at the top), and the PNG shows one bar per number: MoST's
    in blue, the other paper rows in grey, and no run bars when no run is in the data."""
    tables = {t.paper_table.key: t for t in collect(DATA)}
    for f in PAPER_TABLES:
        panels = dict(_panels(tables[f.key]))
        cells = [(keys, column, value) for key, keys, column, value in paper_cells() if key == f.key]
        for keys, column, value in cells:
            title = f"{keys[1].upper()} {column}" if "task" in f.keys else column
            (bar,) = [b for b in panels[title] if b[0] == keys[0]]
            assert (bar[1], bar[2], bar[3]) == (float(value), "most" if keys[0] == "MoST" else "paper", value)
        assert sum(len(bars) for bars in panels.values()) == len(cells)
        for bars in panels.values():
            values = [b[1] for b in bars]
            assert bars[-1][1] == (min(values) if f.lower_is_better else max(values))  # the top bar is the best
        png = built / "plots" / f"{f.key}.png"
        kinds = [b[2] for bars in panels.values() for b in bars]
        assert bars_drawn(png, "most") == kinds.count("most") > 0
        assert bars_drawn(png, "paper") == kinds.count("paper") > 0
        assert bars_drawn(png, "run") == 0


def test_runs_are_mapped_to_paper_columns(tmp_path):
    out = tmp_path / "out"
    build_leaderboard(data_with_run(tmp_path), out)
    asr = (out / "asr_tts.md").read_text()
    assert md_lookup(asr, ("my-model (run)", "asr"), "librispeech_clean") == "2.35"
    assert md_lookup(asr, ("my-model (run)", "asr"), "librispeech_other") == "4.50"
    assert md_lookup(asr, ("my-model (run)", "asr"), "voxpopuli") == ""
    assert md_lookup(asr, ("my-model (run)", "tts"), "librispeech_clean") == "6.10"
    assert md_lookup(asr, ("my-model (run)", "asr"), "source") == (
        "run: runs/my-run/results.json; scored/listed: librispeech_clean 2620/2620, librispeech_other 2939/2939")
    assert md_lookup(asr, ("MoST", "asr"), "librispeech_clean") == "2.0"  # paper rows unchanged
    lm = (out / "spoken_lm.md").read_text()
    assert md_lookup(lm, ("my-model (run)",), "swuggy") == "75.00"
    assert md_lookup(lm, ("my-model (run)",), "stopic_storycloze") == "80.00"
    assert md_lookup(lm, ("my-model (run)",), "average") == "70.25"  # (75 + 60 + 80 + 66) / 4
    qa = (out / "spoken_qa.md").read_text()
    assert md_lookup(qa, ("my-model (run)",), "llama_questions_s2t") == "70.33"
    assert md_lookup(qa, ("my-model (run)",), "llama_questions_s2s") == ""
    # details: unmapped tasks, secondary metrics and unsupported tasks are listed, not lost
    assert "| my-model | asr:my-private-set | wer | 9.99 |" in asr
    assert "not placed: results.json names no paper column for this task" in asr.split("asr:my-private-set")[1]
    assert "| my-model | tts:librispeech-test-clean | sim | 0.612 |" in asr
    assert "judge: whisper-large-v3" in asr
    assert "| my-model | slm:swuggy-dev | accuracy_in_vocab | 80.25 |" in lm
    assert "not supported" in qa
    html_tables = parse_html((out / "index.html").read_text())
    assert html_lookup(html_tables, "asr_tts", ("my-model (run)", "tts"), "librispeech_clean") == "6.10"
    # the plots draw the run's placed numbers as run bars: ASR clean/other and TTS clean; four columns and their
    # average; Llama Questions S2T
    for family, n in (("asr_tts", 3), ("spoken_lm", 5), ("spoken_qa", 1)):
        assert bars_drawn(out / "plots" / f"{family}.png", "run") == n, family


def md_section(text: str, title: str) -> str:
    """The markdown from the heading ``## title`` to the next heading."""
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_non_comparable_runs_are_drawn_apart_and_never_bold(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA / "paper", data / "paper")
    results = {"asr:librispeech-test-clean": {"wer": 0.0, "scored": 12, "listed": 12, "errors": 0},
               "asr:librispeech-test-other": {"wer": 3.0, "scored": 2939, "listed": 2939, "errors": 0},
               "slm:sstorycloze": {"accuracy": 99.0, "scored": 6, "listed": 6, "errors": 0}}
    why = ["12 of the official 2,620 samples"]
    write_results(data / "runs" / "mini" / "results.json", "tiny", results, comparability={
        "asr:librispeech-test-clean": {"paper_comparable": False, "reasons": why},
        "asr:librispeech-test-other": {"paper_comparable": True, "reasons": []}})  # sstorycloze: no record at all
    write_results(data / "runs" / "old" / "results.json", "old-file", {"slm:swuggy-dev": {"accuracy": 99.9}},
                  comparability=None)  # a results.json from before the comparability block
    out = tmp_path / "out"
    build_leaderboard(data, out)
    asr = (out / "asr_tts.md").read_text()
    main_rows = [r[0] for r in md_table(asr)[1]]
    assert "tiny (run)" in main_rows and "tiny (run, not comparable)" not in main_rows
    assert md_lookup(asr, ("tiny (run)", "asr"), "librispeech_other") == "3.00"
    assert md_lookup(asr, ("tiny (run)", "asr"), "librispeech_clean") == ""  # never in the paper's column
    apart = md_section(asr, "Runs not comparable with the paper")
    assert "| tiny (run, not comparable) | asr | 0.00 |" in apart and "**" not in apart  # 0.00 WER, yet not bold
    assert "**1.8**" in asr  # the paper's best test-clean WER keeps its bold
    assert "| 12/12 | no: 12 of the official 2,620 samples |" in asr
    lm = (out / "spoken_lm.md").read_text()
    assert not [r for r in md_table(lm)[1] if "(run" in r[0]]
    apart_lm = md_section(lm, "Runs not comparable with the paper")
    assert "tiny (run, not comparable)" in apart_lm and "old-file (run, not comparable)" in apart_lm
    assert "**" not in apart_lm and "no: results.json has no comparability record" in lm
    tables = parse_html((out / "index.html").read_text()).tables
    assert not [r for r in tables["asr_tts"]["rows"] if "not comparable" in r[0]]
    assert html_lookup(parse_html((out / "index.html").read_text()), "asr_tts-apart",
                       ("tiny (run, not comparable)", "asr"), "librispeech_clean") == "0.00"
    assert 'class="num best"' not in (out / "index.html").read_text().split('id="asr_tts-apart"')[1].split(
        "</table>")[0]


def test_html_in_run_names_is_escaped_in_markdown_and_page(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA / "paper", data / "paper")
    evil, judge = "<img src=x onerror=alert(1)>", "<script>alert(2)</script>"
    results = {"asr:librispeech-test-clean": {"wer": 2.5}, "tts:librispeech-test-clean": {"wer": 6.1, "judge": judge},
               "slm:swuggy-dev": {"accuracy": 75.0}, "sqa:llama-questions-s2t": {"accuracy": 70.0}}
    write_results(data / "runs" / "<b>run</b>" / "results.json", evil, results)
    out = tmp_path / "out"
    build_leaderboard(data, out)
    for name in [f"{f.key}.md" for f in PAPER_TABLES] + ["index.html"]:
        text = (out / name).read_text()
        for raw in (evil, judge, "<b>run</b>"):
            assert raw not in text, (name, raw)
    asr = (out / "asr_tts.md").read_text()
    escaped = "&lt;img src=x onerror=alert(1)&gt;"  # html.escape, as the page does
    assert md_lookup(asr, (f"{escaped} (run)", "asr"), "librispeech_clean") == "2.50"
    assert md_lookup(asr, (f"{escaped} (run)", "asr"), "source") == "run: runs/&lt;b&gt;run&lt;/b&gt;/results.json"
    assert "judge: &lt;script&gt;alert(2)&lt;/script&gt;" in asr
    assert f"| {escaped} (run) |" in (out / "spoken_qa.md").read_text()
    page = parse_html((out / "index.html").read_text())  # the page shows the name as text
    assert html_lookup(page, "asr_tts", (f"{evil} (run)", "asr"), "librispeech_clean") == "2.50"


def test_markdown_links_and_mathtext_in_run_names_stay_text(tmp_path):
    """A model name that is a markdown link stays text in the tables (no ``](javascript:`` link), and one in
    matplotlib's math syntax is drawn as typed: the plot does not crash, every output is written."""
    data = tmp_path / "data"
    shutil.copytree(DATA / "paper", data / "paper")
    link, math_name = "[x](javascript:alert(1))", r"$\undefinedmacro{$"
    for name, model in (("link", link), ("math", math_name)):
        write_results(data / "runs" / name / "results.json", model, {"asr:librispeech-test-clean": {"wer": 2.5},
                                                                     "slm:swuggy-dev": {"accuracy": 75.0}})
    out = tmp_path / "out"
    written = build_leaderboard(data, out)
    assert {p.name for p in written} >= {"asr_tts.md", "spoken_lm.md", "index.html", "asr_tts.png"}
    asr = (out / "asr_tts.md").read_text()
    assert not re.search(r"(?<!\\)\]\(javascript:", asr) and r"\[x\](javascript:alert(1)) (run)" in asr
    assert md_lookup(asr, (r"\[x\](javascript:alert(1)) (run)", "asr"), "librispeech_clean") == "2.50"
    assert md_lookup(asr, (math_name.replace("\\", "\\\\") + " (run)", "asr"), "librispeech_clean") == "2.50"
    assert (out / "plots" / "asr_tts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failing_output_writes_none(tmp_path, monkeypatch):
    """The outputs are rendered first and written together: when one cannot be rendered, no file is written (no page
    is left stale beside new tables)."""
    from most_eval.report.leaderboard import build

    def broken(table):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(build, "render_plot", broken)
    with pytest.raises(RuntimeError, match="plot failed"):
        build_leaderboard(data_with_run(tmp_path), tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


def test_tasks_declare_each_paper_column_once():
    """The paper cells come from the task classes (Task.leaderboard): every column of every table (the computed
    spoken-LM average aside) is declared by exactly one task, per row task for the ASR/TTS table."""
    declared = {}
    for family in families().values():
        for name, cls in family.tasks.items():
            if cls.leaderboard is not None:
                cell = place(cls.leaderboard)
                assert not isinstance(cell, str), (name, cell)
                key = (cell[0].key, cell[1], cell[2])
                assert key not in declared, (name, declared.get(key))
                declared[key] = name
    want = {(f.key, row_task, c) for f in PAPER_TABLES for c in f.columns if c != "average"
            for row_task in (("asr", "tts") if "task" in f.keys else (None,))}
    assert set(declared) == want
    assert declared[("asr_tts", "tts", "voxpopuli")] == "tts:voxpopuli-en"
    assert declared[("spoken_lm", None, "stopic_storycloze")] == "slm:tstorycloze"
    assert declared[("spoken_qa", None, "triviaqa_s2s")] == "sqa:triviaqa-s2s"


def test_runs_are_placed_by_their_recorded_cell_not_their_name(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA / "paper", data / "paper")
    results = {"asr:my-librispeech-copy": {"wer": 3.25}, "asr:librispeech-test-clean": {"wer": 2.5},
               "slm:swuggy-dev": {"accuracy": 70.0}, "sqa:triviaqa-s2t": {"accuracy": 40.0}}
    cells = {"asr:my-librispeech-copy": {"table": "asr_tts_wer", "column": "librispeech_other", "row_task": "asr"},
             "asr:librispeech-test-clean": ...,  # a results.json from before tasks declared their cells
             "slm:swuggy-dev": {"table": "audio_lm_accuracy", "column": "no_such_column"},
             "sqa:triviaqa-s2t": {"table": "asr_tts_wer", "column": "voxpopuli"}}  # no row task for that table
    write_results(data / "runs" / "r" / "results.json", "m", results, cells=cells)
    out = tmp_path / "out"
    build_leaderboard(data, out)
    asr = (out / "asr_tts.md").read_text()
    assert md_lookup(asr, ("m (run)", "asr"), "librispeech_other") == "3.25"
    assert md_lookup(asr, ("m (run)", "asr"), "librispeech_clean") == ""
    assert "| m | asr:librispeech-test-clean | wer | 2.50 |" in asr
    assert "not placed: results.json names no paper column for this task" in asr
    lm, qa = (out / "spoken_lm.md").read_text(), (out / "spoken_qa.md").read_text()
    assert not [r for r in md_table(lm)[1] if "(run" in r[0]] and "| m | slm:swuggy-dev | accuracy | 70.00 |" in lm
    assert "not placed: audio_lm_accuracy/no_such_column is not a column of a paper table" in lm
    assert "| m | sqa:triviaqa-s2t | accuracy | 40.00 |" in qa and "not placed: asr_tts_wer rows need a task" in qa
    assert not [r for r in md_table(qa)[1] if "(run" in r[0]]
    # a malformed cell is a bad results file, named in one line
    write_results(data / "runs" / "bad" / "results.json", "m", {"slm:sblimp-dev": {"accuracy": 1.0}},
                  cells={"slm:sblimp-dev": "sblimp"})
    with pytest.raises(ResultsFileError, match=r"bad/results\.json: tasks\['slm:sblimp-dev'\]\.leaderboard is not"):
        build_leaderboard(data, tmp_path / "out2")


# ------------------------------------------------------------------------------------------------- reproducibility

def test_byte_identical_rebuild(tmp_path):
    data = data_with_run(tmp_path)
    build_leaderboard(data, tmp_path / "a")
    build_leaderboard(data, tmp_path / "b")
    a, b = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "b")
    assert sorted(a) == ["asr_tts.md", "index.html", "plots/asr_tts.png", "plots/spoken_lm.png", "plots/spoken_qa.png",
                         "spoken_lm.md", "spoken_qa.md"]
    assert a == b
    # A fresh interpreter with another hash seed, time zone and working directory gives the same bytes.
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "Asia/Tokyo", "MPLBACKEND": "Agg"}
    code = ("import sys; from most_eval.report.leaderboard.build import build_leaderboard; "
            "build_leaderboard(sys.argv[1], sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(data), str(tmp_path / "c")], check=True, env=env, cwd=tmp_path)
    assert tree_bytes(tmp_path / "c") == a


# ------------------------------------------------------------------------------------------------------ bad inputs

@pytest.mark.parametrize("kind", ["truncated", "foreign", "empty", "wrong-version"])
def test_bad_results_file_one_line(tmp_path, kind):
    data = data_with_run(tmp_path)
    bad = data / "runs" / "bad.json"
    good = (data / "runs" / "my-run" / "results.json").read_text()
    content, reason = {
        "truncated": (good[: len(good) // 3], "truncated JSON"),
        "foreign": (json.dumps({"results": {"hellaswag": {"acc": 0.3}}, "versions": {}}),
                    "not a most-eval results file"),
        "empty": ("", "empty file"),
        "wrong-version": (good.replace('"format_version": 1', '"format_version": 9'), "unsupported format_version"),
    }[kind]
    bad.write_text(content)
    out = tmp_path / "out"
    with pytest.raises(ResultsFileError) as exc:
        build_leaderboard(data, out)
    msg = str(exc.value)
    assert msg.startswith(str(bad) + ": ") and reason in msg and "\n" not in msg
    assert not out.exists()  # nothing written
    app = Typer()
    app.add_typer(leaderboard_app, name="leaderboard")
    res = CliRunner().invoke(app, ["leaderboard", "build", "--data", str(data), "--output", str(out)])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [f"error: {msg}"]


def test_load_results_accepts_contract(tmp_path):
    path = write_results(tmp_path / "r.json", "m", RUN_RESULTS)
    assert load_results(path)["model"]["name"] == "m"


def test_cli_build(tmp_path):
    app = Typer()
    app.add_typer(leaderboard_app, name="leaderboard")
    res = CliRunner().invoke(app, ["leaderboard", "build", "--data", str(data_with_run(tmp_path)),
                                   "--output", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "index.html").exists() and "index.html" in res.stdout


def test_cli_build_refuses_unusable_paths(tmp_path):
    app = Typer()
    app.add_typer(leaderboard_app, name="leaderboard")
    data = data_with_run(tmp_path)
    a_file = tmp_path / "a_file"
    a_file.write_text("keep")
    cases = [(["--data", str(data), "--output", str(a_file)], f"--output {a_file}: not a directory"),
             (["--data", str(data), "--output", str(a_file / "out")], f"--output {a_file / 'out'}: {a_file} is not a "
                                                                      "directory"),
             (["--data", str(a_file), "--output", str(tmp_path / "out")], f"--data {a_file}: not a directory")]
    for args, why in cases:
        res = CliRunner().invoke(app, ["leaderboard", "build", *args])
        assert res.exit_code == 2, res.output
        assert res.stderr.strip().splitlines() == [f"error: {why}"]
    assert a_file.read_text() == "keep" and not (tmp_path / "out").exists()
    # an output file that cannot be written (a folder in its place) is one line too, not a traceback
    out = tmp_path / "out"
    (out / "asr_tts.md").mkdir(parents=True)
    res = CliRunner().invoke(app, ["leaderboard", "build", "--data", str(data), "--output", str(out)])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1, res.output
    assert res.stderr.startswith("error: cannot write the leaderboard: ") and "asr_tts.md" in res.stderr


# ------------------------------------------------------------------------------------------------- headless browser

def chromium() -> str:
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        message = "headless Chromium not found (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; required when CI=true")
        pytest.skip(message)
    return exe


def run_chromium(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'chromium-profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True)


def test_html_in_headless_chromium(built, tmp_path):
    exe = chromium()
    url = (built / "index.html").as_uri()
    dom = run_chromium(exe, tmp_path, "--dump-dom", url).stdout
    page = parse_html(dom)
    assert page.html_attrs.get("data-sort-ready") == "1", "the page's script did not run"
    for family, keys, column, value in paper_cells():
        assert html_lookup(page, family, keys, column) == value, (family, keys, column)

    # the sort script, driven by the URL: best first, empty cells last
    page = parse_html(run_chromium(exe, tmp_path, "--dump-dom", url + "#sort=asr_tts:librispeech_clean:asc").stdout)
    rows = page.tables["asr_tts"]["rows"]
    values = [r[2] for r in rows]
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers) and values[-1] == "" and values.index("") == len(numbers)
    page = parse_html(run_chromium(exe, tmp_path, "--dump-dom", url + "#sort=spoken_lm:swuggy:desc").stdout)
    assert [r[0] for r in page.tables["spoken_lm"]["rows"]][:2] == ["MoST", "LLaMA-Omni2"]

    shot = tmp_path / "page.png"
    run_chromium(exe, tmp_path, f"--screenshot={shot}", "--window-size=1400,3000", url)
    from matplotlib.image import imread

    img = imread(shot)
    assert img.shape[:2] == (3000, 1400)
    assert img[..., :3].std() > 0.05  # not a blank page: tables and plots were drawn
