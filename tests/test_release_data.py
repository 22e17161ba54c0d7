"""The MoST release's instruction JSON files in the recipe: ASR (units -> text) and TTS (text -> units) entries
read as the release writes them, its mix ratio, malformed entries reported with file and entry, and a few training
steps of the tiny recipe on them alone."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from most_eval.core.errors import DatasetError
from most_reference.release_data import ASR_INSTRUCTION, TTS_INSTRUCTION, read_release_data
from most_reference.train import main

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "reference_impl" / "configs" / "train_tiny.yaml"
TINY_QUANTIZER = REPO / "reference_impl" / "checkpoints" / "tiny" / "quantizer.safetensors"
TEXTS = ["the cat sat", "a dog ran home", "we like tea", "it is late", "see you soon", "good morning"]


def units(i: int) -> str:
    return "".join(f"[Hu{(i * 3 + k) % 16}]" for k in range(5 + i))


def write_release_files(folder: Path) -> Path:
    """An ASR file and its TTS twin (as the release's asr_to_tts_converter writes it), plus malformed entries."""
    folder.mkdir(parents=True, exist_ok=True)
    asr = [{"id": f"test-clean_{i}", "instruction": ASR_INSTRUCTION, "input": units(i), "output": text,
            "metadata": {"split": "test-clean"}} for i, text in enumerate(TEXTS)]
    tts = [{"id": f"tts_test-clean_{i}", "instruction": TTS_INSTRUCTION, "input": text, "output": units(i),
            "metadata": {"task": "tts", "original_task": "asr"}} for i, text in enumerate(TEXTS)]
    bad = [{"id": "no_output", "instruction": ASR_INSTRUCTION, "input": units(0)},
           {"id": "bad_units", "instruction": TTS_INSTRUCTION, "input": "hello", "output": "[Hu7][Hux]"},
           {"id": "big_unit", "instruction": TTS_INSTRUCTION, "input": "hello", "output": "[Hu99]"},
           {"id": "other", "instruction": "Summarise this.", "input": "x", "output": "y"},
           ["not", "an", "entry"]]
    (folder / "librispeech_train.json").write_text(json.dumps(asr + bad[:1]))
    (folder / "librispeech_train_tts.json").write_text(json.dumps({"data": tts + bad[1:]}))
    return folder


def test_release_files_are_read_with_the_mix_ratio_and_bad_entries_reported(tmp_path):
    folder = write_release_files(tmp_path / "release")
    reported = []
    examples = read_release_data([{"path": str(folder), "name": "rel"}], 16, lambda *a: reported.append(a))
    assert len(examples.asr) == len(examples.tts) == 6 and examples.skipped == 5 and examples.left_out == 0
    first = next(u for u in examples.asr if u.id == "rel/test-clean_0")
    assert first.text == "the cat sat" and examples.units[first.id].tolist() == [0, 1, 2, 3, 4]
    assert examples.units["rel/tts_test-clean_1"].tolist() == [3, 4, 5, 6, 7, 8]
    where = {item: reason for _, item, reason in reported}
    assert where["librispeech_train.json#6"] == "field 'output' missing or not a string"
    assert where["librispeech_train_tts.json#6"].startswith("not a unit string")
    assert where["librispeech_train_tts.json#7"] == "unit 99 is beyond the model's 16 units"
    assert "neither the release's ASR nor its TTS instruction" in where["librispeech_train_tts.json#8"]
    assert where["librispeech_train_tts.json#9"] == "an entry is an object, found list"
    quarter = read_release_data([{"path": str(folder), "asr_tts_mix_ratio": 0.25}], 16, lambda *a: None)
    assert (len(quarter.asr), len(quarter.tts), quarter.left_out) == (3, 6, 3)  # int(12 x 0.25) ASR, TTS capped
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(DatasetError, match=r"broken.json: not a release instruction file \(invalid JSON"):
        read_release_data([{"path": str(tmp_path / "broken.json")}], 16)


@pytest.mark.slow
def test_the_tiny_recipe_trains_on_release_files_alone(tmp_path, caplog):
    folder = write_release_files(tmp_path / "release")
    out = tmp_path / "run"
    stages = [{"name": "stage1", "steps": 6, "mixture": {"asr": 0.5, "tts": 0.5}, "lr": 1.0e-3}]
    with caplog.at_level(logging.INFO, logger="most_reference.release_data"):
        result = main(TINY_CONFIG, out, overrides={
            "data.speech": [], "data.text": [], "data.instructions": [],
            "data.release": [{"path": str(folder), "name": "rel"}],
            "model.quantizer": {"path": str(TINY_QUANTIZER), "fit_kmeans": None},
            "training.stages": stages, "training.micro_batch_size": 2, "training.global_batch": 2,
            "logging.every": 1, "checkpointing.every": 0, "export.enabled": False, "training.threads": 2})
    assert result["steps"] == 6
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    losses = [rec for rec in log if rec.get("loss") is not None]
    assert len(losses) == 6 and all(rec["loss"] > 0 for rec in losses)
    examples = json.loads((out / "run_info.json").read_text())["examples"]
    assert examples["asr"] == 6 and examples["tts"] == 6
    bad = [json.loads(line) for line in (out / "bad_data.jsonl").read_text().splitlines()]
    assert {b["id"] for b in bad if b["source"] == "rel"} == {
        "librispeech_train.json#6", *(f"librispeech_train_tts.json#{k}" for k in (6, 7, 8, 9))}
    assert any("6 ASR and 6 TTS entries" in r.message and "5 skipped as malformed" in r.message
               for r in caplog.records)
