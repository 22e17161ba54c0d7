"""UTMOS (``mos=utmos:PATH``): our UTMOS22 strong learner equals UTMOS-PyTorch's independent one on the same
weights and the same speech, reads SpeechMOS's checkpoint layout (keys mapped here by hand), and runs in a TTS task
beside DNSMOS; a missing or foreign file is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from conftest import espeak, read_jsonl, run_cli

from utmos_pytorch import utmos_torch as utmos_pytorch  # the test extra: pip install 'most-eval[test]'

from most_eval.core.audio import load_audio
from most_eval.models.utmos import UTMOSFileError, UTMOSScorer


@pytest.fixture(scope="module")
def original_file(tmp_path_factory):
    """Random UTMOS22 weights in the original layout (UTMOS-PyTorch's ``utmos_state_dict.pt``); the LSTM and the
    projection drawn wide, so the score moves with the speech."""
    torch.manual_seed(0)
    model = utmos_pytorch.UTMOSModel()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith("output_layers"):
                param.normal_(0, 0.1)
    path = tmp_path_factory.mktemp("utmos") / "utmos_state_dict.pt"
    torch.save(model.state_dict(), path)
    return path


def speechmos_layout(state: dict) -> dict:
    """The original weights under SpeechMOS's keys, mapped by hand: wav2vec2.* (fairseq names, with the mask
    embedding UTMOS-PyTorch leaves out), the domain-0 and judge-288 rows, the BLSTM, the projection without its
    dropout."""
    out = {}
    for key, value in state.items():
        if key.startswith("feature_extractors.0.ssl_model."):
            out["wav2vec2." + key.removeprefix("feature_extractors.0.ssl_model.")] = value
        elif key.startswith("output_layers.0.decoder_rnn."):
            out["blstm." + key.removeprefix("output_layers.0.decoder_rnn.")] = value
    out["wav2vec2.mask_emb"] = torch.zeros(768)
    out["domain_emb"] = state["feature_extractors.1.embedding.weight"][0:1].clone()
    out["judge_emb"] = state["output_layers.0.judge_embedding.weight"][288:289].clone()
    out["projection.0.weight"] = state["output_layers.1.net.0.weight"]
    out["projection.0.bias"] = state["output_layers.1.net.0.bias"]
    out["projection.2.weight"] = state["output_layers.1.net.3.weight"]
    out["projection.2.bias"] = state["output_layers.1.net.3.bias"]
    return out


def speech_clips(tmp_path):
    clips = [("the quick brown fox jumps over the lazy dog", "en-us", 16000),
             ("we should plant more trees in the park", "en-gb", 22050),
             ("a short one", "en-us+f3", 16000)]
    paths = []
    for i, (text, voice, rate) in enumerate(clips):
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], espeak(text, voice, rate=rate), rate)
    return paths


def test_utmos_equals_utmos_pytorch_in_both_layouts(tmp_path, original_file):
    reference = utmos_pytorch.UTMOSScoreTorch(ckpt_path=str(original_file))
    speechmos_file = tmp_path / "utmos22_strong_step7459_v1.pt"
    state = speechmos_layout(torch.load(original_file, weights_only=True))
    assert len(state) == 225  # SpeechMOS's checkpoint holds 225 tensors
    torch.save(state, speechmos_file)
    paths = speech_clips(tmp_path)
    theirs = []
    for path in paths:  # UTMOS-PyTorch takes 16 kHz: resampled as ours resamples (soxr)
        wav, rate = sf.read(path, dtype="float32")
        wav = soxr.resample(wav, rate, 16000) if rate != 16000 else wav
        theirs.append(float(reference.score(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None])[0]))
    for layout in (original_file, speechmos_file):
        ours = [s["utmos"] for s in UTMOSScorer(layout).score([load_audio(p, None) for p in paths])]
        assert ours == pytest.approx(theirs, abs=1e-4)
    assert max(theirs) - min(theirs) > 0.01  # the score depends on the speech


def test_utmos_in_a_tts_run_beside_dnsmos(tmp_path, original_file):
    out = tmp_path / "run"
    proc = run_cli("run", "--model", "offline-baseline", "--tasks", "tts:seed-tts-eval-en", "--judge", "dummy",
                   "--limit", "2", "--task-args", f"mos=dnsmos+utmos:{original_file}", "--output", str(out),
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads((out / "results.json").read_text())
    entry = document["results"]["tts:seed-tts-eval-en"]
    assert entry["mos"].startswith("dnsmos (speechmos")
    assert "utmos22-strong (utmos_state_dict.pt, sha256 " in entry["mos"]
    records = read_jsonl(out / document["tasks"]["tts:seed-tts-eval-en"]["samples_file"])
    scorer = UTMOSScorer(original_file)
    for record in records:
        assert "dnsmos_ovrl" in record
        again = scorer.score([load_audio(out / record["audio"], None)])[0]["utmos"]
        assert record["utmos"] == pytest.approx(again, abs=1e-5)
    assert entry["utmos"] == pytest.approx(np.mean([r["utmos"] for r in records]), abs=1e-3)
    reasons = document["comparability"]["tts:seed-tts-eval-en"]["metrics"]["utmos"]["reasons"]
    assert "UTMOS is not a number of the MoST paper" in " ".join(reasons)


def test_a_missing_or_foreign_utmos_file_is_one_line(tmp_path):
    missing = run_cli("run", "--model", "dummy", "--tasks", "tts:seed-tts-eval-en", "--task-args",
                      f"mos=utmos:{tmp_path / 'nope.pt'}", "--output", str(tmp_path / "a"), "--no-progress")
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "nope.pt: no UTMOS checkpoint there" in missing.stderr
    foreign = tmp_path / "foreign.pt"
    torch.save({"linear.weight": torch.zeros(2, 2)}, foreign)
    with pytest.raises(UTMOSFileError, match="foreign.pt: not a UTMOS22 strong checkpoint: keys"):
        UTMOSScorer(foreign)
    partial = tmp_path / "partial.pt"
    state = speechmos_layout(utmos_pytorch.UTMOSModel().state_dict())
    del state["blstm.weight_hh_l0"]
    torch.save(state, partial)
    with pytest.raises(UTMOSFileError, match=r"1 missing key\(s\) \(first \['blstm.weight_hh_l0'\]\)"):
        UTMOSScorer(partial)
    for bad in ("utmos", "utmos:", "dnsmos+dnsmos", "none+dnsmos", "pesq"):
        proc = run_cli("run", "--model", "dummy", "--tasks", "tts:seed-tts-eval-en", "--task-args", f"mos={bad}",
                       "--output", str(tmp_path / "b"), "--no-progress")
        assert proc.returncode == 2 and proc.stderr.strip().startswith("error:"), (bad, proc.stderr)
