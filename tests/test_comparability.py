"""Comparable with the paper: results.json says, per task, whether its number was measured as the paper measured it,
and the leaderboard keeps the others apart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import MINI_SUITE, run_cli

from most_eval.report.leaderboard.build import build_leaderboard

REPO = Path(__file__).resolve().parents[1]
LIBRI = "asr:librispeech-test-clean"


def _doc(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_a_mini_suite_run_is_never_comparable_and_says_why(tmp_path):
    out = tmp_path / "mini"
    proc = run_cli("run", "--model", "dummy", "--tasks", "asr,tts,slm,sqa", "--judge", "dummy", "--output", str(out),
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr
    doc = _doc(out)
    assert set(doc["comparability"]) == set(doc["results"]) and len(doc["results"]) >= 10
    for task, entry in doc["comparability"].items():
        assert entry["paper_comparable"] is False and entry["reasons"], task
        assert f"{task}: not comparable with the paper: {entry['reasons'][0]}" in proc.stderr
    assert "12 of the official 2,620 samples" in doc["comparability"][LIBRI]["reasons"]
    assert any("official sample count is not in the dataset manifest" in r
               for r in doc["comparability"]["slm:swuggy-dev"]["reasons"])
    assert doc["limit"] is None and doc["data_root"] == str(MINI_SUITE)
    # the runner records each task's declared paper cell: the leaderboard below places the numbers by it
    assert doc["tasks"][LIBRI]["leaderboard"] == {"table": "asr_tts_wer", "column": "librispeech_clean",
                                                  "row_task": "asr"}
    assert doc["tasks"]["slm:tstorycloze"]["leaderboard"] == {"table": "audio_lm_accuracy",
                                                              "column": "stopic_storycloze"}

    # the leaderboard built with it: every row of the run marked and drawn apart, never bold
    data = tmp_path / "board"
    shutil.copytree(REPO / "leaderboards" / "data" / "paper", data / "paper")
    (data / "runs" / "mini").mkdir(parents=True)
    shutil.copy(out / "results.json", data / "runs" / "mini" / "results.json")
    built = tmp_path / "built"
    build_leaderboard(data, built)
    for family in ("asr_tts", "spoken_lm", "spoken_qa"):
        text = (built / f"{family}.md").read_text()
        main, apart = text.split("\n## Runs not comparable with the paper\n", 1)
        assert "dummy (run" not in main.split("\n## ")[0], family
        apart = apart.split("\n## ", 1)[0]
        assert "mini (dummy) (run, not comparable)" in apart and "**" not in apart, family


def _full_size_librispeech(root: Path, n: int = 2620) -> list[tuple[str, str]]:
    """A LibriSpeech test-clean tree with the official count of tiny utterances (40 speakers)."""
    tone = (0.05 * np.sin(np.arange(160) / 4)).astype(np.float32)
    utts = []
    for s in range(40):
        speaker, chapter = 1000 + s, 2000 + s
        folder = root / "LibriSpeech" / "test-clean" / str(speaker) / str(chapter)
        folder.mkdir(parents=True)
        lines = []
        for u in range(n // 40 + (1 if s < n % 40 else 0)):
            uid = f"{speaker}-{chapter}-{u:04d}"
            sf.write(folder / f"{uid}.flac", tone, 16000)
            text = f"WORD {s} NUMBER {u}"
            lines.append(f"{uid} {text}")
            utts.append((uid, text))
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return utts


@pytest.mark.slow
def test_a_full_size_librispeech_scored_by_precomputed_is_comparable(tmp_path):
    utts = _full_size_librispeech(tmp_path / "data")
    assert len(utts) == 2620
    pre = tmp_path / "pre"
    pre.mkdir()
    (pre / "asr_librispeech-test-clean.jsonl").write_text(
        "".join(json.dumps({"id": uid, "text": text.lower()}) + "\n" for uid, text in utts))
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "precomputed", "--model-args", f"dir={pre}", "--tasks", LIBRI,
                   "--data-root", str(tmp_path / "data"), "--output", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    doc = _doc(out)
    assert doc["results"][LIBRI]["scored"] == 2620 and doc["results"][LIBRI]["wer"] == 0.0
    assert doc["comparability"][LIBRI] == {
        "paper_comparable": True, "reasons": [],
        "notes": ["official sample count 2,620: LibriSpeech test-clean: 2,620 utterances (OpenSLR SLR12; Panayotov "
                  "et al. 2015, Table 1)"],
        "metrics": {"wer": {"paper_comparable": True, "reasons": []}}}
    assert doc["results"][LIBRI]["normalizer"].startswith("whisper-normalizer ")  # with the installed version
    assert "not comparable" not in proc.stderr

    # the same run with --limit is not
    limited = tmp_path / "limited"
    proc = run_cli("run", "--model", "precomputed", "--model-args", f"dir={pre}", "--tasks", LIBRI,
                   "--data-root", str(tmp_path / "data"), "--output", str(limited), "--limit", "100", "--no-progress")
    reasons = _doc(limited)["comparability"][LIBRI]["reasons"]
    assert reasons == ["--limit 100", "100 of the official 2,620 samples"]
