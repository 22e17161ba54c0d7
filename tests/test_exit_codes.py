"""Exit codes say when nothing was measured, and values that cannot work are refused before any model loads.

0: every task measured something (partial errors keep 0, with their warning line); 1: a task measured nothing (every
sample an error record, a dataset error, a scoring error), whatever the flags; 2: a value that cannot work, in one
line, before the model (here a checkpoint that does not exist) is touched.
"""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import MINI_SUITE, run_cli

ASR = "asr:librispeech-test-clean"


def _librispeech(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(MINI_SUITE / "LibriSpeech", data / "LibriSpeech")
    return data


def test_a_task_whose_every_sample_failed_exits_1_without_flags(tmp_path):
    data = _librispeech(tmp_path)
    for flac in (data / "LibriSpeech").rglob("*.flac"):
        flac.write_bytes(b"not audio")
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "dummy", "--tasks", ASR, "--data-root", str(data), "--output", str(out),
                   "--no-progress")
    assert proc.returncode == 1, proc.stderr
    assert f"1 task(s) measured nothing: {ASR}: no sample was scored (12 error record(s))" in proc.stderr
    res = json.loads((out / "results.json").read_text())["results"][ASR]
    assert res["scored"] == 0 and res["errors"] == res["listed"] == 12  # written all the same


def test_a_dataset_error_exits_1_and_partial_errors_exit_0_with_the_warning(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "dummy", "--tasks", f"{ASR},asr:voxpopuli-en", "--data-root",
                   str(_librispeech(tmp_path)), "--output", str(out), "--no-progress")
    assert proc.returncode == 1 and "task(s) measured nothing: asr:voxpopuli-en: dataset error" in proc.stderr
    data = _librispeech(tmp_path / "partial")
    next((data / "LibriSpeech").rglob("*.flac")).write_bytes(b"not audio")
    proc = run_cli("run", "--model", "dummy", "--tasks", ASR, "--data-root", str(data), "--output",
                   str(tmp_path / "partial-out"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "measured nothing" not in proc.stderr and "scored 11 of 12" in proc.stdout


def _refused(tmp_path, *args):
    proc = run_cli("run", "--model", "most", "--model-args", f"checkpoint={tmp_path / 'no-ckpt'}",
                   "--output", str(tmp_path / "out"), "--no-progress", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "no-ckpt" not in proc.stderr  # refused before the model was looked at
    return proc.stderr


def test_an_unknown_lm_eval_task_is_refused_before_the_model_loads(tmp_path):
    err = _refused(tmp_path, "--tasks", "text:arc_eazy")
    assert "text:arc_eazy: lm-eval has no task 'arc_eazy'" in err and "did you mean arc_easy" in err
    err = _refused(tmp_path, "--tasks", "text:no_such_task_here", "--task-args", f"include_path={tmp_path}")
    assert f"nor in --task-args include_path={tmp_path}" in err


@pytest.mark.parametrize("args,named", [
    (["--model_args", "x=1"], "--model-args and --model_args given"),
    (["--output_path", "elsewhere"], "--output and --output_path given"),
    (["--seed", "1", "--seed", "2"], "--seed twice given"),
    (["--batch-size=2", "--batch_size=3"], "--batch-size and --batch_size given"),
    (["--progress"], "--no-progress and --progress given"),
])
def test_one_option_given_twice_is_refused(tmp_path, args, named):
    err = _refused(tmp_path, "--tasks", ASR, *args)
    assert named in err and "give the option once" in err


def test_a_value_that_looks_like_an_option_is_not_counted_as_one(tmp_path):
    """``--task-args`` takes the next word whatever it looks like; click does the same."""
    err = _refused(tmp_path, "--tasks", ASR, "--judge-args", "--seed")
    assert "given: give the option once" not in err
