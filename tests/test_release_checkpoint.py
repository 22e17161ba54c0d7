"""MoST as released: the release's prompt frame rendered token for token, and a checkpoint in the release's exact
layout converted once, equal to ours by logits, reported, and evaluated end to end."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from conftest import run_cli
from release_layout import TINY, write_release_checkpoint

from most_eval.core.audio import Audio
from most_reference.adapter import MoSTArgs, MoSTModel
from most_reference.import_weights import CheckpointError
from most_reference.model import MoSTForCausalLM
from most_reference.prompt_formats import (RELEASE, TASK_KEYS, TINY as TINY_FORMAT, checkpoint_format,
                                           load_prompt_format, render_text)

#: the release's strings (MoST_dataset/multimodal_dataset.py at 9c13577), as the issue quotes them
FRAME = "<|begin_of_sentence|>{instruction}\n\n{input}<|end_of_sentence|>\n\nOutput: "
ASR = "Transcribe the following speech into text."
TTS = "Convert the following text into speech."


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A release-layout tiny checkpoint and its conversion into a private cache."""
    root = tmp_path_factory.mktemp("release")
    folder = write_release_checkpoint(root / "most-release",
                                      extra={"model.layers.1.mlp.gate.e_score_correction_bias": torch.zeros(8)})
    return root, folder, load_release(folder, root / "cache")


def load_release(folder, cache):
    """``most`` on a release folder with the tiny quantizer and vocoder added, converting into ``cache``."""
    os.environ["MOST_EVAL_CACHE"] = str(cache)
    try:
        return MoSTModel(MoSTArgs(checkpoint=str(folder), dtype="float32", hubert_heads=2,
                                  quantizer=str(TINY / "quantizer.safetensors"), vocoder=str(TINY / "vocoder")))
    finally:
        del os.environ["MOST_EVAL_CACHE"]


def test_release_format_is_the_release_frame_verbatim():
    assert render_text(RELEASE, "asr") == FRAME.format(instruction=ASR, input="[AUDIO_WAVEFORM]") + \
        "<|begin_of_sentence|>"
    assert render_text(RELEASE, "tts", "hello there") == FRAME.format(instruction=TTS, input="hello there") + \
        "<|begin_of_sentence|>"
    assert not RELEASE.bos and RELEASE.stop == ("<|end_of_sentence|>",)
    assert set(RELEASE.ours) == set(TASK_KEYS) - {"asr", "tts"}  # worded by us, in the release's frame
    for key in RELEASE.ours:
        assert render_text(RELEASE, key).startswith("<|begin_of_sentence|>Answer") or key == "score"


def test_release_prompts_token_for_token(release):
    """The adapter's ids of a TTS prompt are the release's ``tokenizer(prompt, add_special_tokens=False)`` plus the
    response's begin-of-sentence; an ASR prompt has the wave span where the release writes [AUDIO_WAVEFORM]."""
    _, _, model = release
    tok = model.tokenizer
    rendered = model._render(model.prompts["tts"], text="hello there")
    prompt = FRAME.format(instruction=TTS, input="hello there")
    assert rendered.ids == tok(prompt, add_special_tokens=False).input_ids + \
        tok("<|begin_of_sentence|>", add_special_tokens=False).input_ids
    features = torch.zeros(3, model.lm.config.hidden_size)
    asr = model._render(model.prompts["asr"], features=features)
    before, after = FRAME.format(instruction=ASR, input="").split("<|end_of_sentence|>", 1)
    cfg = model.lm.config
    assert asr.ids == (tok(before, add_special_tokens=False).input_ids + [cfg.audio_span_begin_id, 0, 0, 0,
                       cfg.audio_span_end_id] + tok("<|end_of_sentence|>" + after + "<|begin_of_sentence|>",
                                                    add_special_tokens=False).input_ids)
    assert asr.ids.count(tok.bos_token_id) == 2  # the frame's and the response's: the renderer adds none


def test_formats_are_recorded_and_read_back(tmp_path):
    assert checkpoint_format({}) is RELEASE  # nothing recorded: the release's
    assert checkpoint_format({"prompts": dict(TINY_FORMAT.templates)}) is TINY_FORMAT  # the bundled checkpoint
    assert checkpoint_format(RELEASE.record()) is RELEASE
    older = checkpoint_format({"prompts": {"asr": "{audio} what is"}})
    assert older.name == "custom" and older.templates["asr"] == "{audio} what is" and older.templates["tts"] == "{text}"
    yaml_file = tmp_path / "mine.yaml"
    yaml_file.write_text("name: mine\nbos: false\nstop: ['###']\ntemplates:\n" +
                         "".join(f"  {k}: 'Q: {{audio}}{k}'\n" for k in TASK_KEYS))
    mine = load_prompt_format(yaml_file)
    assert mine.name == "mine" and not mine.bos and mine.stop == ("###",)
    assert checkpoint_format(mine.record()).templates == mine.templates
    (tmp_path / "bad.yaml").write_text("name: bad\ntemplates:\n  asr: '{audio}'\n")
    with pytest.raises(ValueError, match=r"bad.yaml: prompt format 'bad': no template for tts"):
        load_prompt_format(tmp_path / "bad.yaml")


