"""torchrun with 2 gloo ranks gives the same results as one process, and survives a rank killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from conftest import read_jsonl

TASKS = "asr:librispeech-test-clean,slm:sblimp-dev"
SAMPLE_FILES = ("asr_librispeech-test-clean.jsonl", "slm_sblimp-dev.jsonl")


def _cmd(nproc: int, data_root, out) -> list[str]:
    run = ["run", "--model", "offline-baseline", "--tasks", TASKS, "--data-root", str(data_root),
           "--output", str(out), "--batch-size", "1", "--no-progress"]
    if nproc == 1:
        return [sys.executable, "-m", "most_eval", *run]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
            "-m", "most_eval", *run]


def _data_root(libri_root, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    os.symlink(libri_root / "LibriSpeech", root / "LibriSpeech")
    from conftest import MINI_SUITE

    os.symlink(MINI_SUITE / "sLM21-dataset", root / "sLM21-dataset")
    return root


def _results(out) -> dict:
    res = json.loads((out / "results.json").read_text())["results"]
    return {task: {k: v for k, v in r.items() if k not in ("seconds", "reused")} for task, r in res.items()}


def _samples(out) -> dict:
    return {name: sorted(json.dumps(r, sort_keys=True) for r in read_jsonl(out / "samples" / name))
            for name in SAMPLE_FILES}


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


@pytest.mark.slow
def test_two_ranks_equal_one_rank_and_resume_after_a_killed_rank(libri_root, tmp_path):
    data = _data_root(libri_root, tmp_path)
    one, two, killed = tmp_path / "one", tmp_path / "two", tmp_path / "killed"
    assert subprocess.run(_cmd(1, data, one), env=_env(), capture_output=True).returncode == 0
    proc = subprocess.run(_cmd(2, data, two), env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _results(two) == _results(one)
    assert _samples(two) == _samples(one)
    shards = sorted((two / "cache" / "asr_librispeech-test-clean").glob("*/rank*.jsonl"))
    assert [p.name for p in shards] == ["rank0.jsonl", "rank1.jsonl"]
    assert all(p.read_bytes().count(b"\n") == 6 for p in shards)  # 12 utterances, 6 per rank

    launcher = subprocess.Popen(_cmd(2, data, killed), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    rank1_file = None
    deadline = time.time() + 300
    while time.time() < deadline:
        found = list((killed / "cache" / "asr_librispeech-test-clean").glob("*/rank1.jsonl")) \
            if (killed / "cache").exists() else []
        if found and found[0].read_bytes().count(b"\n") >= 2:
            rank1_file = found[0]
            break
        time.sleep(0.05)
    assert rank1_file is not None, "rank 1 never wrote a record"
    victims = [p for p in psutil.Process(launcher.pid).children(recursive=True)
               if p.environ().get("RANK") == "1"]
    assert victims, "rank 1's process not found"
    victims[0].send_signal(signal.SIGKILL)
    launcher.wait(timeout=120)
    assert launcher.returncode != 0 and not (killed / "results.json").exists()

    again = subprocess.run(_cmd(2, data, killed), env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _results(killed) == _results(one)
    assert _samples(killed) == _samples(one)
