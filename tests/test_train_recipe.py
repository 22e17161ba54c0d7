"""The MoST training recipe (reference_impl/train.py) on the tiny config: real short runs on CPU.

- a short stage-1 run lowers every task's loss by at least LOSS_DROP, and its export loads in the `most` adapter;
- resuming from a mid-run checkpoint (inside stage 1, and inside stage 2 after an interrupted `--max-steps` run)
  reproduces the uninterrupted run's next losses exactly, and its final weights;
- bad data (empty transcript, missing file, undecodable audio, broken JSON line) is logged and skipped, the run goes on.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from most_reference.train import main

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "reference_impl" / "configs" / "train_tiny.yaml"
MINI = REPO / "most_eval" / "mini_suite"
LOSS_DROP = 0.35  # last-window mean loss <= (1 - LOSS_DROP) x first-window mean, per task

# Small data for the runs that only check bookkeeping: 12 + 4 utterances, 4 spoken and written questions.
SMALL_DATA = {
    "data.speech": [
        {"format": "librispeech", "name": "librispeech", "path": str(MINI / "LibriSpeech"), "splits": ["test-clean"]},
        {"format": "voxpopuli", "path": str(MINI / "voxpopuli"), "split": "test"},
    ],
    "data.text": [{"format": "transcripts"}],
    "data.instructions": [{"format": "llama_questions", "name": "llama_q", "path": str(MINI / "llama-questions"),
                           "speak_answers": {"voice": "en-us"}}],
}


def overrides(**extra) -> dict:
    base = {"logging.every": 1, "checkpointing.every": 0, "checkpointing.resume": "auto", "export.enabled": False,
            "training.threads": 2}
    base.update(extra)
    return base


def read_log(out: Path) -> dict[int, dict]:
    return {rec["step"]: rec for rec in map(json.loads, (out / "train_log.jsonl").read_text().splitlines())}


@pytest.mark.slow
def test_short_tiny_run_lowers_every_task_loss_and_exports_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "run"
    stages = [{"name": "stage1", "steps": 160, "mixture": "stage1", "lr": 3.0e-3, "warmup_steps": 10}]
    result = main(TINY, out, overrides=overrides(**{"training.stages": stages, "export.enabled": True}))
    assert result["steps"] == 160 and result["export"]
    log = read_log(out)
    assert sorted(log) == list(range(1, 161))
    for task in ("asr", "tts", "text_lm"):
        losses = [rec["task_loss"][task] for _, rec in sorted(log.items()) if task in rec["task_loss"]]
        assert len(losses) >= 20, (task, len(losses))
        first, last = np.mean(losses[:5]), np.mean(losses[-5:])
        assert last <= (1 - LOSS_DROP) * first, f"{task}: {first:.3f} -> {last:.3f}"
    rec = log[160]
    assert math.isfinite(rec["loss"]) and rec["aux_loss"] > 0 and rec["lr"] > 0
    load = rec["expert_load"]  # modality routing: every pick lands in the token's own expert group
    assert load["text_outside_group"] == 0 and load["audio_outside_group"] == 0
    assert abs(sum(load["text"]) - 1) < 1e-3 and abs(sum(load["audio"]) - 1) < 1e-3
    info = json.loads((out / "run_info.json").read_text())
    assert info["tensorboard"].startswith(("skipped", "writing"))

    from most_eval.core.audio import load_audio
    from most_reference.adapter import MoSTArgs, MoSTModel

    model = MoSTModel(MoSTArgs(checkpoint=result["export"], dtype="float32", max_new_tokens=8, max_new_units=8))
    audio = load_audio(next((MINI / "LibriSpeech" / "test-clean").rglob("*.flac")))
    assert isinstance(model.transcribe([audio])[0], str)
    assert model.score_audio([audio])[0].n_tokens > 0
    manifest = json.loads((Path(result["export"]) / "most.json").read_text())
    assert manifest["stage"] == "tiny-mini-suite" and "mini suite" in manifest["note"]
    assert not [p for p in Path(result["export"]).rglob("*") if p.suffix in (".bin", ".pt", ".pkl")]


def copy_run_state(src: Path, dst: Path, step: int) -> None:
    """What a job that crashed after its last step finds on disk: the data products, its log (steps past the
    checkpoint included) and the checkpoint of `step`."""
    dst.mkdir(parents=True)
    for name in ("units.jsonl", "kmeans.safetensors", "spoken_answers", "train_log.jsonl"):
        (shutil.copytree if (src / name).is_dir() else shutil.copy)(src / name, dst / name)
    shutil.copytree(src / "checkpoints" / f"step_{step}", dst / "checkpoints" / f"step_{step}")


def test_resume_from_mid_run_checkpoints_reproduces_the_uninterrupted_run(tmp_path):
    stages = [{"name": "stage1", "steps": 8, "mixture": "stage1", "lr": 3.0e-3, "warmup_steps": 2},
              {"name": "stage2", "steps": 6, "mixture": "stage2", "lr": 1.0e-3, "warmup_steps": 1}]
    common = overrides(**SMALL_DATA, **{"training.stages": stages, "training.micro_batch_size": 4,
                                        "training.global_batch": 8, "export.enabled": True})
    full = tmp_path / "full"
    main(TINY, full, overrides={**common, "checkpointing.every": 5, "checkpointing.keep_last": 5})
    reference = read_log(full)
    assert sorted(reference) == list(range(1, 15))
    assert {"speech_instruction", "text_instruction"} & {t for r in reference.values() for t in r["task_loss"]}

    # 1. a restart from the periodic checkpoint at step 5 (stage 1), running through the stage boundary
    resumed = tmp_path / "resumed"
    copy_run_state(full, resumed, 5)
    main(TINY, resumed, overrides=common)
    # 2. a run stopped with --max-steps 10 (inside stage 2), then started again
    interrupted = tmp_path / "interrupted"
    copy_run_state(full, interrupted, 5)
    short = main(TINY, interrupted, max_steps=10, overrides=common)["export"]  # a short run exports what it has
    assert short == str(interrupted / "export")
    assert json.loads((interrupted / "export" / "most.json").read_text())["training"]["steps"] == 10
    assert (interrupted / "checkpoints" / "step_10" / "recipe_state.json").is_file()
    main(TINY, interrupted, overrides=common)

    for out in (resumed, interrupted):
        lines = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
        assert lines == list(range(1, 15)), out.name  # redone steps logged once
        log = read_log(out)
        for step in range(1, 15):
            for key in ("loss", "lm_loss", "aux_loss", "task_loss", "lr", "tokens", "expert_load"):
                assert log[step][key] == reference[step][key], (out.name, step, key)
        a = load_file(str(full / "export" / "model.safetensors"))
        b = load_file(str(out / "export" / "model.safetensors"))
        assert all((a[k] == b[k]).all() for k in a), out.name


def test_bad_data_is_logged_and_skipped(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    good = sorted((MINI / "LibriSpeech" / "test-clean").rglob("*.flac"))[:4]
    (data / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" + bytes(range(256)))
    lines = [json.dumps({"id": f"good{i}", "audio": str(p), "text": f"sentence number {i}"}) for i, p in enumerate(good)]
    lines += [json.dumps({"id": "empty", "audio": str(good[0]), "text": "   "}),
              json.dumps({"id": "missing", "audio": "nowhere.flac", "text": "no such file"}),
              json.dumps({"id": "corrupt", "audio": "corrupt.wav", "text": "this audio does not decode"}),
              "{broken json"]
    (data / "speech.jsonl").write_text("\n".join(lines) + "\n")

    out = tmp_path / "run"
    stages = [{"name": "stage1", "steps": 10, "mixture": {"asr": 0.5, "tts": 0.5}, "lr": 1.0e-3}]
    result = main(TINY, out, overrides=overrides(**{
        "data.speech": [{"format": "jsonl", "name": "mine", "path": str(data / "speech.jsonl")}],
        "data.text": [], "data.instructions": [], "training.stages": stages, "training.micro_batch_size": 1,
        "training.global_batch": 1}))
    assert result["steps"] == 10
    bad = [json.loads(line) for line in (out / "bad_data.jsonl").read_text().splitlines()]
    reasons = {(b["source"], b["id"]): b["reason"] for b in bad}
    assert reasons[("mine", "empty")] == "empty transcript"
    assert "not found" in reasons[("mine", "missing")]
    assert "cannot decode" in reasons[("units", "mine/corrupt")]  # unit extraction skipped it
    assert any(b["source"] == "asr" and "cannot decode" in b["reason"] for b in bad)  # and the ASR loader
    assert reasons[("mine", "speech.jsonl:8")].startswith("bad JSON")
    log = read_log(out)
    assert sorted(log) == list(range(1, 11))
    assert any(rec["loss"] is None for rec in log.values())  # a micro-batch of only the corrupt file: skipped
    assert all(math.isfinite(rec["loss"]) for rec in log.values() if rec["loss"] is not None)
    assert json.loads((out / "run_info.json").read_text())["examples"]["asr"] == 5  # 4 good + corrupt (found late)


def test_a_training_folder_given_as_checkpoint_names_its_export(tmp_path):
    """A new user passes the training output folder (or a step checkpoint) as checkpoint=: the one-line error says
    which folder to pass instead."""
    from conftest import run_cli

    run = tmp_path / "train-short"
    (run / "checkpoints" / "step_60").mkdir(parents=True)
    (run / "train_log.jsonl").write_text("")
    shutil.copytree(REPO / "reference_impl" / "checkpoints" / "tiny", run / "export")
    for given in (run, run / "checkpoints" / "step_60"):
        proc = run_cli("run", "--model", "most", "--model-args", f"checkpoint={given}", "--tasks", "asr",
                       "--output", str(tmp_path / "out"), "--no-progress")
        assert proc.returncode == 2, proc.stderr
        assert f"{given} is a training run's folder, not its exported model: pass checkpoint={run / 'export'}" \
            in proc.stderr and proc.stderr.strip().count("\n") == 0
