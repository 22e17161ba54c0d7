"""Bad input never crashes a run or vanishes: each broken sample becomes an error record naming file and reason."""

from __future__ import annotations

import json
import shutil

import numpy as np
import soundfile as sf
from conftest import MINI_SUITE, espeak, read_jsonl, run_cli

TASK = "asr:librispeech-test-clean"


def _make_broken_tree(root):
    folder = root / "LibriSpeech" / "test-clean" / "1089" / "100"
    folder.mkdir(parents=True)
    good = espeak("THE CAT SAT ON THE MAT")
    sf.write(folder / "1089-100-0000.flac", good, 16000)  # fine
    (folder / "1089-100-0001.flac").write_bytes(b"not audio at all" * 64)  # corrupt
    sf.write(folder / "1089-100-0002.wav", np.zeros(0, dtype=np.float32), 16000)
    (folder / "1089-100-0002.wav").rename(folder / "1089-100-0002.flac")  # empty (a 0-sample file)
    nan = good.copy()
    nan[100:200] = np.nan
    sf.write(folder / "1089-100-0003.wav", nan, 16000, subtype="FLOAT")
    (folder / "1089-100-0003.wav").rename(folder / "1089-100-0003.flac")  # NaN-filled
    stereo8k = np.stack([good[::2], good[::2]], axis=1)
    sf.write(folder / "1089-100-0004.flac", stereo8k, 8000)  # 8 kHz stereo: converted, not an error
    # 0005: listed but missing; 0006: audio without a transcript line; 0007: a non-UTF-8 line
    sf.write(folder / "1089-100-0006.flac", good, 16000)
    lines = [b"1089-100-0000 THE CAT SAT ON THE MAT", b"1089-100-0001 THE CAT SAT ON THE MAT",
             b"1089-100-0002 THE CAT SAT ON THE MAT", b"1089-100-0003 THE CAT SAT ON THE MAT",
             b"1089-100-0004 THE CAT SAT ON THE MAT", b"1089-100-0005 THE CAT SAT ON THE MAT",
             b"1089-100-0007 THE CAT \xff\xfe SAT"]
    (folder / "1089-100.trans.txt").write_bytes(b"\n".join(lines) + b"\n")


def test_broken_samples_become_error_records(tmp_path):
    _make_broken_tree(tmp_path / "data")
    out = tmp_path / "out"
    args = ["run", "--model", "dummy", "--model-args", "text=the cat sat on the mat", "--tasks", TASK,
            "--data-root", str(tmp_path / "data"), "--output", str(out), "--no-progress"]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    records = {r["id"]: r for r in read_jsonl(out / "samples" / "asr_librispeech-test-clean.jsonl")}
    assert set(records) == {f"1089-100-000{i}" for i in range(8)}  # nothing dropped
    reasons = {i: records[f"1089-100-000{i}"].get("error", "") for i in range(8)}
    assert "1089-100-0001.flac" in reasons[1] and "cannot decode" in reasons[1]
    assert "1089-100-0002.flac" in reasons[2] and ("empty" in reasons[2] or "decode" in reasons[2])
    assert "1089-100-0003.flac" in reasons[3] and "NaN" in reasons[3]
    assert "1089-100-0005.flac" in reasons[5] and "not found" in reasons[5]
    assert "1089-100-0006.flac" in reasons[6] and "no transcript" in reasons[6]
    assert "trans.txt:7" in reasons[7] and "UTF-8" in reasons[7]
    assert reasons[0] == "" and reasons[4] == ""  # 8 kHz stereo is resampled and down-mixed, then scored
    assert records["1089-100-0004"]["errors"] == 0
    res = json.loads((out / "results.json").read_text())["results"][TASK]
    assert (res["scored"], res["listed"], res["errors"]) == (2, 8, 6)
    assert "scored 2 of 8 listed samples; 6 error record(s)" in proc.stdout

    failing = run_cli(*args, "--fail-on-error")
    assert failing.returncode == 1
    assert "6 sample(s) had errors" in failing.stderr


