"""``most-eval report RUN_DIR`` (and ``run --report``): one self-contained page per run, opened in headless Chromium
with every audio player loaded, filters and sorting driven by the URL, and every text from the run escaped."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import soundfile as sf
from conftest import read_jsonl, run_cli
from test_leaderboard import chromium, run_chromium

from most_eval.report.html_report import word_diff

pytestmark = pytest.mark.slow
HOSTILE = '<script>alert("x")</script> & "quotes"'


class Page(HTMLParser):
    """The parts of report.html a test reads: audio sources and states, sample rows (task, style), script count."""

    def __init__(self, text: str):
        super().__init__()
        self.audio, self.rows, self.heads, self.scripts, self.html_attrs = [], [], [], 0, {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.html_attrs = a
        elif tag == "audio":
            self.audio.append(a)
        elif tag == "script":
            self.scripts += 1
        elif tag == "th" and "data-key" in a:
            self.heads.append(a["data-key"])
        elif tag == "tr" and "data-task" in a:
            self.rows.append({"task": a["data-task"], "style": a.get("style", ""), "cells": {}})
        elif tag == "td" and self.rows and "data-key" in a:
            self.rows[-1]["cells"][a["data-key"]] = a.get("data-value", "")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    proc = run_cli("run", "--model", "most", "--tasks",
                   "asr:librispeech-test-clean,tts:seed-tts-eval-en,sqa:llama-questions-s2s", "--output", str(out),
                   "--no-progress", "--report", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"report: {out / 'report.html'}" in proc.stderr
    return out


def test_word_diff_marks_substitutions_insertions_and_deletions():
    diff = word_diff("the cat sat on the mat", "the bat sat on mat")
    assert diff == 'the <span class="sub" title="reference: cat">bat</span> sat on <del>the</del> mat'
    assert word_diff("he said nothing", "he said nothing at all") == "he said nothing <ins>at</ins> <ins>all</ins>"
    assert word_diff("a <b>", "a <b> &") == "a &lt;b&gt; <ins>&amp;</ins>"


def test_report_opens_in_chromium_with_every_audio_player_loaded(run_dir, tmp_path):
    page_path = run_dir / "report.html"
    text = page_path.read_text()
    page = Page(text)
    assert all(list(r["cells"]) == page.heads for r in page.rows)  # each number under its own column head
    sources = [a["src"] for a in page.audio]
    # the ASR inputs, the TTS speaker prompts and generated speech, the S->S questions and spoken answers
    assert len(sources) >= 12 and not any(re.match(r"^[a-z]+:", s) or s.startswith("/") for s in sources)
    for src in sources:  # relative links that resolve to real, decodable audio
        info = sf.info(page_path.parent / src)
        assert info.frames > 0, src
    kinds = {a["src"].split("/")[0] for a in page.audio}
    assert "audio" in kinds and len(kinds) > 1  # generated audio under the run folder, inputs from the data root

    exe = chromium()
    proc = run_chromium(exe, tmp_path, "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0",
                        "--dump-dom", page_path.as_uri())
    dom = Page(proc.stdout)
    assert dom.html_attrs.get("data-report-ready") == "1", "the page's script did not run"
    assert "data-js-errors" not in dom.html_attrs
    assert not [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln and ("Uncaught" in ln or "Error" in ln)]
    assert dom.html_attrs.get("data-audio-settled") == str(len(sources))
    assert [a.get("data-audio-state") for a in dom.audio] == ["ok"] * len(sources)

    # the task filter and the sort, driven by the URL
    url = page_path.as_uri() + "#task=tts:seed-tts-eval-en&sort=dnsmos_ovrl:desc"
    dom = Page(run_chromium(exe, tmp_path, "--dump-dom", url).stdout)
    shown = [r for r in dom.rows if "none" not in r["style"]]
    assert shown and {r["task"] for r in shown} == {"tts:seed-tts-eval-en"}
    values = [float(r["cells"]["dnsmos_ovrl"]) for r in shown if r["cells"].get("dnsmos_ovrl")]
    assert values and values == sorted(values, reverse=True)

    # a malformed hash (bad percent-escape, unknown column) is ignored: the script still runs to the end
    dom = Page(run_chromium(exe, tmp_path, "--dump-dom", page_path.as_uri() + "#task=100%&sort=bogus:desc").stdout)
    assert dom.html_attrs.get("data-report-ready") == "1" and "data-js-errors" not in dom.html_attrs

    shot = tmp_path / "report.png"
    run_chromium(exe, tmp_path, f"--screenshot={shot}", "--window-size=1400,2400", page_path.as_uri())
    from matplotlib.image import imread

    assert imread(shot)[..., :3].std() > 0.05  # drawn, not blank


def test_report_escapes_every_text_and_names_the_worst_samples(run_dir, tmp_path):
    samples = run_dir / "samples" / "asr_librispeech-test-clean.jsonl"
    records = read_jsonl(samples)
    records[0]["hyp_raw"] = HOSTILE  # text from the run: what a model said
    samples.write_text("".join(json.dumps(r) + "\n" for r in records))
    proc = run_cli("report", str(run_dir), "--worst", "2", "--random", "1")
    assert proc.returncode == 0, proc.stderr
    text = (run_dir / "report.html").read_text()
    assert HOSTILE not in text and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in text
    page = Page(text)
    assert page.scripts == 1  # the page's own, nothing injected
    asr = [r for r in page.rows if r["task"] == "asr:librispeech-test-clean"]
    assert len(asr) == 3  # 2 worst + 1 random
    wers = [float(r["cells"]["wer"]) for r in asr[:2]]
    every = sorted((100.0 * r["errors"] / r["ref_words"] for r in records if "errors" in r), reverse=True)
    assert wers == pytest.approx(every[:2], abs=1e-3)

    missing = run_cli("report", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "nowhere" in missing.stderr and "Traceback" not in missing.stderr
