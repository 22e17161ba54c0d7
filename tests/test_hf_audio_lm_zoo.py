"""hf-audio-lm on the families with their own input path (Voxtral's mistral_common processor, Phi-4-multimodal's
speech LoRA, Qwen2.5-Omni's thinker): tiny random models built and saved through each architecture's own
transformers classes (and peft / mistral_common where the real checkpoint needs them), loaded back offline through
the adapter, and compared with the library's documented calls made directly here."""

from __future__ import annotations

import base64
import json

import pytest
import torch
import transformers
from conftest import read_jsonl, run_cli
from test_hf_audio_lm import TINY, noise, offline  # noqa: F401 (offline: autouse, no hub)
from tiny_models import byte_vocab

from most_eval.core.adapter import SampleFailure
from most_eval.models.hf_audio_lm import MODEL_TYPES, HFAudioLM, HFAudioLMArgs

# ---------------------------------------------------------------------------------------------------------------
# Voxtral: a tekken.json tokenizer (mistral_common) + VoxtralForConditionalGeneration

#: tekken.json special tokens at the ranks Voxtral's own file uses (VoxtralProcessor hard-codes [AUDIO] = 24)
VOXTRAL_SPECIALS = dict(enumerate(
    ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]",
     "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]", "[PREFIX]", "[MIDDLE]",
     "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]"]))
