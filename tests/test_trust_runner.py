"""Trust in the runner's numbers: the cache reuses only what it may, every sample ends as a score or an error record,
bad options fail before any model work, one writer per output folder, and results.json merges reruns by task."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import MINI_SUITE, read_jsonl, run_cli

from most_eval.core.adapter import Model
from most_eval.run.output_lock import OutputBusy, OutputLock
from most_eval.run.runner import run_tasks
from most_eval.core.task import TaskContext

CLOZE = "slm:sstorycloze"
LIBRI = "asr:librispeech-test-clean"
CLOZE_SAMPLES = "samples/slm_sstorycloze.jsonl"


def _cloze_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(MINI_SUITE / "spoken-storycloze", root / "spoken-storycloze")
    return root


def _run(data: Path, out: Path, *extra: str, tasks: str = CLOZE, model: str = "dummy"):
    return run_cli("run", "--model", model, "--tasks", tasks, "--data-root", str(data), "--output", str(out),
                   "--no-progress", *extra)


def _result(out: Path, task: str = CLOZE) -> dict:
    return json.loads((out / "results.json").read_text())["results"][task]


def _cache_file(out: Path, task: str = CLOZE) -> Path:
    files = list((out / "cache" / task.replace(":", "_")).rglob("rank0.jsonl"))
    assert len(files) == 1, files
    return files[0]


# ---------------------------------------------------------------------------------------------------------------
# Cache


def test_foreign_forged_and_non_record_cache_lines_are_skipped_and_counted(tmp_path):
    data, out = _cloze_root(tmp_path), tmp_path / "out"
    assert _run(data, out).returncode == 0
    clean = _result(out)
    cache = _cache_file(out)
    lines = cache.read_text().splitlines()
    forged = json.loads(lines[0])
    forged["score"] = 1000.0  # would flip the pair if it were trusted
    forged["cache"]["model"] = "0123456789abcdef"  # another model's fingerprint
    with open(cache, "a") as fh:
        fh.write(json.dumps(forged) + "\n" + '{"hello": "not a record"}\n' + "[1, 2, 3]\n")
    again = _run(data, out)
    assert again.returncode == 0, again.stderr
    res = _result(out)
    assert res["accuracy"] == clean["accuracy"] and res["reused"] == 6 and res["scored"] == 6
    warning = "cache: skipped 2 malformed line(s) and 1 record(s) of another model or task config"
    assert warning in res["warnings"] and warning in again.stderr
    assert "6 record(s) reused from the cache" in again.stdout
    scores = {r["id"]: r for r in read_jsonl(out / CLOZE_SAMPLES)}
    assert all(r["true_score"] != 1000.0 and r["false_score"] != 1000.0 for r in scores.values())


def test_audio_replaced_at_the_same_path_runs_that_sample_again(tmp_path):
    data, out = _cloze_root(tmp_path), tmp_path / "out"
    summed = ("--task-args", "reduction=sum")  # the dummy's summed score is minus the duration
    assert _run(data, out, *summed).returncode == 0
    wav = data / "spoken-storycloze" / "sSC" / "0_incorrect.wav"
    samples, rate = sf.read(wav, dtype="float32")
    stat = wav.stat()
    sf.write(wav, np.concatenate([samples, samples, samples]), rate)  # 3x longer: the dummy score changes
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old modification time
    assert _run(data, out, *summed).returncode == 0
    res = _result(out)
    assert res["reused"] == 5 and res["scored"] == 6
    pair = {r["id"]: r for r in read_jsonl(out / CLOZE_SAMPLES)}["0"]
    assert pair["false_score"] == pytest.approx(-3 * len(samples) / rate, rel=1e-3)


def test_no_cache_recomputes_every_sample(tmp_path):
    data, out = _cloze_root(tmp_path), tmp_path / "out"
    assert _run(data, out).returncode == 0
    again = _run(data, out, "--no-cache")
    assert again.returncode == 0 and _result(out)["reused"] == 0
    assert len(_cache_file(out).read_text().splitlines()) == 6  # the old records are gone, not shadowed


@dataclass(frozen=True)
class _PathArgs:
    path: str = ""


class _WeightsModel(Model):
    name = "weights-test"
    Args = _PathArgs


def test_fingerprint_covers_weight_contents_and_adapter_code(tmp_path):
    weights = tmp_path / "model"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"A" * 1000)
    before = _WeightsModel(_PathArgs(str(weights))).fingerprint()
    stat = (weights / "model.safetensors").stat()
    (weights / "model.safetensors").write_bytes(b"B" * 1000)  # same size, same mtime: content alone differs
    os.utime(weights / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _WeightsModel(_PathArgs(str(weights))).fingerprint() != before



def test_weight_digests_are_remembered_across_runs_and_redone_when_the_file_changes(tmp_path, monkeypatch):
    import hashlib

    from most_eval.core.fingerprints import PersistentDigests, path_stamp

    weights = tmp_path / "model"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"W" * 4096)
    cache = tmp_path / "cache" / "file-digests.jsonl"
    first = path_stamp(weights, PersistentDigests(cache))
    assert first[0][3] == hashlib.sha256(b"W" * 4096).hexdigest()[:16] and len(cache.read_text().splitlines()) == 1

    def no_hashing(*args, **kwargs):
        raise AssertionError("hashed again")

    monkeypatch.setattr(hashlib, "file_digest", no_hashing)
    assert path_stamp(weights, PersistentDigests(cache)) == first  # another run: read back, not re-hashed
    monkeypatch.undo()
    (weights / "model.safetensors").write_bytes(b"V" * 4096)
    changed = path_stamp(weights, PersistentDigests(cache))
    assert changed[0][3] == hashlib.sha256(b"V" * 4096).hexdigest()[:16]


def test_fingerprint_covers_the_adapter_source(tmp_path, monkeypatch):
    import importlib

    source = tmp_path / "my_adapter.py"
    source.write_text("from most_eval.core.adapter import Model\n\nclass Mine(Model):\n    name = 'mine'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mine = importlib.import_module("my_adapter").Mine
    before = mine().fingerprint()
    assert mine().fingerprint() == before  # stable while the code is unchanged
    source.write_text(source.read_text() + "    # a changed adapter (say, a new prompt)\n")
    assert mine().fingerprint() != before


# ---------------------------------------------------------------------------------------------------------------
# Honest counts


class _Raises(Model):
    """An adapter that fails on every sample: the systematic failure the summary must name."""

    name = "raises"

    def score_audio(self, audios):
        raise RuntimeError("CUDA out of memory (simulated)")


def test_a_systematic_failure_is_named_in_results_and_every_sample_has_its_record(tmp_path):
    from most_eval.registry import resolve_tasks

    cls = resolve_tasks(CLOZE)[0]
    task = cls(MINI_SUITE, context=TaskContext(output_dir=tmp_path))
    outcome = run_tasks(_Raises(), [task], tmp_path, show_progress=False)
    res = outcome.document["results"][CLOZE]
    assert (res["scored"], res["listed"], res["errors"]) == (0, 6, 6)
    assert res["first_error"] == {"reason": "model error: RuntimeError: CUDA out of memory (simulated)", "alike": 6}
    records = read_jsonl(tmp_path / CLOZE_SAMPLES)
    assert len(records) == 6 and all("CUDA out of memory" in r["error"] for r in records)


def test_a_scoring_failure_turns_every_sample_into_an_error_record(tmp_path):
    from most_eval.models.dummy import DummyModel
    from most_eval.registry import resolve_tasks

    cls = resolve_tasks(CLOZE)[0]

    class Broken(cls):
        def aggregate(self, items):
            raise ZeroDivisionError("no pairs")

    task = Broken(MINI_SUITE, context=TaskContext(output_dir=tmp_path))
    outcome = run_tasks(DummyModel(), [task], tmp_path, show_progress=False)
    res = outcome.document["results"][CLOZE]
    assert res["status"] == "scoring error" and res["detail"] == "ZeroDivisionError: no pairs"
    assert (res["scored"], res["listed"], res["errors"]) == (0, 6, 6)
    assert all(r["error"] == "scoring error: ZeroDivisionError: no pairs" for r in read_jsonl(tmp_path / CLOZE_SAMPLES))


def test_a_task_whose_every_sample_is_unusable_fails_under_fail_on_error(tmp_path):
    data, out = _cloze_root(tmp_path), tmp_path / "out"
    for wav in (data / "spoken-storycloze" / "sSC").glob("*.wav"):
        wav.write_bytes(b"RIFF....WAVEjunk")
    plain = _run(data, out)
    assert plain.returncode == 1  # a task that measured nothing exits 1, even without the flag
    assert "1 task(s) measured nothing: slm:sstorycloze: no sample was scored (6 error record(s))" in plain.stderr
    res = _result(out)
    assert (res["scored"], res["errors"]) == (0, 6)
    assert len(read_jsonl(out / CLOZE_SAMPLES)) == 6
    assert "slm:sstorycloze: 6 error record(s); first:" in plain.stdout and "cannot decode" in plain.stdout
    assert "(6 alike)" in plain.stdout
    for flag in ("--fail-on-error", "--strict"):
        proc = _run(data, out, flag)
        assert proc.returncode == 1, (flag, proc.stderr)
        assert "1 task(s) failed" in proc.stderr and "slm:sstorycloze: 6 error record(s)" in proc.stderr


def test_a_dataset_error_fails_under_fail_on_error(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "voxpopuli").mkdir()  # the folder, without its asr_test.tsv
    proc = _run(tmp_path, out, "--fail-on-error", tasks="asr:voxpopuli-en")
    assert proc.returncode == 1 and "dataset error" in proc.stderr


# ---------------------------------------------------------------------------------------------------------------
# Refusals before any model work


@pytest.mark.parametrize("extra,named", [
    (["--seed", "-1"], "--seed -1"),
    (["--limit", "0"], "--limit 0"),
    (["--batch-size", "0"], "--batch-size 0"),
    (["--embedder", "ecapa:/no/such/ecapa"], "/no/such/ecapa"),
    (["--judge", "no-such-judge"], "no-such-judge"),
    (["--task-args", "bootstrap=-5"], "bootstrap must be 0 to 100,000 resamples, got -5"),
])
def test_bad_values_are_refused_in_one_line_before_the_model_loads(tmp_path, extra, named):
    # the model's checkpoint does not exist either: the option must be the reason given, not the checkpoint
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "most", "--model-args", f"checkpoint={tmp_path / 'no-ckpt'}", "--tasks",
                   "tts:librispeech-test-clean", "--output", str(out), "--no-progress", *extra)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and named in proc.stderr and "no-ckpt" not in proc.stderr


def test_an_embedder_folder_that_holds_no_such_model_is_refused_in_one_line_before_the_model_loads(tmp_path):
    """The CLI builds the speaker embedder a TTS task's options name and lends it through TaskContext; a folder that
    exists but is not an ECAPA model fails there, in one line naming it, before the (missing) model checkpoint."""
    folder = tmp_path / "not-ecapa"
    folder.mkdir()
    (folder / "hyperparams.yaml").write_text("not: [a, speechbrain, model\n")
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "most", "--model-args", f"checkpoint={tmp_path / 'no-ckpt'}", "--tasks",
                   "tts:librispeech-test-clean", "--output", str(out), "--no-progress",
                   "--task-args", f"embedder=ecapa:{folder}")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert f"--embedder ecapa:{folder}: cannot load it" in proc.stderr and "no-ckpt" not in proc.stderr


def test_a_task_that_needs_an_embedder_is_not_run_without_one(tmp_path):
    """Helper models are lent, never built by tasks: the runner refuses a TTS task whose context has no embedder."""
    from most_eval.models.dummy import DummyModel
    from most_eval.run.runner import run_task
    from most_eval_tasks.tts.task import LibriSpeechTTS

    task = LibriSpeechTTS(MINI_SUITE, context=TaskContext(output_dir=tmp_path, judge=DummyModel()))
    with pytest.raises(ValueError, match="needs a speaker embedder lent through TaskContext.embedder"):
        run_task(DummyModel(), task, tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_output_naming_a_file_and_a_missing_data_root_are_refused_in_one_line(tmp_path):
    file = tmp_path / "results.txt"
    file.write_text("keep me")
    proc = _run(MINI_SUITE, file)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert f"--output {file}: is a file" in proc.stderr and file.read_text() == "keep me"
    proc = _run(tmp_path / "nowhere", tmp_path / "out")
    assert proc.returncode == 2 and "--data-root" in proc.stderr and "not found" in proc.stderr
    assert not (tmp_path / "out" / "results.json").exists()


# ---------------------------------------------------------------------------------------------------------------
# One writer per output


def test_a_second_run_on_a_held_output_is_refused_and_a_dead_holder_is_taken_over(tmp_path):
    import signal
    import subprocess
    import sys

    data, out = _cloze_root(tmp_path), tmp_path / "out"
    with OutputLock(out):
        proc = _run(data, out)
        assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
        assert f"another most-eval run (pid {os.getpid()})" in proc.stderr
        with pytest.raises(OutputBusy):
            OutputLock(out).acquire()
    assert list(out.iterdir()) == []  # the lock writes nothing into the folder
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from most_eval.run.output_lock import OutputLock; "
                               "OutputLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)",
                               str(out)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert _run(data, out).returncode == 2
    holder.send_signal(signal.SIGKILL)  # a run killed while holding the folder
    holder.wait()
    proc = _run(data, out)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------------------------------------------------------
# results.json across reruns


def test_rerunning_a_subset_keeps_the_other_tasks_and_their_samples(tmp_path):
    out = tmp_path / "out"
    both = f"{CLOZE},slm:tstorycloze"
    assert _run(MINI_SUITE, out, tasks=both).returncode == 0
    first = json.loads((out / "results.json").read_text())
    assert _run(MINI_SUITE, out, tasks=CLOZE).returncode == 0
    merged = json.loads((out / "results.json").read_text())
    assert set(merged["results"]) == {CLOZE, "slm:tstorycloze"}
    assert merged["results"]["slm:tstorycloze"] == first["results"]["slm:tstorycloze"]
    assert merged["tasks"]["slm:tstorycloze"]["created"] == first["tasks"]["slm:tstorycloze"]["created"]
    assert (out / "samples" / "slm_tstorycloze.jsonl").is_file()
    # another seed is another run: its file replaces the old one, and the samples files follow it
    assert _run(MINI_SUITE, out, "--seed", "7", tasks=CLOZE).returncode == 0
    fresh = json.loads((out / "results.json").read_text())
    assert set(fresh["results"]) == {CLOZE} and fresh["seed"] == 7 and fresh["limit"] is None
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["slm_sstorycloze.jsonl"]


# ---------------------------------------------------------------------------------------------------------------
# Efficiency


@pytest.mark.slow
def test_every_task_has_a_plausible_efficiency_entry(libri_root, tmp_path):
    import time

    from pocketsphinx import Decoder

    from most_eval.core.audio import load_audio

    out, data = tmp_path / "out", _cloze_root(tmp_path)
    shutil.copytree(libri_root / "LibriSpeech", data / "LibriSpeech")
    proc = run_cli("run", "--model", "offline-baseline", "--tasks", f"{LIBRI},slm:sstorycloze", "--data-root",
                   str(data), "--output", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    assert set(doc["efficiency"]) == set(doc["results"])
    for task, entry in doc["efficiency"].items():
        assert entry["wall_seconds"] > 0 and entry["samples_per_second"] > 0 and entry["peak_rss_mb"] > 50, task
        assert entry["peak_gpu_mb"] is None and f"efficiency: {task}: " in proc.stdout
    asr = doc["efficiency"][LIBRI]
    # pocketsphinx's own time on the same audio, measured here (compared with the run's RTF below)
    audios = [load_audio(p) for p in sorted((libri_root / "LibriSpeech").rglob("*.flac"))]
    decoder = Decoder(samprate=16000, loglevel="FATAL")
    started = time.perf_counter()
    for audio in audios:
        decoder.start_utt()
        decoder.process_raw((np.clip(audio.samples, -1, 1) * 32767).astype(np.int16).tobytes(), full_utt=True)
        decoder.end_utt()
    own_rtf = (time.perf_counter() - started) / sum(a.duration for a in audios)
    assert asr["audio_seconds"] == pytest.approx(sum(a.duration for a in audios), rel=1e-3)
    # RTF is the model's seconds over the audio's seconds (up to the file's rounding: seconds to 3 places, RTF to 4),
    # and the model ran inside the task's wall time
    model_s, audio_s = asr["model_seconds"], asr["audio_seconds"]
    assert asr["rtf"] == pytest.approx(model_s / audio_s, abs=5e-5 + 5e-4 * (1 + model_s / audio_s) / audio_s)
    assert 0 < asr["model_seconds"] <= asr["wall_seconds"]
    # and of the right size: within 4x of the decoder's own time measured here (a unit error is 1000x off). The band
    # is wide because the two timings are seconds apart and a loaded machine may slow either one.
    assert 0.25 <= asr["rtf"] / own_rtf <= 4.0, (asr["rtf"], own_rtf)


def test_every_rank_agrees_on_what_is_cached(tmp_path):
    """An id cached by two ranks under different input digests: whichever file a rank reads last, all ranks keep
    the record whose digest matches now, so the pending lists (and the shards) agree."""
    from most_eval.run.cache import CacheStats, SampleCache
    from most_eval.run.runner import load_all_ranks

    stamp = {"model": "m", "task": "t"}
    (tmp_path / "rank0.jsonl").write_text(json.dumps({"id": "x", "v": 0, "cache": {**stamp, "input": "old"}}) + "\n")
    (tmp_path / "rank1.jsonl").write_text(json.dumps({"id": "x", "v": 1, "cache": {**stamp, "input": "new"}}) + "\n")
    seen = [load_all_ranks(tmp_path, SampleCache(tmp_path / f"rank{r}.jsonl", "m", "t"), CacheStats(), {"x": "new"})
            for r in (0, 1)]
    assert [s["x"]["v"] for s in seen] == [1, 1]


def test_a_text_task_name_cannot_name_a_path(tmp_path):
    proc = run_cli("run", "--model", "dummy", "--tasks", "text:../../../escape", "--output", str(tmp_path / "o"),
                   "--no-progress")
    assert proc.returncode == 2 and "unknown task 'text:../../../escape'" in proc.stderr
    assert not (tmp_path.parent / "escape").exists()
