"""hf-tts and hf-seamless load tiny random-weight models (built and saved through transformers' own classes, seeded)
from a local folder through the adapters' real loading code."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers
from conftest import run_cli

from most_eval.core.audio import Audio  # noqa: E402
from most_eval.core.hf_loading import ModelLoadError  # noqa: E402
from most_eval.models.hf_seamless import HFSeamless, HFSeamlessArgs  # noqa: E402
from most_eval.models.hf_tts import HFTTS, HFTTSArgs  # noqa: E402

CHARS = list("abcdefghijklmnopqrstuvwxyz'")
TINY_HIFIGAN = dict(upsample_initial_channel=16, upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8],
                    resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]])


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def tiny_vits(folder):
    """An MMS-TTS-style VITS (character tokenizer, no phonemizer) at 8 kHz; returns its --model-args."""
    torch.manual_seed(0)
    vocab = {"<pad>": 0, " ": 1, **{c: i + 2 for i, c in enumerate(CHARS)}}
    vocab["<unk>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    transformers.VitsTokenizer(str(folder / "vocab.json"), add_blank=True, normalize=True,
                               phonemize=False).save_pretrained(folder)
    cfg = transformers.VitsConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  ffn_dim=32, flow_size=16, spectrogram_bins=17, prior_encoder_num_flows=1,
                                  prior_encoder_num_wavenet_layers=1, posterior_encoder_num_wavenet_layers=1,
                                  duration_predictor_filter_channels=16, depth_separable_num_layers=1,
                                  duration_predictor_num_flows=1, sampling_rate=8000, **TINY_HIFIGAN)
    transformers.VitsModel(cfg).save_pretrained(folder)
    return {"path": str(folder)}


def tiny_speecht5(folder):
    """SpeechT5 TTS (sentencepiece char tokenizer), its HiFi-GAN in folder/vocoder and an 8-d x-vector .npy."""
    import io

    import sentencepiece as spm  # a speechbrain dependency: always installed
    torch.manual_seed(0)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["the cat sat on the mat", "".join(CHARS)] * 10),
                                   model_writer=model, vocab_size=40, model_type="char", character_coverage=1.0,
                                   bos_id=0, pad_id=1, eos_id=2, unk_id=3, minloglevel=2)
    (folder / "spm.model").write_bytes(model.getvalue())
    tok = transformers.SpeechT5Tokenizer(str(folder / "spm.model"))
    fe = transformers.SpeechT5FeatureExtractor(num_mel_bins=8)
    transformers.SpeechT5Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(folder)
    cfg = transformers.SpeechT5Config(vocab_size=len(tok), hidden_size=16, encoder_layers=1, decoder_layers=1,
                                      encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                                      decoder_ffn_dim=32, speech_decoder_prenet_units=16,
                                      speech_decoder_postnet_units=16, speech_decoder_postnet_layers=2,
                                      speech_decoder_postnet_kernel=3, speaker_embedding_dim=8, num_mel_bins=8,
                                      max_speech_positions=200, max_text_positions=100, conv_dim=(8, 8),
                                      conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
                                      num_conv_pos_embedding_groups=2)
    transformers.SpeechT5ForTextToSpeech(cfg).save_pretrained(folder)
    (folder / "vocoder").mkdir()
    vcfg = transformers.SpeechT5HifiGanConfig(model_in_dim=8, sampling_rate=16000, **TINY_HIFIGAN)
    transformers.SpeechT5HifiGan(vcfg).save_pretrained(folder / "vocoder")
    np.save(folder / "xvector.npy", np.random.default_rng(0).standard_normal(8).astype(np.float32))
    # min_length_ratio: random stop-token logits may otherwise end after one frame
    return {"path": str(folder), "vocoder": str(folder / "vocoder"), "speaker_embedding": str(folder / "xvector.npy"),
            "min_length_ratio": 1.0, "max_length_ratio": 2.0}


def tiny_seamless(folder):
    """SeamlessM4T-v2 (all sub-models) with a character BPE tokenizer and the generation-config tables it needs."""
    torch.manual_seed(0)
    langs = ["__eng__", "__fra__"]
    vocab = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3}
    for token in ["▁", *CHARS, *langs]:
        vocab[token] = len(vocab)
    tok = transformers.SeamlessM4TTokenizer(vocab=vocab, merges=[], additional_special_tokens=langs,
                                            src_lang="eng", tgt_lang="eng")
    fe = transformers.SeamlessM4TFeatureExtractor(feature_size=80, num_mel_bins=80, sampling_rate=16000, stride=2)
    transformers.SeamlessM4TProcessor(feature_extractor=fe, tokenizer=tok).save_pretrained(folder)
    cfg = transformers.SeamlessM4Tv2Config(
        vocab_size=len(tok), t2u_vocab_size=24, char_vocab_size=40, hidden_size=16, encoder_layers=1,
        decoder_layers=1, encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=2, decoder_attention_heads=2,
        speech_encoder_layers=1, speech_encoder_attention_heads=2, speech_encoder_intermediate_size=32,
        conv_depthwise_kernel_size=3, adaptor_kernel_size=2, adaptor_stride=2, t2u_encoder_layers=1,
        t2u_decoder_layers=1, t2u_encoder_ffn_dim=32, t2u_decoder_ffn_dim=32, t2u_encoder_attention_heads=2,
        t2u_decoder_attention_heads=2, t2u_variance_predictor_embed_dim=16, t2u_variance_predictor_hidden_dim=16,
        max_position_embeddings=128, t2u_max_position_embeddings=128, unit_hifi_gan_vocab_size=20, unit_embed_dim=16,
        lang_embed_dim=4, spkr_embed_dim=4, vocoder_num_langs=2, vocoder_num_spkrs=2, max_new_tokens=8,
        **TINY_HIFIGAN)
    model = transformers.SeamlessM4Tv2Model(cfg)
    with torch.no_grad():  # t2u control ids (bos, eos, unk) never win: random weights would hand them to the vocoder
        model.t2u_model.lm_head.weight[[0, 2, 3]] = 0
    gen = model.generation_config
    gen.text_decoder_lang_to_code_id = {"eng": vocab["__eng__"], "fra": vocab["__fra__"]}
    gen.t2u_lang_code_to_id = {"eng": 4, "fra": 5}
    gen.vocoder_lang_code_to_id = {"eng": 0, "fra": 1}
    gen.id_to_text = {str(i): t for t, i in vocab.items()}
    gen.char_to_id = {c: i + 4 for i, c in enumerate(["▁", *CHARS])}
    gen._from_model_config = False  # else loading rebuilds it from config.json and drops the tables above
    model.save_pretrained(folder)
    return {"path": str(folder), "max_new_tokens": 8}


def random_codebooks(codec):
    """Codec codebooks start as zeros (real ones are trained), so every code would decode to the same audio."""
    with torch.no_grad():
        for name, buffer in codec.named_buffers():
            if name.endswith(("codebook.embed", "codebook.embed_avg", "codebook.embed_sum")):  # EnCodec, Mimi
                buffer.normal_()


def tiny_bark(folder):
    """Bark: character BERT tokenizer, semantic/coarse/fine GPTs with 16 codebook entries, an 8 kHz EnCodec, the
    generation-config tables ``BarkModel.generate`` reads, and one voice preset (v2/en_speaker_0) in the processor."""
    from transformers.models.bark import generation_configuration_bark as gen

    torch.manual_seed(0)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *CHARS, *("##" + c for c in CHARS)]
    vocab = {t: i for i, t in enumerate(tokens)}
    S, K, V = 20, 16, len(vocab)  # semantic vocabulary, codebook size, text vocabulary
    text_offset = S + 4  # semantic ids, then eos/pad and spare ids, then text ids, then text pad and infer tokens
    rng = np.random.default_rng(0)
    (folder / "src").mkdir()
    preset = {"semantic_prompt": rng.integers(0, S, 12), "coarse_prompt": rng.integers(0, K, (2, 24)),
              "fine_prompt": rng.integers(0, K, (4, 24))}
    for key, value in preset.items():
        np.save(folder / "src" / f"{key}.npy", value)
    np.savez(folder / "voice.npz", **{k: v[..., ::-1].copy() for k, v in preset.items()})  # another voice, as a file
    speakers = {"repo_or_path": str(folder / "src"), "v2/en_speaker_0": {k: f"{k}.npy" for k in preset}}
    transformers.BarkProcessor(tokenizer=transformers.BertTokenizer(vocab=vocab),
                               speaker_embeddings=speakers).save_pretrained(str(folder))  # str: written to json
    # initializer_range: with the default 0.02 the logits are near-uniform and the tokens ignore text and voice
    small = dict(hidden_size=16, num_layers=1, num_heads=2, block_size=64, initializer_range=0.5)
    cfg = transformers.BarkConfig(
        semantic_config=transformers.BarkSemanticConfig(input_vocab_size=text_offset + V + 2, output_vocab_size=S + 4,
                                                        **small).to_dict(),
        coarse_acoustics_config=transformers.BarkCoarseConfig(input_vocab_size=S + 2 * K + 3,
                                                              output_vocab_size=S + 2 * K + 3, **small).to_dict(),
        fine_acoustics_config=transformers.BarkFineConfig(input_vocab_size=K + 1, output_vocab_size=K + 1,
                                                          n_codes_total=4, n_codes_given=2, **small).to_dict(),
        codec_config=transformers.EncodecConfig(sampling_rate=8000, upsampling_ratios=[4, 4], target_bandwidths=[32.0],
                                                hidden_size=16, num_filters=4, num_lstm_layers=1, codebook_size=K,
                                                codebook_dim=16).to_dict())
    model = transformers.BarkModel(cfg)
    random_codebooks(model.codec_model)
    semantic = gen.BarkSemanticGenerationConfig(
        semantic_vocab_size=S, eos_token_id=S, text_encoding_offset=text_offset, text_pad_token=text_offset + V,
        semantic_infer_token=text_offset + V + 1, max_input_semantic_length=16, max_new_tokens=8, semantic_rate_hz=50)
    coarse = gen.BarkCoarseGenerationConfig(coarse_semantic_pad_token=S + 2 * K, coarse_infer_token=S + 2 * K + 2,
                                            coarse_rate_hz=50, max_coarse_input_length=16, max_coarse_history=24,
                                            sliding_window_len=8)
    fine = gen.BarkFineGenerationConfig(max_fine_history_length=8, max_fine_input_length=16, n_fine_codebooks=4)
    # a plain GenerationConfig holding the sub-configs as dicts, as the released checkpoints' generation_config.json
    model.generation_config = transformers.GenerationConfig(
        semantic_config=semantic.to_dict(), coarse_acoustics_config=coarse.to_dict(),
        fine_acoustics_config=fine.to_dict(), sample_rate=8000, codebook_size=K)
    model.save_pretrained(folder)
    return {"path": str(folder), "do_sample": True}


CSM_TEMPLATE = (  # the layout of sesame/csm-1b's chat template: <bos>[speaker]text<eos>, then the turn's audio
    "{%- for message in messages %}{{- bos_token }}{{- '[' + message['role'] + ']' }}"
    "{{- message['content'][0]['text'] }}{{- eos_token }}"
    "{%- if message['content']|length > 1 %}{{- '<|AUDIO|><|audio_eos|>' }}{%- endif %}{%- endfor %}")


def tiny_csm(folder):
    """CSM: character tokenizer with the Llama-3 style specials, the chat template, a 4-codebook backbone and depth
    decoder over 16 codes, and a tiny Mimi keeping the real 24 kHz / 1920-sample frame (the processor's frame count)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    torch.manual_seed(0)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|AUDIO|>", "<|audio_eos|>", "<unk>"]
    vocab = {t: i for i, t in enumerate([*specials, "[", "]", *"0123456789", " ", *CHARS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", "isolated")  # one token per character
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=specials[0], eos_token=specials[1],
                                               pad_token=specials[2], unk_token="<unk>",
                                               additional_special_tokens=specials[2:4])
    fe = transformers.EncodecFeatureExtractor(feature_size=1, sampling_rate=24000)
    transformers.CsmProcessor(feature_extractor=fe, tokenizer=tok, chat_template=CSM_TEMPLATE).save_pretrained(folder)
    K, NQ = 16, 4  # codebook size, codebooks
    codec = transformers.MimiConfig(hidden_size=16, num_filters=4, num_hidden_layers=1, intermediate_size=32,
                                    num_attention_heads=2, num_key_value_heads=2, head_dim=8, codebook_size=K,
                                    codebook_dim=8, num_quantizers=NQ, vector_quantization_hidden_dimension=8,
                                    upsample_groups=16)
    # initializer_range: not the near-uniform logits of 0.02, which would ignore the text and the speaker
    small = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                 num_key_value_heads=1, initializer_range=0.5)
    depth = transformers.CsmDepthDecoderConfig(num_codebooks=NQ, backbone_hidden_size=16, vocab_size=K,
                                               max_position_embeddings=NQ + 1, **small)
    # codebook vocabulary = the codec's codes (no spare ids a random model could emit and the codec cannot decode)
    cfg = transformers.CsmConfig(num_codebooks=NQ, vocab_size=K, codebook_pad_token_id=K - 1, codebook_eos_token_id=0,
                                 text_vocab_size=len(vocab), bos_token_id=0, pad_token_id=2, audio_token_id=2,
                                 audio_eos_token_id=3, max_position_embeddings=256,
                                 depth_decoder_config=depth.to_dict(), codec_config=codec.to_dict(), **small)
    model = transformers.CsmForConditionalGeneration(cfg)
    random_codebooks(model.codec_model)
    model.generation_config.max_new_tokens = 6  # audio frames
    model.generation_config._from_model_config = False  # else loading rebuilds it from config.json
    model.save_pretrained(folder)
    return {"path": str(folder), "do_sample": True}


TTS = {"vits": tiny_vits, "speecht5": tiny_speecht5, "bark": tiny_bark, "csm": tiny_csm}


def _rate(family, folder):
    """The output rate the folder's configs promise: vocoder's, model's, or codec's."""
    config = json.loads((folder / ("vocoder" if family == "speecht5" else "") / "config.json").read_text())
    return config["codec_config"]["sampling_rate"] if family in ("bark", "csm") else config["sampling_rate"]


def _check_audio(audios, n, rate):
    assert len(audios) == n
    for a in audios:
        assert isinstance(a, Audio) and a.sample_rate == rate
        assert a.samples.dtype == np.float32 and a.samples.ndim == 1 and a.samples.size > 0
        assert np.isfinite(a.samples).all()


@pytest.mark.parametrize("family", sorted(TTS))
def test_hf_tts_synthesizes_finite_mono_float32_at_the_model_rate(family, tmp_path):
    args = HFTTSArgs(**TTS[family](tmp_path))
    model = HFTTS(args, seed=3)
    rate = _rate(family, tmp_path)
    assert model.model_type == family and model.sample_rate == rate
    texts = ["the cat sat on the mat", "hello world"]
    first = model.synthesize(texts)
    _check_audio(first, 2, rate)
    assert not np.array_equal(first[0].samples, first[1].samples)  # the text reaches the audio
    again = HFTTS(args, seed=3).synthesize(texts[::-1])  # fresh load, other batch order: same audio per text
    assert np.array_equal(first[0].samples, again[1].samples) and np.array_equal(first[1].samples, again[0].samples)
    assert model.synthesize(["hello world"], [Audio(np.zeros(1600, np.float32), 16000)])[0].samples.size > 0


def test_vits_noise_scale_arg_reaches_the_model(tmp_path):
    args = tiny_vits(tmp_path)
    model = HFTTS(HFTTSArgs(**args, noise_scale=0.0, noise_scale_duration=0.0))
    assert model.parts["model"].config.noise_scale == 0.0
    a, b = model.synthesize(["hello"]), HFTTS(HFTTSArgs(**args, noise_scale=0.0, noise_scale_duration=0.0),
                                               seed=7).synthesize(["hello"])
    assert np.array_equal(a[0].samples, b[0].samples)  # no noise: the seed does not matter


def test_speecht5_without_speaker_embedding_or_wrong_size_is_one_clear_error(tmp_path):
    args = tiny_speecht5(tmp_path)
    with pytest.raises(ModelLoadError, match="speaker_embedding"):
        HFTTS(HFTTSArgs(path=args["path"], vocoder=args["vocoder"]))
    np.save(tmp_path / "bad.npy", np.zeros(5, np.float32))
    with pytest.raises(ModelLoadError, match="5 values, the model wants 8"):
        HFTTS(HFTTSArgs(path=args["path"], vocoder=args["vocoder"], speaker_embedding=str(tmp_path / "bad.npy")))


def test_bark_voice_preset_by_name_or_npz_reaches_the_model(tmp_path):
    args = tiny_bark(tmp_path)
    text = ["hello world"]
    plain = HFTTS(HFTTSArgs(**args)).synthesize(text)[0].samples
    named = HFTTS(HFTTSArgs(**args, voice_preset="v2/en_speaker_0"))
    assert named.parts["history"]["coarse_prompt"].shape == (2, 24)
    by_name = named.synthesize(text)[0].samples
    by_file = HFTTS(HFTTSArgs(**args, voice_preset=str(tmp_path / "voice.npz"))).synthesize(text)[0].samples
    assert np.isfinite(by_name).all() and np.isfinite(by_file).all()
    assert not np.array_equal(plain, by_name) and not np.array_equal(by_name, by_file)
    short = HFTTS(HFTTSArgs(**args, max_new_tokens=4)).synthesize(text)[0].samples  # semantic tokens
    assert 0 < short.size < plain.size
    with pytest.raises(ModelLoadError, match=r"voice_preset 'nobody'.*presets: v2/en_speaker_0"):
        HFTTS(HFTTSArgs(**args, voice_preset="nobody"))


def test_csm_uses_the_speaker_prompt_as_a_context_turn(tmp_path):
    args = tiny_csm(tmp_path)
    model = HFTTS(HFTTSArgs(**args, max_new_tokens=3))
    rng = np.random.default_rng(0)
    prompt = Audio((0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)  # 1 s, resampled to 24 kHz
    without, with_prompt = model.synthesize(["hello", "hello"], [None, prompt])
    _check_audio([without, with_prompt], 2, 24000)
    assert without.samples.size == 3 * 1920  # max_new_tokens frames of 80 ms
    assert not np.array_equal(without.samples, with_prompt.samples)
    other = HFTTS(HFTTSArgs(**args, max_new_tokens=3, speaker=1)).synthesize(["hello"])[0]
    assert not np.array_equal(without.samples, other.samples)  # the speaker id is part of the prompt text
    reseeded = HFTTS(HFTTSArgs(**args, max_new_tokens=3), seed=1).synthesize(["hello"])[0]
    assert not np.array_equal(without.samples, reseeded.samples)  # do_sample: the seed decides


def test_unsupported_model_type_is_named_in_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "dia"}))
    with pytest.raises(ModelLoadError) as err:
        HFTTS(HFTTSArgs(path=str(tmp_path)))
    assert str(err.value) == ("model_type dia is not supported by hf-tts; "
                              "supported: vits, speecht5, bark, csm, fastspeech2_conformer")
    assert "\n" not in str(err.value)


def test_hf_tts_cli_scores_two_samples(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    tiny_vits(folder)
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "hf-tts", "--model-args", f"path={folder}",
                   "--tasks", "tts:librispeech-test-clean", "--judge", "dummy", "--limit", "2", "--output", str(out), "--no-progress",
                   env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())["results"]["tts:librispeech-test-clean"]
    assert res["scored"] == 2 and res["errors"] == 0


def test_hf_seamless_transcribes_and_synthesizes(tmp_path):
    args = HFSeamlessArgs(**tiny_seamless(tmp_path))
    model = HFSeamless(args, seed=0)
    assert model.sample_rate == 16000
    rng = np.random.default_rng(0)
    speech = [Audio((0.1 * rng.standard_normal(n)).astype(np.float32), 16000) for n in (16000, 8000)]
    texts = model.transcribe(speech)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    audios = model.synthesize(["the cat sat", "hello world"])
    _check_audio(audios, 2, 16000)
    again = HFSeamless(args).synthesize(["hello world"])
    assert np.array_equal(audios[1].samples, again[0].samples)  # greedy text and units: deterministic