VOXTRAL_SPECIALS.update({24: "[AUDIO]", 25: "[BEGIN_AUDIO]", 32: "[ARGS]", 33: "[CALL_ID]", 34: "[TRANSCRIBE]"})
VOXTRAL_N_SPECIAL = 1000  # as in the real file: 1,000 control tokens first, then the byte-level vocabulary
#: the pre-tokenizer pattern of Mistral's tekken files
TEKKEN_PATTERN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
                  r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|"
                  r"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def tiny_voxtral(folder):
    """Voxtral with a 1-layer Whisper-style encoder and a 2-layer Llama over a byte-level tekken vocabulary (1,000
    specials + 256 bytes), Whisper's 128-mel feature extractor with 30 s windows, saved as a VoxtralProcessor."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    n_vocab = VOXTRAL_N_SPECIAL + 256
    tekken = {
        "config": {"pattern": TEKKEN_PATTERN, "num_vocab_tokens": 256, "default_vocab_size": n_vocab,
                   "default_num_special_tokens": VOXTRAL_N_SPECIAL, "version": "v7"},
        "vocab": [{"rank": i, "token_bytes": base64.b64encode(bytes([i])).decode(),
                   "token_str": chr(i) if 32 <= i < 127 else None} for i in range(256)],
        "special_tokens": [{"rank": i, "token_str": VOXTRAL_SPECIALS.get(i, f"<SPECIAL_{i}>"), "is_control": True}
                           for i in range(VOXTRAL_N_SPECIAL)],
        "audio": {"sampling_rate": 16000, "frame_rate": 12.5, "chunk_length_s": 30.0,
                  "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400}},
    }
    (folder / "tekken.json").write_text(json.dumps(tekken))
    config = transformers.VoxtralConfig(
        audio_config=transformers.VoxtralEncoderConfig(hidden_size=16, intermediate_size=64, num_hidden_layers=1,
                                                       num_attention_heads=2, num_mel_bins=128,
                                                       max_source_positions=1500, initializer_range=0.5),
        text_config=transformers.LlamaConfig(vocab_size=n_vocab, hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                             head_dim=16, max_position_embeddings=4096, bos_token_id=1,
                                             eos_token_id=2, pad_token_id=11, initializer_range=0.5),
        audio_token_id=24, projector_hidden_act="gelu")
    model = transformers.VoxtralForConditionalGeneration(config)
    model.generation_config.eos_token_id, model.generation_config.pad_token_id = 2, 11
    model.save_pretrained(folder)
    features = transformers.WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160,
                                                    chunk_length=30, n_fft=400, return_attention_mask=False)
    tokenizer = transformers.MistralCommonBackend(tokenizer_path=str(folder / "tekken.json"))
    transformers.VoxtralProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------------------------------------------
# Qwen2.5-Omni: the full checkpoint (thinker, talker, token2wav) saved by Qwen2_5OmniForConditionalGeneration


#: Qwen2.5-Omni-7B's processor chat template (chat_template.json; transformers' own processor test loads the same):
#: a default "You are a helpful assistant." system turn, audio parts as <|audio_bos|><|AUDIO|><|audio_eos|>
OMNI_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'audio' or 'audio' in content %}"
    "<|audio_bos|><|AUDIO|><|audio_eos|>{% elif content['type'] == 'image' %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
OMNI_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|vision_bos|>",
                 "<|vision_eos|>", "<|vision_pad|>", "<|IMAGE|>", "<|VIDEO|>"]
OMNI_NAMED = {"audio_token": "<|AUDIO|>", "image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>",
              "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
              "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>"}


def tiny_qwen_omni(folder):
    """Qwen2.5-Omni with a 1-layer thinker (audio encoder, text model, 1-block vision tower), a 1-layer talker and a
    tiny token2wav, saved whole like Qwen/Qwen2.5-Omni-7B; Whisper's 128-mel extractor with its 300 s window; a
    byte-level Qwen2 tokenizer with the named multimodal tokens; no generation config (as the real folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tok = transformers.Qwen2Tokenizer(vocab=byte_vocab("<|endoftext|>"), merges=[], eos_token="<|im_end|>",
                                      pad_token="<|endoftext|>", unk_token=None, bos_token=None,
                                      extra_special_tokens=OMNI_SPECIALS, **OMNI_NAMED)
    tok.save_pretrained(folder)
    transformers.WhisperFeatureExtractor(feature_size=128, chunk_length=300, return_attention_mask=True
                                         ).save_pretrained(folder)
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": OMNI_TEMPLATE}))
    ids = {t: tok.convert_tokens_to_ids(t) for t in OMNI_SPECIALS}
    multimodal = dict(audio_token_index=ids["<|AUDIO|>"], image_token_index=ids["<|IMAGE|>"],
                      video_token_index=ids["<|VIDEO|>"], audio_start_token_id=ids["<|audio_bos|>"],
                      audio_end_token_id=ids["<|audio_eos|>"], vision_start_token_id=ids["<|vision_bos|>"],
                      vision_end_token_id=ids["<|vision_eos|>"])
    rope = lambda section: {"rope_type": "default", "rope_theta": 1e6, "mrope_section": section}  # noqa: E731
    thinker = dict(
        audio_config=dict(d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32,
                          num_mel_bins=128, max_source_positions=1500, n_window=100, output_dim=32,
                          initializer_range=0.2),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32,
                           fullatt_block_indexes=[0], window_size=112),
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                         rope_parameters=rope([2, 3, 3]), eos_token_id=ids["<|im_end|>"],
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=False, initializer_range=0.2),
        user_token_id=tok.convert_tokens_to_ids("u"), initializer_range=0.2, **multimodal)
    talker = dict(vocab_size=64, embedding_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=4096,
                  rope_parameters=rope([1, 1, 2]), tts_codec_start_token_id=60, tts_codec_end_token_id=61,
                  tts_codec_pad_token_id=62, tts_codec_mask_token_id=63, tts_text_start_token_id=ids["<|im_start|>"],
                  tts_text_end_token_id=ids["<|im_end|>"], tts_text_pad_token_id=tok.pad_token_id, **multimodal)
    token2wav = dict(
        dit_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ff_mult=2, emb_dim=16,
                        head_dim=8, block_size=4, look_ahead_layers=[0], look_backward_layers=[0], repeats=2,
                        num_embeds=64, mel_dim=8, enc_emb_dim=16, enc_dim=16, enc_channels=[16, 16, 16, 16, 48],
                        enc_kernel_sizes=[5, 3, 3, 3, 1], enc_dilations=[1, 2, 3, 4, 1], enc_attention_channels=8,
                        enc_res2net_scale=2, enc_se_channels=8),
        bigvgan_config=dict(mel_dim=8, upsample_initial_channel=16, resblock_kernel_sizes=[3],
                            resblock_dilation_sizes=[[1, 3, 5]], upsample_rates=[2, 2], upsample_kernel_sizes=[4, 4]))
    config = transformers.Qwen2_5OmniConfig(thinker_config=thinker, talker_config=talker,
                                            token2wav_config=token2wav, enable_audio_output=True)
    model = transformers.Qwen2_5OmniForConditionalGeneration(config)
    model.generation_config = transformers.GenerationConfig()  # the real folder's names no end token
    model.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------------------------------------------
