"""hf-unit-lm: tiny random HuBERT + tiny random LLaMA saved through transformers' own classes, checked against
independent computations (numpy nearest centroid on the encoder's hidden states; log_softmax of the LM's logits)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
import transformers
from conftest import MINI_SUITE, run_cli

from most_eval.core.adapter import AudioScore, SampleFailure  # noqa: E402
from most_eval.core.audio import Audio, load_audio  # noqa: E402
from most_eval.core.hf_loading import ModelLoadError  # noqa: E402
from most_eval.models.hf_unit_lm import HFUnitLM, HFUnitLMArgs, dedup_runs  # noqa: E402

K, OFFSET, LAYER = 8, 2, 1  # units, unit -> token shift, hidden_states index
STORIES = sorted((MINI_SUITE / "spoken-storycloze" / "sSC").glob("*.wav"))


def _clip(i: int, seconds: float) -> Audio:
    audio = load_audio(STORIES[i])
    return Audio(audio.samples[:int(seconds * audio.sample_rate)], audio.sample_rate)


def _reference_hidden(enc_dir, audio: Audio) -> np.ndarray:
    """hidden_states[LAYER] through the folder's own feature extractor and HubertModel, (T, D) float64."""
    fe = transformers.Wav2Vec2FeatureExtractor.from_pretrained(enc_dir)
    model = transformers.HubertModel.from_pretrained(enc_dir).eval()
    values = fe(audio.samples, sampling_rate=16000, return_tensors="pt").input_values
    with torch.no_grad():
        return model(values, output_hidden_states=True).hidden_states[LAYER][0].double().numpy()


def _reference_units(enc_dir, centroids: np.ndarray, audio: Audio) -> np.ndarray:
    """Nearest centroid in plain numpy (no dedup)."""
    h = _reference_hidden(enc_dir, audio)
    return ((h[:, None, :] - centroids[None].astype(np.float64)) ** 2).sum(-1).argmin(1)


