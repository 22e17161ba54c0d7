"""hf-tts and hf-seamless load tiny random-weight models (built and saved through transformers' own classes, seeded)
from a local folder through the adapters' real loading code."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from most_eval.audio import Audio  # noqa: E402
from most_eval.models.hf_loading import ModelLoadError  # noqa: E402
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

    spm = pytest.importorskip("sentencepiece")
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


TTS = {"vits": tiny_vits, "speecht5": tiny_speecht5}


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
    rate = json.loads((tmp_path / ("vocoder" if family == "speecht5" else "") / "config.json").read_text())[
        "sampling_rate"]
    assert model.model_type == family and model.sample_rate == rate
    texts = ["the cat sat on the mat", "hello world"]
    first = model.synthesize(texts)
    _check_audio(first, 2, rate)
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


def test_unsupported_model_type_is_named_in_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bark"}))
    with pytest.raises(ModelLoadError) as err:
        HFTTS(HFTTSArgs(path=str(tmp_path)))
    assert str(err.value).startswith("model_type bark is not supported by hf-tts; supported: vits, speecht5")
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