def test_release_checkpoint_equals_ours_by_logits(release):
    """Experts stored in another order, text first after conversion: the same function as the tiny model."""
    _, _, model = release
    ours = MoSTForCausalLM.from_pretrained(TINY, dtype=torch.float32).eval()
    torch.manual_seed(0)
    ids = torch.randint(4, 128, (2, 24))  # text, unit and span-marker ids: both expert groups are used
    with torch.no_grad():
        expected, got = ours(ids).logits, model.lm(ids).logits
    assert torch.allclose(got, expected, atol=1e-5)
    wave = Audio(np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1, 16000)
    bundled = MoSTModel(MoSTArgs(dtype="float32"))
    assert torch.allclose(model.speech_encoder.encode([torch.from_numpy(wave.samples)])[0],
                          bundled.speech_encoder.encode([torch.from_numpy(wave.samples)])[0], atol=1e-5)


def test_the_conversion_reports_and_is_made_once(release):
    root, folder, model = release
    report = model.facts()["conversion"]
    assert report["mapped"] == {"LM tensors": 83, "HuBERT tensors": 52, "projection tensors": 2}
    assert report["left_at_init"] == []
    assert report["unexpected"] == ["model.layers.1.mlp.gate.e_score_correction_bias"]
    assert report["expert_order"] == [6, 1, 4, 3, 0, 7, 2, 5]
    assert model.facts()["prompt_format"] == "release" and model.identity()["prompt_format"] == "release"
    converted = model.root
    assert converted.parent == root / "cache" / "release" and (converted / "conversion.json").is_file()
    stamp = (converted / "model.safetensors").stat().st_mtime_ns
    again = load_release(folder, root / "cache")
    assert again.root == converted and (converted / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_missing_tensor_is_left_at_init_and_said(tmp_path, monkeypatch):
    folder = write_release_checkpoint(tmp_path / "partial", drop=("model.layers.2.mlp.experts.5.up_proj.weight",))
    monkeypatch.setenv("MOST_EVAL_CACHE", str(tmp_path / "cache"))
    model = MoSTModel(MoSTArgs(checkpoint=str(folder), dtype="float32", hubert_heads=2))
    conversion = model.facts()["conversion"]
    assert conversion["left_at_init"] == ["model.layers.2.mlp.experts.7.up_proj.weight"]  # release 5 = our 7
    assert conversion["not_in_checkpoint"] == ["quantizer (quantizer=)", "vocoder (vocoder=)"]
    assert not model.supports("tts:x", "synthesize") and not model.supports("slm:x", "score_audio")
    assert model.supports("asr:x", "transcribe")
    bad = write_release_checkpoint(tmp_path / "bad")
    config = json.loads((bad / "config.json").read_text())
    config["text_expert_indices"] = [0, 1]
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not split the 8 routed experts"):
        MoSTModel(MoSTArgs(checkpoint=str(bad), hubert_heads=2))


def test_a_release_checkpoint_runs_the_asr_task(release, tmp_path, libri_root):
    root, folder, _ = release
    out = tmp_path / "run"
    proc = run_cli("run", "--model", "most", "--model-args", f"checkpoint={folder},hubert_heads=2,dtype=float32",
                   "--tasks", "asr:librispeech-test-clean", "--data-root", str(libri_root), "--limit", "2",
                   "--output", str(out), "--no-progress", env={"MOST_EVAL_CACHE": str(root / "cache-cli")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "most: release checkpoint" in proc.stderr and "mapped 83 LM tensors" in proc.stderr
    document = json.loads((out / "results.json").read_text())
    entry = document["results"]["asr:librispeech-test-clean"]
    assert entry["scored"] == 2 and "wer" in entry
    assert document["model"]["facts"]["prompt_format"] == "release"
    assert document["model"]["facts"]["release_checkpoint"] == str(folder.resolve())


def test_a_format_the_tokenizer_cannot_write_is_refused():
    """The character tokenizer cannot write the release's stop text: refused in one line, the tiny format is not."""
    import re

    tokenizer = MoSTModel(MoSTArgs(dtype="float32")).tokenizer
    with pytest.raises(ValueError, match=re.escape("ends answers at '<|end_of_sentence|>', which this tokenizer "
                                                   "cannot write")):
        RELEASE.check_tokenizer(tokenizer)
    TINY_FORMAT.check_tokenizer(tokenizer)