# Phi-4-multimodal: the transformers-native checkpoint + its speech LoRA (peft) in speech-lora/

#: the native checkpoint's chat template as transformers' own processor test spells it: typed parts, <|audio|>
PHI4_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>' }}{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<|image|>' }}{% elif content['type'] == 'audio' %}{{ '<|audio|>' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|end|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}")
#: LoRA on the LM's attention and MLP projections only (the audio conformer has modules of the same names), as the
#: release's speech LoRA ("layers.*self_attn.(qkv|o)_proj", "layers.*mlp.(gate_up|down)_proj"; r 320, alpha 640)
PHI4_LORA_TARGET = r"model\.layers\.\d+\.(self_attn\.(qkv_proj|o_proj)|mlp\.(gate_up_proj|down_proj))"


def tiny_phi4(folder):
    """Phi-4-multimodal with a 1-block conformer, a 1-layer vision tower and a 2-layer LM; a byte-level GPT-2
    tokenizer with the role markers and <|image|>/<|audio|>; Phi-4's own feature extractor; a random (B != 0) peft
    LoRA saved in speech-lora/. The processor is saved with a stand-in image processor (the real one needs
    torchvision), then its config entry is pointed back at Phi4MultimodalImageProcessor as the real folder has it."""
    from peft import LoraConfig, get_peft_model
    from transformers.image_processing_utils import ImageProcessingMixin

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    eot = "<|endoftext|>"
    tok = transformers.GPT2Tokenizer(vocab=byte_vocab(eot), merges=[], unk_token=eot, bos_token=eot, eos_token=eot,
                                     pad_token=eot, extra_special_tokens=["<|system|>", "<|user|>", "<|assistant|>",
                                                                          "<|end|>"],
                                     image_token="<|image|>", audio_token="<|audio|>")
    transformers.Phi4MultimodalProcessor(image_processor=ImageProcessingMixin(),
                                         audio_processor=transformers.Phi4MultimodalFeatureExtractor(),
                                         tokenizer=tok, chat_template=PHI4_TEMPLATE).save_pretrained(folder)
    processor_config = json.loads((folder / "processor_config.json").read_text())
    processor_config["image_processor"] = {"image_processor_type": "Phi4MultimodalImageProcessor"}
    (folder / "processor_config.json").write_text(json.dumps(processor_config))
    end = tok.convert_tokens_to_ids("<|end|>")
    config = transformers.Phi4MultimodalConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, original_max_position_embeddings=4096,
        bos_token_id=0, eos_token_id=[0, end], pad_token_id=0, initializer_range=0.1,
        audio_config=transformers.Phi4MultimodalAudioConfig(
            num_blocks=1, hidden_size=32, num_attention_heads=4, intermediate_size=48,
            depthwise_separable_out_channel=32, ext_pw_out_channel=32, nemo_conv_channels=16, bias_max_distance=64,
            initializer_range=0.1, audio_token_id=tok.audio_token_id),
        vision_config=transformers.Phi4MultimodalVisionConfig(
            num_hidden_layers=1, hidden_size=16, intermediate_size=32, num_attention_heads=2, image_size=28,
            crop_size=28, image_token_id=tok.image_token_id))
    model = transformers.Phi4MultimodalForCausalLM(config)
    model.generation_config.eos_token_id, model.generation_config.pad_token_id = [0, end], 0
    model.save_pretrained(folder)
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.01, target_modules=PHI4_LORA_TARGET, task_type="CAUSAL_LM",
                      init_lora_weights=False)  # random A and B: the adapter really changes the model
    get_peft_model(model, lora).save_pretrained(folder / "speech-lora")
    return folder


# ---------------------------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def voxtral_dir(tmp_path_factory):
    return tiny_voxtral(tmp_path_factory.mktemp("voxtral"))


@pytest.fixture(scope="module")
def voxtral(voxtral_dir):
    return HFAudioLM(HFAudioLMArgs(path=str(voxtral_dir), max_new_tokens=6))


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory):
    return tiny_qwen_omni(tmp_path_factory.mktemp("qwen_omni"))


@pytest.fixture(scope="module")
def omni(omni_dir):
    return HFAudioLM(HFAudioLMArgs(path=str(omni_dir), max_new_tokens=6))


