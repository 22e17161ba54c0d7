"""Stress: two runs started together on one --output, 20,000 tiny samples, ten times over.

Each time, either the second run is refused with a clear one-line message (the output lock) or, if the two did not
overlap, both finish; in every case no record is lost and the results equal those of a single clean run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

TASK = "slm:sstorycloze"
PAIRS = 10_000  # 20,000 wavs
REPEATS = 10


@pytest.fixture(scope="module")
def many_stories(tmp_path_factory) -> Path:
    """spoken-storycloze/sSC with 10,000 tiny pairs of different lengths (the dummy score is minus the duration)."""
    root = tmp_path_factory.mktemp("stress")
    folder = root / "spoken-storycloze" / "sSC"
    folder.mkdir(parents=True)
    tone = (0.1 * np.sin(np.arange(400) / 3)).astype(np.float32)
    for i in range(PAIRS):
        sf.write(folder / f"{i}_correct.wav", tone[:80 + i % 97], 16000, subtype="PCM_16")
        sf.write(folder / f"{i}_incorrect.wav", tone[:80 + (i * 7) % 101], 16000, subtype="PCM_16")
    return root


def _start(data: Path, out: Path, log: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "most_eval", "run", "--model", "dummy", "--tasks", TASK, "--data-root", str(data),
            "--output", str(out), "--no-progress", "--batch-size", "64"]
    with open(log, "w") as fh:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=fh, env={**os.environ, "COLUMNS": "200"})


def _outcome(out: Path) -> tuple[dict, str]:
    res = json.loads((out / "results.json").read_text())["results"][TASK]
    kept = {k: v for k, v in res.items() if k not in ("seconds", "reused")}
    return kept, (out / "samples" / "slm_sstorycloze.jsonl").read_text()


@pytest.mark.slow
def test_two_concurrent_runs_on_one_output_never_lose_records(many_stories, tmp_path):
    clean_out = tmp_path / "clean"
    clean = _start(many_stories, clean_out, tmp_path / "clean.log")
    assert clean.wait(timeout=600) == 0, (tmp_path / "clean.log").read_text()[-2000:]
    expected = _outcome(clean_out)
    assert expected[0]["scored"] == expected[0]["listed"] == 2 * PAIRS and expected[0]["errors"] == 0

    refused = 0
    for rep in range(REPEATS):
        out = tmp_path / f"out{rep}"
        logs = [tmp_path / f"r{rep}a.log", tmp_path / f"r{rep}b.log"]
        procs = [_start(many_stories, out, log) for log in logs]
        codes = [p.wait(timeout=600) for p in procs]
        errors = [log.read_text() for log in logs]
        assert sorted(codes) in ([0, 0], [0, 2]), (codes, errors)
        for code, err in zip(codes, errors):
            if code == 2:  # refused: one line that says why and who holds the folder
                refused += 1
                lines = err.strip().splitlines()
                assert len(lines) == 1 and "another most-eval run (pid" in lines[0] and str(out) in lines[0], err
        assert _outcome(out) == expected, f"repeat {rep}: the result differs from a single clean run"
    print(f"\nconcurrent runs: {REPEATS} repeats, {refused} second run(s) refused by the output lock")
