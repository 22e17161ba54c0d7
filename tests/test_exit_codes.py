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


def test_ctrl_c_says_what_is_saved_and_how_to_resume(libri_root, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    args = ["run", "--model", "offline-baseline", "--tasks", ASR, "--data-root", str(libri_root), "--batch-size", "1",
            "--output", str(out), "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "most_eval", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    cache = out / "cache" / "asr_librispeech-test-clean"
    while time.time() < deadline and proc.poll() is None and \
            sum(len(p.read_text().splitlines()) for p in cache.glob("*/rank0.jsonl")) < 2:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    (line,) = [line for line in err.splitlines() if line.startswith("interrupted:")]
    saved = int(line.split()[1])
    assert 2 <= saved < 12 and line == (f"interrupted: {saved} of 12 samples of {ASR} saved; re-run the same "
                                        f"command to resume")
    assert "Traceback" not in err and not (out / "results.json").exists()
    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    res = json.loads((out / "results.json").read_text())["results"][ASR]
    assert res["reused"] >= saved and res["scored"] == 12


def test_names_are_case_insensitive(tmp_path):
    proc = run_cli("run", "--model", "Dummy", "--tasks", "ASR:LibriSpeech-Test-Clean", "--output",
                   str(tmp_path / "out"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["model"]["name"] == "dummy" and list(doc["results"]) == [ASR]


def test_cuda_on_a_cpu_torch_is_one_line_with_the_way_out(tmp_path):
    import torch

    if torch.version.cuda:  # this torch has CUDA: what is checked is the other branch, on a CPU wheel
        err = _refused(tmp_path, "--tasks", ASR, "--device", "cuda:99")
        assert "CUDA GPU(s) visible" in err
    else:
        err = _refused(tmp_path, "--tasks", ASR, "--device", "cuda")
        assert f"--device cuda: this torch ({torch.__version__}) is built without CUDA; install a CUDA build with " \
               "`bash install.sh --gpu`" in err
    assert "--device gpu: use cpu, cuda, cuda:N or mps" in _refused(tmp_path, "--tasks", ASR, "--device", "gpu")


def test_results_files_take_the_umask_mode(tmp_path):
    """results.json and the samples files are written through a private temp file; they must still get the mode
    the umask gives any new file (027 here: 640), like the audio files beside them."""
    import os
    import stat
    import subprocess
    import sys

    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "most_eval", "run", "--model", "dummy", "--tasks", "asr,tts",
                           "--judge", "dummy", "--output", str(out), "--no-progress"],
                          capture_output=True, text=True, preexec_fn=lambda: os.umask(0o027), timeout=300)
    assert proc.returncode == 0, proc.stderr
    written = [out / "results.json", *sorted((out / "samples").glob("*.jsonl")), *sorted((out / "audio").rglob("*.wav"))]
    assert len(written) > 3
    for path in written:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640, path


def test_run_help_is_whole_at_80_columns():
    """At 80 columns the help wraps under each option instead of cutting names and defaults short."""
    proc = run_cli("run", "--help", env={"COLUMNS": "80"})
    assert proc.returncode == 0
    text = proc.stdout
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    for whole in ("--model-args, --model_args", "--output, --output_path", "--max-audio-seconds", "--no-cache",
                  "[default: 8]", "--fail-on-error"):
        assert whole in text, whole
    assert "600.0]" in text  # the --max-audio-seconds default, wrapped whole onto its own line


def test_tts_judging_has_a_progress_bar_of_its_own(tmp_path):
    """Judging and embedding generated speech take as long as making it: a bar of their own shows it advance."""
    proc = run_cli("run", "--model", "dummy", "--judge", "dummy", "--tasks", "tts:seed-tts-eval-en", "--output",
                   str(tmp_path / "out"), env={"FORCE_COLOR": "1", "COLUMNS": "100"})
    assert proc.returncode == 0, proc.stderr
    frames = proc.stderr.replace("\r", "\n")
    assert "tts:seed-tts-eval-en scoring" in frames and "4/4" in frames
    # while a batch is in the model, and while scoring, the bars name the sub-step
    assert "tts:seed-tts-eval-en · model: 4 in flight" in frames
    assert "tts:seed-tts-eval-en scoring · judge" in frames
    assert "tts:seed-tts-eval-en scoring · speaker embedder" in frames


def test_a_bar_with_nothing_left_to_run_is_finished_at_once():
    """A resumed task whose outputs are all cached gets a finished bar, labelled cached: its clock stops at once
    instead of running on (rich keeps the clock of a bar created complete running until the whole run ends)."""
    from rich.progress import TimeElapsedColumn

    from most_eval.run.runner import _model_bar, make_progress

    now = [0.0]
    progress = make_progress(enabled=False)
    progress.get_time = lambda: now[0]
    cached = _model_bar(progress, "asr:x", 5, 5)
    partly = _model_bar(progress, "asr:y", 5, 2)
    now[0] = 120.0
    by_id = {t.id: t for t in progress.tasks}
    assert by_id[cached].description == "asr:x · cached" and by_id[cached].finished
    clock = TimeElapsedColumn()  # the column the bar shows its time in
    assert by_id[cached].finished_time == 0.0 and str(clock.render(by_id[cached])) == "0:00:00"
    assert by_id[partly].description == "asr:y" and not by_id[partly].finished
    assert by_id[partly].completed == 2 and str(clock.render(by_id[partly])) == "0:02:00"