@pytest.fixture(scope="module")
def phi4_dir(tmp_path_factory):
    return tiny_phi4(tmp_path_factory.mktemp("phi4"))


@pytest.fixture(scope="module")
def phi4(phi4_dir):
    return HFAudioLM(HFAudioLMArgs(path=str(phi4_dir), max_new_tokens=6))


def greedy_new_tokens(model, inputs: dict, max_new_tokens: int) -> list[list[int]]:
    """transformers' own greedy ``generate`` on ready inputs; the new token ids of each row."""
    with torch.inference_mode():
        ids = model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens)
    return ids[:, inputs["input_ids"].shape[1]:].tolist()


def decoded(tokenizer, rows: list[list[int]]) -> list[str]:
    return [t.strip() for t in tokenizer.batch_decode(rows, skip_special_tokens=True)]


# ---------------------------------------------------------------------------------------------------------------
# Voxtral


def test_voxtral_transcribes_through_its_transcription_request(voxtral, voxtral_dir):
    """``transcribe`` = the docs' Transcription Mode: apply_transcription_request(language="en") then greedy
    generate, one clip at a time here, with the model and processor loaded independently."""
    audios = [noise(1.0, 0), noise(2.5, 1)]
    processor = transformers.AutoProcessor.from_pretrained(voxtral_dir)
    model = transformers.VoxtralForConditionalGeneration.from_pretrained(voxtral_dir).eval()
    expected = []
    for a in audios:
        inputs = processor.apply_transcription_request(language="en", audio=a.samples, model_id=str(voxtral_dir),
                                                       sampling_rate=16000, format=["wav"])
        prompt = processor.tokenizer.decode(inputs["input_ids"][0].tolist(), skip_special_tokens=False)
        assert prompt.startswith("<s>[INST][BEGIN_AUDIO][AUDIO]") and prompt.endswith("[/INST]lang:en[TRANSCRIBE]")
        expected += decoded(processor.tokenizer, greedy_new_tokens(model, dict(inputs), 6))
    assert voxtral.transcribe(audios) == expected
    assert any(expected) and voxtral.identity()["asr_mode"] == "transcription request, language en"


def test_voxtral_responds_to_the_audio_alone_through_its_chat_template(voxtral, voxtral_dir):
    """``respond`` = the docs' Audio Instruct Mode with the audio alone: one conversation per clip, the audio inline
    (32-bit float WAV, so no rounding), tokenized by the processor's chat template. Speech output is a failure."""
    import io

    import soundfile as sf

    audios = [noise(1.0, 2), noise(2.0, 3)]
    processor = transformers.AutoProcessor.from_pretrained(voxtral_dir)
    model = transformers.VoxtralForConditionalGeneration.from_pretrained(voxtral_dir).eval()
    expected = []
    for a in audios:
        buffer = io.BytesIO()
        sf.write(buffer, a.samples, 16000, format="WAV", subtype="FLOAT")
        audio = base64.b64encode(buffer.getvalue()).decode()
        chat = [{"role": "user", "content": [{"type": "audio", "base64": audio}]}]
        inputs = processor.apply_chat_template(chat, tokenize=True, return_dict=True, return_tensors="pt")
        prompt = processor.tokenizer.decode(inputs["input_ids"][0].tolist(), skip_special_tokens=False)
        assert prompt.startswith("<s>[INST][BEGIN_AUDIO][AUDIO]") and prompt.endswith("[AUDIO][/INST]")
        expected += decoded(processor.tokenizer, greedy_new_tokens(model, dict(inputs), 6))
    assert voxtral.respond(audios) == expected
    assert voxtral.respond(audios, "speech") == [SampleFailure("text output only")] * 2


def test_voxtral_batch_equals_singles_with_real_left_padding(voxtral):
    """Clips are padded to whole 30 s windows, so a 31 s clip (2 windows) next to short ones makes rows of
    different lengths: the batch is really left-padded and must give each clip's own answer."""
    audios = [noise(31.0, 4), noise(0.7, 5), noise(1.3, 6)]
    inputs = voxtral.model_inputs(audios, None, transcription=True)
    assert inputs["attention_mask"][1:, 0].tolist() == [0, 0] and inputs["attention_mask"][:, -1].tolist() == [1] * 3
    assert voxtral.transcribe(audios) == [voxtral.transcribe([a])[0] for a in audios]
    assert voxtral.respond(audios) == [voxtral.respond([a])[0] for a in audios]


