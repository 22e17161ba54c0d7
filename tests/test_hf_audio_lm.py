"""hf-audio-lm on tiny random models (one per supported family) built and saved through transformers' own classes,
loaded back offline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import transformers
from conftest import read_jsonl, run_cli
from tiny_models import QWEN2_AUDIO_SPECIALS, byte_vocab

from most_eval.core.adapter import SampleFailure  # noqa: E402
from most_eval.core.audio import Audio  # noqa: E402
from most_eval.models.hf_audio_lm import MODEL_TYPES, HFAudioLM, HFAudioLMArgs  # noqa: E402
from most_eval.core.hf_loading import ModelLoadError  # noqa: E402



def tiny_qwen2_audio(folder):
    """A Qwen2-Audio with a 1-layer audio encoder and a 1-layer Qwen2, a byte-level BPE tokenizer (256 bytes, no
    merges, the chat specials) and Whisper's feature extractor, saved as a Qwen2AudioProcessor."""
    import torch

    torch.manual_seed(0)  # random weights, but the same ones every run
    tok = transformers.Qwen2Tokenizer(vocab=byte_vocab("<|endoftext|>"), merges=[],
                                      additional_special_tokens=QWEN2_AUDIO_SPECIALS)
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


#: Granite's chat markers; the template is a short stand-in for Granite 3.3's (same turn layout, no default system turn)
GRANITE_SPECIALS = ["<|start_of_role|>", "<|end_of_role|>", "<|audio|>"]
GRANITE_TEMPLATE = ("{% for m in messages %}<|start_of_role|>{{ m['role'] }}<|end_of_role|>{{ m['content'] }}"
                    "<|end_of_text|>\n{% endfor %}"
                    "{% if add_generation_prompt %}<|start_of_role|>assistant<|end_of_role|>{% endif %}")


def tiny_granite_speech(folder):
    """A Granite Speech with a 1-block conformer (20-frame attention blocks), a 1-layer Q-Former projector and a
    1-layer Granite LM, no LoRA; a byte-level GPT-2 tokenizer with Granite's role markers, saved as a
    GraniteSpeechProcessor with Granite's feature extractor (needs torchaudio)."""
    import torch

    import torchaudio  # noqa: F401  (install.sh installs it; speechbrain imports it)
    torch.manual_seed(0)
    eot = "<|end_of_text|>"
    tok = transformers.GPT2Tokenizer(vocab=byte_vocab(eot), merges=[], unk_token=eot, bos_token=eot, eos_token=eot,
                                     pad_token=eot, additional_special_tokens=GRANITE_SPECIALS)
    transformers.GraniteSpeechProcessor(audio_processor=transformers.GraniteSpeechFeatureExtractor(), tokenizer=tok,
                                        chat_template=GRANITE_TEMPLATE).save_pretrained(folder)
    cfg = transformers.GraniteSpeechConfig(
        text_config=dict(model_type="granite", vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=2048),
        encoder_config=dict(input_dim=160, num_layers=1, hidden_dim=16, num_heads=2, output_dim=8, context_size=20,
                            max_pos_emb=32, conv_kernel_size=3),
        projector_config=dict(model_type="blip_2_qformer", hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=32, encoder_hidden_size=16, cross_attention_frequency=1),
        audio_token_index=tok.convert_tokens_to_ids("<|audio|>"), has_lora_adapter=False)
    model = transformers.GraniteSpeechForConditionalGeneration(cfg)
    model.generation_config.eos_token_id = model.generation_config.pad_token_id = 0
    model.save_pretrained(folder)
    return folder


#: model_type -> (builder of a tiny model folder, the audio placeholder token its chat text must contain)
TINY = {"qwen2_audio": (tiny_qwen2_audio, "<|AUDIO|>"), "granite_speech": (tiny_granite_speech, "<|audio|>")}


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
def qwen2_audio_model(qwen2_audio_dir):
    return HFAudioLM(HFAudioLMArgs(path=str(qwen2_audio_dir), max_new_tokens=5))


@pytest.fixture(scope="module")
def granite_speech_dir(tmp_path_factory):
    return tiny_granite_speech(tmp_path_factory.mktemp("granite_speech"))


@pytest.fixture(scope="module", params=sorted(TINY))
def model(request):
    """Each supported family in turn: its tiny model folder, loaded through the adapter."""
    if request.param == "qwen2_audio":
        return request.getfixturevalue("qwen2_audio_model")
    folder = request.getfixturevalue(f"{request.param}_dir")
    return HFAudioLM(HFAudioLMArgs(path=str(folder), max_new_tokens=5))


def test_every_chat_family_has_a_tiny_model_here():
    """The families fed by ``processor(text=chat, audio=...)`` are built here; the others (their own input path,
    LoRA or processor) in test_hf_audio_lm_zoo.py, which checks that the two files cover every family."""
    assert set(TINY) <= set(MODEL_TYPES)
    assert all(MODEL_TYPES[name].inputs == "chat" and MODEL_TYPES[name].audio_only_processor is None for name in TINY)


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
    lengths = {len(model.processor(text=[text], audio=[a.samples], sampling_rate=16000, return_tensors="pt")
                   .input_ids[0]) for a in audios}
    assert len(lengths) == 3  # so the batch really is padded
    assert model.processor.tokenizer.padding_side == "left"
    assert model.transcribe(audios) == [model.transcribe([a])[0] for a in audios]


def test_default_prompt_and_system_turn_reach_the_chat_template(model, monkeypatch):
    kind = model.identity()["family"]
    family = next(f for f in MODEL_TYPES.values() if f.model_class == kind)
    audio_token = next(token for name, (_, token) in TINY.items() if MODEL_TYPES[name] is family)
    seen = []
    original = model.processor.apply_chat_template
    monkeypatch.setattr(model.processor, "apply_chat_template",
                        lambda conv, **kw: seen.append(rendered := original(conv, **kw)) or rendered)
    model.transcribe([noise(1.0, 5)])
    assert family.asr_prompt in seen[-1] and audio_token in seen[-1]
    assert seen[-1].index(audio_token) < seen[-1].index(family.asr_prompt)  # the audio, then the instruction
    if family.system_prompt is not None:
        assert seen[-1].index(family.system_prompt) < seen[-1].index(audio_token)
    model.respond([noise(1.0, 5)])
    assert audio_token in seen[-1] and family.asr_prompt not in seen[-1]


def test_default_and_overridden_prompt_reach_the_chat_template(qwen2_audio_model, qwen2_audio_dir, monkeypatch):
    model = qwen2_audio_model
    default = MODEL_TYPES["qwen2_audio"].asr_prompt
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
    assert "'llama'" in str(err.value) and "\n" not in str(err.value)
    assert all(name in str(err.value) for name in MODEL_TYPES)


@pytest.mark.parametrize("family", ["qwen2_audio", "granite_speech"])
def test_cli_transcribes_librispeech_offline(family, request, libri_root, tmp_path):
    folder = request.getfixturevalue(f"{family}_dir")
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "hf-audio-lm", "--model-args", f"path={folder},max_new_tokens=4",
                   "--tasks", "asr:librispeech-test-clean", "--data-root", str(libri_root), "--limit", "2",
                   "--output", str(out), "--no-progress", env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())["results"]["asr:librispeech-test-clean"]
    assert res["scored"] == 2 and res["errors"] == 0
    assert all(isinstance(r["hyp_raw"], str) for r in read_jsonl(out / "samples" / "asr_librispeech-test-clean.jsonl"))
