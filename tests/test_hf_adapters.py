"""hf-whisper and hf-ctc load tiny random-weight models from a local folder through the user's code path."""

from __future__ import annotations

import json

import pytest
import transformers
from conftest import read_jsonl, run_cli
from tiny_models import tiny_whisper

CHARS = list("abcdefghijklmnopqrstuvwxyz' ")


def _tiny_ctc(folder):
    import torch

    torch.manual_seed(0)  # random weights, but the same ones every run
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{c: i + 3 for i, c in enumerate(CHARS[:-1])}}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tok = transformers.Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), word_delimiter_token="|")
    fe = transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, return_attention_mask=True)
    transformers.Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(folder)
    cfg = transformers.Wav2Vec2Config(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
                                      conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
                                      num_conv_pos_embedding_groups=2, pad_token_id=0)
    transformers.Wav2Vec2ForCTC(cfg).save_pretrained(folder)


def _tiny_whisper(folder):
    tiny_whisper(folder)


@pytest.mark.parametrize("name,builder", [("hf-ctc", _tiny_ctc), ("hf-whisper", _tiny_whisper)])
def test_tiny_local_model_transcribes_through_the_cli(name, builder, libri_root, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    builder(folder)
    out = tmp_path / "out"
    args = f"path={folder},max_new_tokens=8" if name == "hf-whisper" else f"path={folder}"
    proc = run_cli("run", "--model", name, "--model-args", args, "--tasks", "asr:librispeech-test-clean",
                   "--data-root", str(libri_root), "--output", str(out), "--limit", "3", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())["results"]["asr:librispeech-test-clean"]
    assert res["scored"] == 3 and res["errors"] == 0 and res["wer"] >= 50  # random weights: real, bad transcripts
    assert all(isinstance(r["hyp_raw"], str) for r in read_jsonl(out / "samples" / "asr_librispeech-test-clean.jsonl"))


def test_hub_id_offline_fails_with_one_line_saying_what_to_download(tmp_path):
    proc = run_cli("run", "--model", "hf-whisper", "--model-args", "path=openai/whisper-large-v3", "--tasks", "asr",
                   "--output", str(tmp_path), "--no-progress", env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "hf download openai/whisper-large-v3" in proc.stderr and "path=" in proc.stderr


@pytest.mark.slow
def test_whisper_audio_over_30_seconds_takes_the_long_form_path(tmp_path):
    """Over 30 s the features are not truncated and transformers' long-form decoding runs (random weights)."""
    import numpy as np

    from most_eval.core.audio import Audio
    from most_eval.models.hf_asr import HFASRArgs, HFWhisper

    _tiny_whisper(tmp_path)
    model = HFWhisper(HFASRArgs(path=str(tmp_path), max_new_tokens=4))
    rng = np.random.default_rng(0)
    long, short = (Audio((0.1 * rng.standard_normal(16000 * s)).astype(np.float32), 16000) for s in (35, 5))
    feats = model.processor.feature_extractor([long.samples], sampling_rate=16000, return_tensors="pt",
                                              truncation=False, padding="longest")
    assert feats.input_features.shape[-1] > 3000  # 35 s kept whole (the default would cut it to 3000 frames)
    texts = model.transcribe([long, short])
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def _tiny_w2v_bert_ctc(folder):
    """wav2vec2-BERT CTC: its feature extractor gives input_features (not input_values) — hf-ctc passes them on."""
    import torch

    torch.manual_seed(0)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{c: i + 3 for i, c in enumerate(CHARS[:-1])}}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tok = transformers.Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), word_delimiter_token="|")
    fe = transformers.SeamlessM4TFeatureExtractor(feature_size=80, num_mel_bins=80, sampling_rate=16000, stride=2)
    transformers.Wav2Vec2BertProcessor(feature_extractor=fe, tokenizer=tok).save_pretrained(folder)
    cfg = transformers.Wav2Vec2BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=32, feature_projection_input_dim=160,
                                          conv_depthwise_kernel_size=3, pad_token_id=0, output_hidden_size=16)
    transformers.Wav2Vec2BertForCTC(cfg).save_pretrained(folder)


def test_hf_ctc_passes_the_feature_extractors_whole_output(tmp_path):
    import numpy as np
    import torch

    from most_eval.core.audio import Audio
    from most_eval.models.hf_asr import HFASRArgs, HFCTC

    _tiny_w2v_bert_ctc(tmp_path)
    model = HFCTC(HFASRArgs(path=str(tmp_path)))
    rng = np.random.default_rng(0)
    audios = [Audio((0.1 * rng.standard_normal(n)).astype(np.float32), 16000) for n in (16000, 12000)]
    texts = model.transcribe(audios)
    feats = model.processor.feature_extractor([a.samples for a in audios], sampling_rate=16000, return_tensors="pt",
                                              padding=True, return_attention_mask=True)
    assert "input_features" in feats and "input_values" not in feats
    with torch.inference_mode():  # the same call by hand: the adapter fed the model exactly these inputs
        ids = model.model(**feats).logits.argmax(-1)
    assert texts == [t.strip() for t in model.processor.tokenizer.batch_decode(ids)]