def test_voxtral_custom_prompt_and_language(voxtral_dir):
    """``prompt=`` turns transcribe into the instruct mode with that text; ``language=`` (empty: detect) reaches the
    transcription request; both change the fingerprint (cached outputs are never reused across them)."""
    base = HFAudioLM(HFAudioLMArgs(path=str(voxtral_dir), max_new_tokens=2))
    custom = HFAudioLM(HFAudioLMArgs(path=str(voxtral_dir), max_new_tokens=2, prompt="Write down the words."))
    detect = HFAudioLM(HFAudioLMArgs(path=str(voxtral_dir), max_new_tokens=2, language=""))
    clip = [noise(1.0, 7)]
    tok = base.processor.tokenizer
    ids = custom.model_inputs(clip, custom.asr_prompt, transcription=custom.transcription_mode)["input_ids"]
    text = tok.decode(ids[0].tolist())
    assert text.endswith("[AUDIO]Write down the words.[/INST]") and "[TRANSCRIBE]" not in text
    ids = detect.model_inputs(clip, None, transcription=detect.transcription_mode)["input_ids"]
    text = tok.decode(ids[0].tolist())
    assert text.endswith("[/INST][TRANSCRIBE]") and "lang:" not in text
    assert len({base.fingerprint(), custom.fingerprint(), detect.fingerprint()}) == 3


@pytest.mark.slow
def test_voxtral_through_the_cli_on_librispeech(voxtral_dir, libri_root, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "hf-audio-lm", "--model-args", f"path={voxtral_dir},max_new_tokens=4",
                   "--tasks", "asr:librispeech-test-clean", "--data-root", str(libri_root), "--limit", "2",
                   "--output", str(out), "--no-progress", env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())["results"]["asr:librispeech-test-clean"]
    assert res["scored"] == 2 and res["errors"] == 0
    records = read_jsonl(out / "samples" / "asr_librispeech-test-clean.jsonl")
    direct = HFAudioLM(HFAudioLMArgs(path=str(voxtral_dir), max_new_tokens=4))
    from most_eval.core.audio import load_audio

    for r in records:  # the run's raw hypotheses are the adapter's own answers on the same files
        wav = next(libri_root.rglob(f"{r['id']}.flac"))
        assert r["hyp_raw"] == direct.transcribe([load_audio(wav, 16000)])[0]


# ---------------------------------------------------------------------------------------------------------------
# Qwen2.5-Omni


def test_omni_loads_its_thinker_and_an_audio_only_processor_without_torchvision(omni):
    """Text output only: the thinker class loads alone from the full checkpoint. Where torchvision is missing (its
    image/video processors need it), the processor is the library's class with only the audio parts."""
    import importlib.util

    assert type(omni.model).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    assert isinstance(omni.processor, transformers.Qwen2_5OmniProcessor)
    if importlib.util.find_spec("torchvision") is None:
        assert type(omni.processor).__name__ == "Qwen2_5OmniProcessorAudioOnly"
    assert omni.sample_rate == 16000


OMNI_ASR_CHAT = ("<|im_start|>system\nYou are a speech recognition model.<|im_end|>\n<|im_start|>user\nTranscribe the "
                 "English audio into text without any punctuation marks.<|audio_bos|><|AUDIO|><|audio_eos|><|im_end|>\n"
                 "<|im_start|>assistant\n")
OMNI_CHAT = ("<|im_start|>system\nYou are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
             "perceiving auditory and visual inputs, as well as generating text and speech.<|im_end|>\n<|im_start|>"
             "user\n<|audio_bos|><|AUDIO|><|audio_eos|><|im_end|>\n<|im_start|>assistant\n")


