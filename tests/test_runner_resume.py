"""The runner survives SIGKILL at any moment: a re-run resumes with no sample lost or counted twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import read_jsonl, run_cli

from most_eval.run.cache import SampleCache

TASK = "asr:librispeech-test-clean"


def _cache_lines(out: Path) -> int:
    files = list((out / "cache").rglob("*.jsonl")) if (out / "cache").exists() else []
    return sum(f.read_bytes().count(b"\n") for f in files)


@pytest.mark.slow
def test_sigkill_mid_task_then_resume_equals_uninterrupted(libri_root, tmp_path):
    args = ["run", "--model", "offline-baseline", "--tasks", TASK, "--data-root", str(libri_root),
            "--batch-size", "1", "--no-progress"]
    full = tmp_path / "full"
    assert run_cli(*args, "--output", str(full)).returncode == 0

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "most_eval", *args, "--output", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _cache_lines(killed) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; make the task longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _cache_lines(killed)
    assert 4 <= partial < 12
    assert not (killed / "results.json").exists()

    resumed = run_cli(*args, "--output", str(killed))
    assert resumed.returncode == 0, resumed.stderr

    a = json.loads((full / "results.json").read_text())["results"][TASK]
    b = json.loads((killed / "results.json").read_text())["results"][TASK]
    for key in ("wer", "substitutions", "deletions", "insertions", "ref_words", "scored", "listed"):
        assert a[key] == b[key], key
    ids_full = [r["id"] for r in read_jsonl(full / "samples" / "asr_librispeech-test-clean.jsonl")]
    ids_resumed = [r["id"] for r in read_jsonl(killed / "samples" / "asr_librispeech-test-clean.jsonl")]
    assert len(ids_resumed) == len(set(ids_resumed)) == 12
    assert sorted(ids_full) == sorted(ids_resumed)
    # the resumed run did only the remaining samples: the cache holds each id once
    assert _cache_lines(killed) == 12


def _rec(sid: str, v: int, model: str = "m1", task: str = "t1") -> str:
    return json.dumps({"id": sid, "v": v, "cache": {"model": model, "task": task, "input": "k"}}) + "\n"


def test_cache_skips_torn_foreign_and_malformed_lines_and_the_first_usable_record_wins(tmp_path):
    from most_eval.run.cache import CacheStats, choose_records

    path = tmp_path / "c.jsonl"
    content = (_rec("a", 1) + _rec("b", 2) + _rec("a", 3) + _rec("b", 2)  # a conflicting and an identical duplicate
               + _rec("x", 9, model="other-model") + _rec("y", 9, task="other-task")  # another model / task config
               + '{"not": "a record"}\n' + '[1, 2]\n' + 'garbage\n'  # valid JSON that is no record, and junk
               + '{"id": "c", "v"')  # torn tail of a killed write
    path.write_text(content)
    cache = SampleCache(path, model="m1", task="t1")
    records = cache.load()
    assert [(r["id"], r["v"]) for r in records] == [("a", 1), ("b", 2), ("a", 3), ("b", 2)]  # in file order
    assert (cache.stats.malformed, cache.stats.foreign, cache.stats.torn) == (3, 2, 1)
    assert "3 malformed line(s) and 2 record(s) of another model" in cache.stats.warning()
    stats = CacheStats()
    chosen = choose_records(records, {"a": "k", "b": "k"}, lambda r: None, stats)
    assert {k: r["v"] for k, r in chosen.items()} == {"a": 1, "b": 2} and stats.conflicts == 1
    assert "cache: 1 conflicting record(s) ignored" in stats.warnings()
    # an unusable first record does not win: the next usable one does, and the unusable one is counted
    stats = CacheStats()
    chosen = choose_records(records, {"a": "k"}, lambda r: "v must be 3" if r["v"] != 3 else None, stats)
    assert chosen["a"]["v"] == 3 and stats.invalid == 1 and stats.conflicts == 0
    assert stats.warnings() == ["cache: 1 record(s) with an unusable output run again (first: a: v must be 3)"]
    assert choose_records(records, {"a": "other input"}, lambda r: None, CacheStats()) == {}  # stale input
    assert path.read_text() == content  # never truncated: a concurrent appender's lines would be cut
    cache.append([{"id": "c", "v": 4, "cache": cache.stamp("k")}])
    cache.close()
    again = SampleCache(path, model="m1", task="t1")
    assert again.load()[-1]["v"] == 4  # the new record starts on its own line after the torn one
    assert (again.stats.malformed, again.stats.torn) == (3, 1)  # the closed-off torn line is still known as torn


def test_results_json_is_complete_and_atomic(libri_root, tmp_path):
    out = tmp_path / "o"
    proc = run_cli("run", "--model", "dummy", "--model-args", "text=the cat sat on the mat", "--tasks", TASK,
                   "--data-root", str(libri_root), "--output", str(out), "--seed", "3", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["format"] == "most-eval-results" and doc["seed"] == 3
    assert doc["model"] == {"name": "dummy", "args": {"text": "the cat sat on the mat", "tone_hz": 220.0},
                            "fingerprint": doc["model"]["fingerprint"]}
    res = doc["results"][TASK]
    assert res["listed"] == res["scored"] == 12 and res["errors"] == 0
    assert 0 < res["wer"] < 100 and res["wer_ci95"][0] <= res["wer"] <= res["wer_ci95"][1]
    assert len(doc["tasks"][TASK]["dataset_sha256"]) == 64
    assert {"torch", "jiwer", "most-eval"} <= set(doc["versions"])
    assert "git_revision" in doc and doc["command"].startswith("most-eval run")
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    # the table on the terminal names the task and the metric
    assert TASK in proc.stdout and "wer" in proc.stdout and "scored 12 of 12" in proc.stdout


def test_cached_record_is_not_reused_when_the_transcript_changes(libri_root, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(libri_root / "LibriSpeech", data / "LibriSpeech")
    out = tmp_path / "out"
    args = ["run", "--model", "dummy", "--model-args", "text=hello", "--tasks", TASK, "--data-root", str(data),
            "--output", str(out), "--no-progress"]
    assert run_cli(*args).returncode == 0
    trans = next((data / "LibriSpeech" / "test-clean").rglob("*.trans.txt"))
    lines = trans.read_text().splitlines()
    uid = lines[0].split()[0]
    trans.write_text("\n".join([f"{uid} HELLO"] + lines[1:]) + "\n")
    assert run_cli(*args).returncode == 0
    record = {r["id"]: r for r in read_jsonl(out / "samples" / "asr_librispeech-test-clean.jsonl")}[uid]
    assert record["ref"] == "hello" and record["errors"] == 0


def test_a_duplicated_id_is_scored_once_and_reported(tmp_path):
    import shutil

    from conftest import MINI_SUITE

    data = tmp_path / "data"
    shutil.copytree(MINI_SUITE / "voxpopuli", data / "voxpopuli")
    tsv = data / "voxpopuli" / "transcribed_data" / "en" / "asr_test.tsv"
    lines = tsv.read_text().splitlines()
    tsv.write_text("\n".join(lines + [lines[1]]) + "\n")
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "dummy", "--tasks", "asr:voxpopuli-en", "--data-root", str(data),
                   "--output", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())["results"]["asr:voxpopuli-en"]
    assert (res["listed"], res["scored"], res["errors"]) == (5, 4, 1)
    records = read_jsonl(out / "samples" / "asr_voxpopuli-en.jsonl")
    dup = [r for r in records if "error" in r]
    assert len(dup) == 1 and "listed more than once" in dup[0]["error"]
    assert len([r for r in records if "error" not in r]) == len({r["id"] for r in records if "error" not in r}) == 4


def test_a_scoring_only_option_rescores_the_cache_without_running_the_model(tmp_path):
    out = tmp_path / "out"
    base = ["run", "--model", "dummy", "--tasks", "slm:sstorycloze", "--output", str(out), "--no-progress"]
    assert run_cli(*base).returncode == 0
    cache_files = list((out / "cache" / "slm_sstorycloze").rglob("rank0.jsonl"))
    before = [f.read_bytes() for f in cache_files]
    assert run_cli(*base, "--task-args", "reduction=sum").returncode == 0
    after = list((out / "cache" / "slm_sstorycloze").rglob("rank0.jsonl"))
    assert after == cache_files and [f.read_bytes() for f in after] == before  # nothing re-run, nothing added
    res = json.loads((out / "results.json").read_text())["results"]["slm:sstorycloze"]
    assert res["reduction"] == "sum" and res["scored"] == 6
