"""Hostile run folders, audio bombs and precomputed outputs of the wrong JSON type: each refused in one line, or
made an error record naming the file and the field, never a crash or a number scored from Python's text of a
value."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import MINI_SUITE, read_jsonl, run_cli

ASR = "asr:librispeech-test-clean"


@pytest.mark.parametrize("folder", ["samples", "cache", "audio", "zerospeech", "cache/asr_librispeech-test-clean"])
def test_a_symlink_inside_the_output_folder_pointing_out_is_refused_before_anything_is_written(tmp_path, folder):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    (out / folder).parent.mkdir(parents=True, exist_ok=True)
    (out / folder).symlink_to(outside, target_is_directory=True)
    proc = run_cli("run", "--model", "dummy", "--tasks", ASR, "--output", str(out), "--no-progress")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert f"{out / folder} is a symbolic link; a run writes only inside its output folder" in proc.stderr
    assert list(outside.iterdir()) == [] and not (out / "results.json").exists()


def test_a_symlinked_cache_file_is_refused_too(tmp_path):
    out = tmp_path / "out"
    assert run_cli("run", "--model", "dummy", "--tasks", ASR, "--output", str(out), "--no-progress").returncode == 0
    (cache,) = (out / "cache").rglob("rank0.jsonl")
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text("")
    cache.unlink()
    cache.symlink_to(elsewhere)
    proc = run_cli("run", "--model", "dummy", "--tasks", ASR, "--output", str(out), "--no-progress", "--no-cache")
    assert proc.returncode == 2 and f"{cache} is a symbolic link" in proc.stderr
    assert elsewhere.read_text() == ""


def _bomb_corpus(tmp_path: Path) -> Path:
    """The mini suite's LibriSpeech with one utterance replaced by a FLAC of 100,000 frames at 1 Hz (a few hundred
    bytes that claim 28 hours, 1.6 G samples once resampled to 16 kHz)."""
    data = tmp_path / "data"
    shutil.copytree(MINI_SUITE / "LibriSpeech", data / "LibriSpeech")
    victim = sorted((data / "LibriSpeech" / "test-clean").rglob("*.flac"))[0]
    sf.write(victim, np.zeros(100_000, dtype=np.float32), 1, format="FLAC")
    assert victim.stat().st_size < 30_000
    return data


def test_an_audio_bomb_is_an_error_record_and_the_run_goes_on(tmp_path):
    data = _bomb_corpus(tmp_path)
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "dummy", "--model-args", "text=hello", "--tasks", ASR, "--data-root", str(data),
                   "--output", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())["results"][ASR]
    assert res["errors"] == 1 and res["scored"] == res["listed"] - 1
    (error,) = [r for r in read_jsonl(out / "samples" / "asr_librispeech-test-clean.jsonl") if "error" in r]
    assert "audio is 100,000 s long (100,000 frames at 1 Hz), over the 600 s limit (--max-audio-seconds" \
        in error["error"] and error["error"].endswith("raises it)") and ".flac" in error["error"]


def test_max_audio_seconds_lowers_and_raises_the_cap(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(MINI_SUITE / "LibriSpeech", data / "LibriSpeech")
    out = tmp_path / "out"
    args = ["run", "--model", "dummy", "--tasks", ASR, "--data-root", str(data), "--output", str(out), "--no-progress"]
    proc = run_cli(*args, "--max-audio-seconds", "0.5")
    res = json.loads((out / "results.json").read_text())["results"][ASR]
    assert proc.returncode == 1 and res["errors"] == res["listed"] and res["scored"] == 0
    for bad in ("0", "-3", "inf", "nan"):
        proc = run_cli(*args, "--max-audio-seconds", bad)
        assert proc.returncode == 2 and "--max-audio-seconds" in proc.stderr, (bad, proc.stderr)


@pytest.mark.parametrize("value,named", [
    (None, "'text' must be a JSON string, got null"), (["a"], "got an array"), ({"a": 1}, "got an object"),
    (True, "got a bool (true)"), (42, "got a number (42)"),
])
def test_a_precomputed_text_of_another_json_type_is_an_error_record_naming_the_field(tmp_path, value, named):
    ids = [r["id"] for r in _first_run_ids(tmp_path)]
    folder = tmp_path / "pre"
    folder.mkdir()
    rows = [{"id": i, "text": value if n == 0 else "hello"} for n, i in enumerate(ids)]
    (folder / "asr_librispeech-test-clean.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "precomputed", "--model-args", f"dir={folder}", "--tasks", ASR,
                   "--output", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    records = {r["id"]: r for r in read_jsonl(out / "samples" / "asr_librispeech-test-clean.jsonl")}
    assert "error" in records[ids[0]] and named in records[ids[0]]["error"]
    assert f"entry for id {ids[0]}" in records[ids[0]]["error"] and "asr_librispeech-test-clean.jsonl" \
        in records[ids[0]]["error"]
    assert all("error" not in records[i] for i in ids[1:])


@pytest.mark.parametrize("value,named", [
    (True, "'score' is not a number: a bool (true)"), ("-3.5", "'score' is not a number: a string"),
    (None, "'score' is not a number: null"), ([1], "'score' is not a number: an array"),
])
def test_a_precomputed_score_must_be_a_json_number(tmp_path, value, named):
    task, stem = "slm:sstorycloze", "slm_sstorycloze"
    run_cli("run", "--model", "dummy", "--tasks", task, "--output", str(tmp_path / "ref"), "--no-progress")
    ids = [r["id"] for r in read_jsonl(next((tmp_path / "ref" / "cache" / stem).glob("*/rank0.jsonl")))]
    folder = tmp_path / "pre"
    folder.mkdir()
    rows = [{"id": i, "score": value if n == 0 else -1.0 - n} for n, i in enumerate(ids)]
    (folder / f"{stem}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "precomputed", "--model-args", f"dir={folder}", "--tasks", task,
                   "--task-args", "reduction=sum", "--output", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    errors = [r for r in read_jsonl(out / "samples" / f"{stem}.jsonl") if "error" in r]
    assert len(errors) == 1 and named in errors[0]["error"] and f"entry for id {ids[0]}" in errors[0]["error"]


def _first_run_ids(tmp_path: Path) -> list[dict]:
    out = tmp_path / "ids"
    assert run_cli("run", "--model", "dummy", "--tasks", ASR, "--output", str(out), "--no-progress").returncode == 0
    return read_jsonl(out / "samples" / "asr_librispeech-test-clean.jsonl")