def test_manifest_path_escaping_the_root_is_an_error_record(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(MINI_SUITE / "cv-corpus-15.0-2023-09-08", data / "cv-corpus-15.0-2023-09-08")
    secret = tmp_path / "secret.mp3"
    shutil.copy(next((data / "cv-corpus-15.0-2023-09-08" / "en" / "clips").glob("*.mp3")), secret)
    tsv = data / "cv-corpus-15.0-2023-09-08" / "en" / "test.tsv"
    lines = tsv.read_text().splitlines()
    fields = lines[1].split("\t")
    fields[1] = "../../../secret.mp3"
    tsv.write_text("\n".join(lines + ["\t".join(fields)]) + "\n")
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "dummy", "--tasks", "asr:commonvoice-en", "--data-root", str(data),
                   "--output", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    errors = [r for r in read_jsonl(out / "samples" / "asr_commonvoice-en.jsonl") if "error" in r]
    assert len(errors) == 1 and "escapes the dataset root" in errors[0]["error"] and "test.tsv:6" in errors[0]["error"]


def test_unknown_names_and_options_are_one_line_errors(tmp_path):
    bad_task = run_cli("run", "--model", "dummy", "--tasks", "asr:librispeech-test-clen", "--no-progress")
    assert bad_task.returncode == 2
    assert bad_task.stderr.strip().count("\n") == 0
    assert "unknown task 'asr:librispeech-test-clen'" in bad_task.stderr and "asr:librispeech-test-clean" in bad_task.stderr
    bad_model = run_cli("run", "--model", "ofline-baseline", "--tasks", "asr", "--no-progress")
    assert bad_model.returncode == 2 and "did you mean offline-baseline" in bad_model.stderr
    bad_arg = run_cli("run", "--model", "dummy", "--model-args", "txt=hi", "--tasks", "asr", "--no-progress")
    assert bad_arg.returncode == 2 and "unknown --model-args key for dummy 'txt'" in bad_arg.stderr
    missing = run_cli("run", "--model", "dummy", "--tasks", "asr:voxpopuli-en", "--data-root", str(tmp_path),
                      "--output", str(tmp_path / "o"), "--no-progress")
    # a data root with none of the selected datasets: said before any model loads, exit 1 (nothing measurable)
    assert missing.returncode == 1 and missing.stderr.strip().count("\n") == 0
    assert f"--data-root {tmp_path} holds none of the selected tasks' datasets (expected voxpopuli/)" \
        in missing.stderr and "most-eval data download" in missing.stderr
    assert not (tmp_path / "o" / "results.json").exists()


def test_unsupported_capability_is_reported_and_strict_fails(tmp_path):
    args = ["run", "--model", "offline-baseline", "--tasks", "sqa:llama-questions-s2t", "--output",
            str(tmp_path / "o"), "--no-progress"]
    proc = run_cli(*args)
    assert proc.returncode == 0
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["results"]["sqa:llama-questions-s2t"] == {"status": "not supported", "capability": "respond"}
    assert "not supported" in proc.stdout
    assert run_cli(*args, "--strict").returncode == 1


def test_a_bootstrap_that_cannot_finish_is_refused_before_the_model_loads(tmp_path):
    """``--task-args bootstrap=10**12`` would resample for days: refused (exit 2, one line) with the bound, before any
    model is built; the bound itself is accepted. ``compare --resamples`` has the same bound."""
    from most_eval.scoring.bootstrap import MAX_RESAMPLES

    huge = run_cli("run", "--model", "most", "--tasks", "asr:librispeech-test-clean", "--task-args",
                   "bootstrap=1000000000000", "--output", str(tmp_path / "o"), "--no-progress")
    assert huge.returncode == 2 and huge.stderr.strip().count("\n") == 0, huge.stderr
    assert f"bootstrap must be 0 to {MAX_RESAMPLES:,} resamples, got 1000000000000" in huge.stderr
    assert "bundled TINY checkpoint" not in huge.stderr  # refused before the model was built
    ok = run_cli("run", "--model", "dummy", "--tasks", "asr:librispeech-test-clean", "--task-args",
                 f"bootstrap={MAX_RESAMPLES}", "--limit", "2", "--output", str(tmp_path / "ok"), "--no-progress")
    assert ok.returncode == 0, ok.stderr[-2000:]
    compare = run_cli("compare", str(tmp_path / "ok"), str(tmp_path / "ok"), "--resamples", str(MAX_RESAMPLES + 1))
    assert compare.returncode == 2 and f"less than or equal to {MAX_RESAMPLES}" in compare.stderr
