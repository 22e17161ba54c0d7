"""hf-audio-lm on a tiny random Qwen2-Audio built and saved through transformers' own classes, loaded back offline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import read_jsonl, run_cli

transformers = pytest.importorskip("transformers")

from most_eval.adapter import SampleFailure  # noqa: E402
from most_eval.audio import Audio  # noqa: E402
from most_eval.models.hf_audio_lm import FAMILIES, HFAudioLM, HFAudioLMArgs  # noqa: E402
from most_eval.models.hf_loading import ModelLoadError  # noqa: E402

#: the special tokens Qwen2AudioProcessor and its chat template need
QWEN2_AUDIO_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]


def tiny_qwen2_audio(folder):
    """A Qwen2-Audio with a 1-layer audio encoder and a 1-layer Qwen2, a byte-level BPE tokenizer (256 bytes, no
    merges, the chat specials) and Whisper's feature extractor, saved as a Qwen2AudioProcessor."""
    import torch
    from tokenizers import pre_tokenizers

    torch.manual_seed(0)  # random weights, but the same ones every run
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<|endoftext|>": 0, **{c: i + 1 for i, c in enumerate(alphabet)}}
    tok = transformers.Qwen2Tokenizer(vocab=vocab, merges=[], additional_special_tokens=QWEN2_AUDIO_SPECIALS)
    fe = transformers.WhisperFeatureExtractor(feature_size=80)
    transformers.Qwen2AudioProcessor(feature_extractor=fe, tokenizer=tok).save_pretrained(folder)  # default template
    cfg = transformers.Qwen2AudioConfig(
        audio_config=dict(model_type="qwen2_audio_encoder", d_model=16, encoder_layers=1, encoder_attention_heads=2,
                          encoder_ffn_dim=32, num_mel_bins=80),
        text_config=dict(model_type="qwen2", vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=2048),
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"))
    model = transformers.Qwen2AudioForConditionalGeneration(cfg)
    model.generation_config.eos_token_id = [tok.convert_tokens_to_ids("<|im_end|>"), 0]
    model.generation_config.pad_token_id = 0
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", autouse=True)
def offline():
    """No hub access: everything loads from the local folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def qwen2_audio_dir(tmp_path_factory):
    return tiny_qwen2_audio(tmp_path_factory.mktemp("qwen2_audio"))


@pytest.fixture(scope="module")
def model(qwen2_audio_dir):
    return HFAudioLM(HFAudioLMArgs(path=str(qwen2_audio_dir), max_new_tokens=5))


def noise(seconds: float, seed: int) -> Audio:
    rng = np.random.default_rng(seed)
    return Audio((0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32), 16000)


def test_transcribe_and_respond_return_text(model):
    audios = [noise(1.0, 0), noise(2.0, 1)]
    for out in (model.transcribe(audios), model.respond(audios)):
        assert len(out) == 2 and all(isinstance(t, str) for t in out)
    assert model.respond(audios, "speech") == [SampleFailure("text output only")] * 2
    assert model.sample_rate == 16000


def test_batch_of_three_equals_three_singles(model):
    audios = [noise(1.0, 2), noise(3.0, 3), noise(2.0, 4)]  # different lengths: different audio-token counts
    text = model.chat_text(model.asr_prompt)
    lengths = {len(model.processor(text=[text], audio=[a.samples], sampling_rate=16000).input_ids[0])
               for a in audios}
    assert len(lengths) == 3  # so the batch really is padded
    assert model.processor.tokenizer.padding_side == "left"
    assert model.transcribe(audios) == [model.transcribe([a])[0] for a in audios]


def test_default_and_overridden_prompt_reach_the_chat_template(model, qwen2_audio_dir, monkeypatch):
    default = FAMILIES["qwen2_audio"].asr_prompt
    seen = []
    original = model.processor.apply_chat_template
    monkeypatch.setattr(model.processor, "apply_chat_template",
                        lambda conv, **kw: seen.append(rendered := original(conv, **kw)) or rendered)
    model.transcribe([noise(1.0, 5)])
    assert default in seen[-1] and "<|AUDIO|>" in seen[-1] and seen[-1].endswith("<|im_start|>assistant\n")

    custom = HFAudioLM(HFAudioLMArgs(path=str(qwen2_audio_dir), max_new_tokens=2, prompt="Write down the words."))
    original = custom.processor.apply_chat_template
    monkeypatch.setattr(custom.processor, "apply_chat_template",
                        lambda conv, **kw: seen.append(rendered := original(conv, **kw)) or rendered)
    custom.transcribe([noise(1.0, 5)])
    assert "Write down the words." in seen[-1] and default not in seen[-1]
    assert custom.fingerprint() != model.fingerprint()  # a new prompt never reuses cached outputs


def test_unknown_model_type_is_one_line_listing_the_supported(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ModelLoadError) as err:
        HFAudioLM(HFAudioLMArgs(path=str(tmp_path)))
    assert "'llama'" in str(err.value) and "qwen2_audio" in str(err.value) and "\n" not in str(err.value)


def test_cli_transcribes_librispeech_offline(qwen2_audio_dir, libri_root, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "hf-audio-lm", "--model-args", f"path={qwen2_audio_dir},max_new_tokens=4",
                   "--tasks", "asr:librispeech-test-clean", "--data-root", str(libri_root), "--limit", "2",
                   "--output", str(out), "--no-progress", env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())["results"]["asr:librispeech-test-clean"]
    assert res["scored"] == 2 and res["errors"] == 0
    assert all(isinstance(r["hyp_raw"], str) for r in read_jsonl(out / "samples" / "asr_librispeech-test-clean.jsonl"))