def test_omni_prompts_are_the_cookbooks_and_answers_equal_the_thinkers_own_greedy_decode(omni, omni_dir):
    """ASR: the cookbook's system turn, instruction, then audio; respond: the default system prompt and the audio
    alone. Each answer equals the thinker (loaded here) decoding that chat greedily and stopping at <|im_end|>; the
    audio placeholder is expanded to the encoder's output length for each clip."""
    thinker = transformers.Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(omni_dir).eval()
    tok = omni.processor.tokenizer
    audios = [noise(0.7, 0), noise(1.3, 1)]
    for method, chat in ((omni.transcribe, OMNI_ASR_CHAT), (omni.respond, OMNI_CHAT)):
        expected = []
        for a in audios:
            inputs = omni.processor(text=[chat], audio=[a.samples], sampling_rate=16000, return_tensors="pt")
            frames = int(inputs["feature_attention_mask"].sum())
            n_audio = int((inputs["input_ids"] == tok.convert_tokens_to_ids("<|AUDIO|>")).sum())
            assert n_audio == ((frames - 1) // 2 + 1 - 2) // 2 + 1  # the encoder's two stride-2 stages
            with torch.inference_mode():
                ids = thinker.generate(**inputs, do_sample=False, max_new_tokens=6,
                                       eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                                       pad_token_id=tok.pad_token_id)
            expected += decoded(tok, ids[:, inputs["input_ids"].shape[1]:].tolist())
        assert method(audios) == expected, method.__name__
    assert omni.chat_text(omni.asr_prompt, omni.recipe.system_prompt) == OMNI_ASR_CHAT


def test_omni_batch_equals_singles(omni):
    audios = [noise(1.0, 2), noise(3.0, 3), noise(2.0, 4)]
    lengths = {len(omni.model_inputs([a], omni.asr_prompt, omni.recipe.system_prompt)["input_ids"][0]) for a in audios}
    assert len(lengths) == 3  # so the batch really is left-padded
    assert omni.transcribe(audios) == [omni.transcribe([a])[0] for a in audios]
    assert omni.respond(audios) == [omni.respond([a])[0] for a in audios]


# ---------------------------------------------------------------------------------------------------------------
# Phi-4-multimodal

PHI4_ASR_CHAT = "<|user|><|audio|>Transcribe the audio clip into text.<|end|><|assistant|>"


def test_phi4_loads_its_speech_lora_and_it_changes_the_answers(phi4, phi4_dir):
    """The speech LoRA in speech-lora/ is loaded through peft and active: the adapter's logits equal a model with
    that LoRA loaded here, and differ from the base model's."""
    from peft import PeftModel

    assert "speech-lora" in phi4.model.peft_config
    inputs = phi4.model_inputs([noise(1.0, 5)], phi4.asr_prompt)
    base = transformers.Phi4MultimodalForCausalLM.from_pretrained(phi4_dir).eval()
    with torch.inference_mode():
        ours = phi4.model(**inputs).logits
        plain = base(**inputs).logits
        with_lora = PeftModel.from_pretrained(base, phi4_dir / "speech-lora").eval()(**inputs).logits
    assert torch.allclose(ours, with_lora, atol=1e-5)
    assert (ours - plain).abs().max() > 1e-2


def test_phi4_prompt_is_the_model_cards_and_answers_equal_a_direct_greedy_decode(phi4, phi4_dir):
    """ASR chat = the card's speech-language format with the native <|audio|> placeholder; respond = the audio
    alone. One clip at a time, each answer equals greedy decoding by a LoRA model built here."""
    from peft import PeftModel

    assert phi4.chat_text(phi4.asr_prompt) == PHI4_ASR_CHAT
    model = PeftModel.from_pretrained(transformers.Phi4MultimodalForCausalLM.from_pretrained(phi4_dir),
                                      phi4_dir / "speech-lora").eval()
    tok = phi4.processor.tokenizer
    for method, chat in ((phi4.transcribe, PHI4_ASR_CHAT), (phi4.respond, "<|user|><|audio|><|end|><|assistant|>")):
        for a in (noise(0.7, 6), noise(1.3, 7)):
            inputs = phi4.processor(text=[chat], audio=[a.samples], sampling_rate=16000, return_tensors="pt")
            expected = decoded(tok, greedy_new_tokens(model, dict(inputs), 6))
            assert method([a]) == expected, method.__name__


def test_every_family_has_a_tiny_model_in_one_of_the_two_files():
    assert set(TINY) | set(ZOO) == set(MODEL_TYPES)


#: the families this file builds
ZOO = {"voxtral": tiny_voxtral, "qwen2_5_omni": tiny_qwen_omni, "phi4_multimodal": tiny_phi4}