def _reference_score(lm_dir, ids: list[int]) -> float:
    """Summed log p(ids[t] | ids[:t]) for t >= 1, from one forward pass of the LM saved in ``lm_dir``."""
    lm = transformers.AutoModelForCausalLM.from_pretrained(lm_dir).eval()
    with torch.no_grad():
        logits = lm(torch.tensor([ids])).logits[0]  # (T, V)
    logp = torch.log_softmax(logits.double(), -1)[:-1]
    return float(logp.gather(1, torch.tensor(ids[1:])[:, None]).sum())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Encoder folder, LM folder, centroids (.safetensors and .npy), all seeded."""
    from safetensors.numpy import save_file

    root = tmp_path_factory.mktemp("unit_lm")
    torch.manual_seed(0)
    enc = root / "hubert"
    cfg = transformers.HubertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                                    conv_dim=(8, 8, 8), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8),
                                    num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)  # 320-sample hop
    transformers.HubertModel(cfg).save_pretrained(enc)
    transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=True,
                                          return_attention_mask=False).save_pretrained(enc)
    lm = root / "lm"
    lm_cfg = transformers.LlamaConfig(vocab_size=K + OFFSET, hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                      max_position_embeddings=512, bos_token_id=1, eos_token_id=1, pad_token_id=0)
    lm_cfg.offset = OFFSET  # TWIST keeps its unit offset in config.json
    transformers.LlamaForCausalLM(lm_cfg).save_pretrained(lm)
    # centroids: K real frames of one utterance, so that units vary (random vectors would all pick one centroid)
    frames = _reference_hidden(enc, _clip(0, 2.0))
    centroids = frames[np.linspace(0, len(frames) - 1, K).astype(int)].astype(np.float32)
    save_file({"centroids": centroids}, str(root / "km.safetensors"))
    np.save(root / "km.npy", centroids)
    return {"root": root, "enc": enc, "lm": lm, "centroids": centroids}


def _model(tiny, **kw) -> HFUnitLM:
    args = {"lm": str(tiny["lm"]), "encoder": str(tiny["enc"]), "quantizer": str(tiny["root"] / "km.safetensors"),
            "layer": LAYER, **kw}
    return HFUnitLM(HFUnitLMArgs(**args))


def test_units_are_numpy_nearest_centroids_from_either_file_and_dedup_collapses_runs(tiny):
    audio = _clip(1, 1.5)
    expected = _reference_units(tiny["enc"], tiny["centroids"], audio)
    raw = _model(tiny, dedup=False)
    assert raw.normalize is True and raw.sample_rate == 16000  # from the folder's feature-extractor config
    np.testing.assert_array_equal(raw.units(audio), expected)
    npy = _model(tiny, dedup=False, quantizer=str(tiny["root"] / "km.npy"))
    np.testing.assert_array_equal(npy.units(audio), expected)
    assert len(set(expected.tolist())) > 1 and (expected[1:] == expected[:-1]).any()  # varied, with runs
    deduped = _model(tiny).units(audio)  # dedup=true is the default
    np.testing.assert_array_equal(deduped, [u for j, u in enumerate(expected) if j == 0 or u != expected[j - 1]])
    assert len(deduped) < len(expected) and not (deduped[1:] == deduped[:-1]).any()
    np.testing.assert_array_equal(dedup_runs(np.array([5, 5, 3, 3, 5])), [5, 3, 5])


def test_linear_quantizer_is_argmax_of_its_logits(tiny):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    weight, bias = rng.standard_normal((K, 16)).astype(np.float32), rng.standard_normal(K).astype(np.float32)
    save_file({"weight": weight, "bias": bias}, str(tiny["root"] / "linear.safetensors"))
    audio = _clip(2, 1.0)
    h = _reference_hidden(tiny["enc"], audio)
    model = _model(tiny, dedup=False, quantizer=str(tiny["root"] / "linear.safetensors"))
    np.testing.assert_array_equal(model.units(audio), (h @ weight.T.astype(np.float64) + bias).argmax(1))


@pytest.mark.parametrize("extra", [{}, {"bos": True}, {"bos": True, "eos": True, "offset": 2}])
def test_score_is_the_lms_summed_log_softmax_of_the_unit_tokens(tiny, extra):
    audio = _clip(3, 1.0)
    units = dedup_runs(_reference_units(tiny["enc"], tiny["centroids"], audio))
    ids = ([1] if extra.get("bos") else []) + (units + OFFSET).tolist() + ([1] if extra.get("eos") else [])
    model = _model(tiny, **extra)
    assert model.offset == OFFSET  # from config.json unless given
    [score] = model.score_audio([audio])
    assert isinstance(score, AudioScore) and score.n_tokens == len(ids) - 1
    assert score.total == pytest.approx(_reference_score(tiny["lm"], ids), abs=1e-4)


def test_unit_map_replaces_the_offset(tiny):
    mapping = {str(u): K + OFFSET - 1 - u for u in range(K)}  # reversed: unit 0 -> last id
    (tiny["root"] / "map.json").write_text(json.dumps(mapping))
    audio = _clip(4, 1.0)
    units = dedup_runs(_reference_units(tiny["enc"], tiny["centroids"], audio))
    [score] = _model(tiny, unit_map=str(tiny["root"] / "map.json")).score_audio([audio])
    expected = _reference_score(tiny["lm"], [K + OFFSET - 1 - int(u) for u in units])
    assert score.total == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="not both"):
        _model(tiny, unit_map=str(tiny["root"] / "map.json"), offset=2)


def test_batch_of_three_equals_three_singles(tiny):
    model = _model(tiny, bos=True)
    audios = [_clip(0, 0.6), _clip(1, 1.4), _clip(5, 1.0)]  # different lengths: padding and the mask matter
    batched = model.score_audio(audios)
    singles = [model.score_audio([a])[0] for a in audios]
    for b, s in zip(batched, singles):
        assert b.n_tokens == s.n_tokens
        assert b.total == pytest.approx(s.total, abs=1e-5)
    assert len({s.n_tokens for s in singles}) == 3
    # audio shorter than HuBERT's receptive field is a failed slot, not a failed batch
    short, ok = model.score_audio([Audio(audios[0].samples[:100], 16000), audios[0]])
    assert isinstance(short, SampleFailure) and ok.total == pytest.approx(singles[0].total, abs=1e-5)


def test_pickled_quantizer_is_refused_in_one_line(tiny, tmp_path):
    centroids = tiny["centroids"]
    (tmp_path / "km.bin").write_bytes(pickle.dumps(centroids))
    (tmp_path / "km.pkl").write_bytes(pickle.dumps({"cluster_centers_": centroids}))
    np.save(tmp_path / "obj.npy", np.array([centroids, None], dtype=object))  # an object array is pickled inside
    for name in ("km.bin", "km.pkl", "obj.npy"):
        with pytest.raises(ModelLoadError) as err:
            _model(tiny, quantizer=str(tmp_path / name))
        assert "pickle" in str(err.value) and "\n" not in str(err.value)
    proc = run_cli("run", "--model", "hf-unit-lm", "--model-args",
                   f"lm={tiny['lm']},encoder={tiny['enc']},quantizer={tmp_path / 'km.bin'},layer=1",
                   "--tasks", "slm:sstorycloze", "--output", str(tmp_path / "out"), "--no-progress",
                   env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "pickle" in proc.stderr


def test_cli_scores_spoken_storycloze(tiny, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "hf-unit-lm", "--model-args",
                   f"lm={tiny['lm']},encoder={tiny['enc']},quantizer={tiny['root'] / 'km.safetensors'},layer=1",
                   "--tasks", "slm:sstorycloze", "--output", str(out), "--no-progress", env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    res = json.loads((out / "results.json").read_text())["results"]["slm:sstorycloze"]
    assert res["scored"] == res["listed"] == 6 and res["errors"] == 0
    assert 0 <= res["accuracy"] <= 100
