"""``seedtts-wavlm:PATH``: Seed-TTS-eval's WavLM + ECAPA-TDNN verifier from a checkpoint in the official layout.

The checkpoint here holds random weights under the names UniSpeech's ``ECAPA_TDNN_SMALL`` saves: head keys as they
are, WavLM keys under ``feature_extract.model.`` with fairseq/s3prl names (written out below independently of the
embedder's key map), weight norm in the old ``weight_g``/``weight_v`` layout, plus the training-only ``mask_emb`` and
AAM classifier. A tiny WavLM config (``config.json`` beside the checkpoint) keeps it small.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from conftest import espeak

from most_eval.core.audio import Audio
from most_eval.models.speaker_embedders import SEEDTTS_CHECKPOINT, SeedTTSWavLMEmbedder, build_embedder
from most_eval.models.seedtts_verifier import WAVLM_LARGE_CONFIG, seedtts_verifier

# config.json of the test: WavLM-Large's layout (LayerNorm conv blocks, pre-LN transformer) at toy sizes
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, conv_dim=[16] * 7,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)

# transformers WavLMModel name -> fairseq/s3prl WavLM name (the official checkpoint's, after "feature_extract.model.")
TO_OFFICIAL = [
    (r"^feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
    (r"^feature_extractor\.conv_layers\.(\d+)\.layer_norm\.", r"feature_extractor.conv_layers.\1.2.1."),
    (r"^feature_projection\.layer_norm\.", "layer_norm."),
    (r"^feature_projection\.projection\.", "post_extract_proj."),
    (r"^encoder\.pos_conv_embed\.conv\.(parametrizations\.weight\.original0|weight_g)$", "encoder.pos_conv.0.weight_g"),
    (r"^encoder\.pos_conv_embed\.conv\.(parametrizations\.weight\.original1|weight_v)$", "encoder.pos_conv.0.weight_v"),
    (r"^encoder\.pos_conv_embed\.conv\.bias$", "encoder.pos_conv.0.bias"),
    (r"\.attention\.gru_rel_pos_linear\.", ".self_attn.grep_linear."),
    (r"\.attention\.gru_rel_pos_const$", ".self_attn.grep_a"),
    (r"\.attention\.rel_attn_embed\.", ".self_attn.relative_attention_bias."),
    (r"\.attention\.", ".self_attn."),
    (r"^(encoder\.layers\.\d+)\.layer_norm\.", r"\1.self_attn_layer_norm."),
    (r"\.feed_forward\.intermediate_dense\.", ".fc1."),
    (r"\.feed_forward\.output_dense\.", ".fc2."),
]

# what s3prl's WavLM calls the parameters of its front end and of transformer layer 0 (layer 0 alone has the
# relative position embedding)
OFFICIAL_FRONT_AND_LAYER0 = {
    "feature_extractor.conv_layers.0.0.weight", "feature_extractor.conv_layers.0.2.1.weight",
    "feature_extractor.conv_layers.0.2.1.bias", "layer_norm.weight", "layer_norm.bias", "post_extract_proj.weight",
    "post_extract_proj.bias", "encoder.pos_conv.0.bias", "encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v",
    "encoder.layer_norm.weight", "encoder.layer_norm.bias",
    *(f"encoder.layers.0.self_attn.{p}_proj.{w}" for p in "qkv" for w in ("weight", "bias")),
    "encoder.layers.0.self_attn.out_proj.weight", "encoder.layers.0.self_attn.out_proj.bias",
    "encoder.layers.0.self_attn.grep_linear.weight", "encoder.layers.0.self_attn.grep_linear.bias",
    "encoder.layers.0.self_attn.grep_a", "encoder.layers.0.self_attn.relative_attention_bias.weight",
    "encoder.layers.0.self_attn_layer_norm.weight", "encoder.layers.0.self_attn_layer_norm.bias",
    "encoder.layers.0.fc1.weight", "encoder.layers.0.fc1.bias",
    "encoder.layers.0.fc2.weight", "encoder.layers.0.fc2.bias",
    "encoder.layers.0.final_layer_norm.weight", "encoder.layers.0.final_layer_norm.bias",
}


def official_name(key: str) -> str:
    if not key.startswith("wavlm."):
        return key  # the head: UniSpeech's names unchanged
    name = key[len("wavlm."):]
    for pattern, repl in TO_OFFICIAL:
        name = re.sub(pattern, repl, name)
    return "feature_extract.model." + name


def random_official_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A randomly initialised verifier (tiny WavLM), its BatchNorm statistics perturbed, in the official key layout."""
    from transformers import WavLMConfig

    torch.manual_seed(seed)
    model = seedtts_verifier(WavLMConfig(**{**WAVLM_LARGE_CONFIG, **TINY}, mask_time_prob=0.0, mask_feature_prob=0.0))
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("running_mean"):
            value = 0.1 * torch.randn_like(value)
        elif key.endswith("running_var"):
            value = 0.5 + torch.rand_like(value)
        elif value.is_floating_point():
            value = value + 0.05 * torch.randn_like(value)
        state[official_name(key)] = value.clone()
    state["feature_extract.model.mask_emb"] = torch.rand(TINY["hidden_size"])
    state["loss_calculator.projection.weight"] = torch.randn(10, 256)
    return state


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seedtts_sv")
    state = random_official_state()
    torch.save({"model": state}, folder / SEEDTTS_CHECKPOINT)
    (folder / "config.json").write_text(json.dumps(TINY))
    return folder, state


@pytest.fixture(scope="module")
def embedder(official):
    return build_embedder(f"seedtts-wavlm:{official[0]}")


def speech(text="the weather was lovely all weekend", voice="en-us", rate=16000) -> Audio:
    return Audio(espeak(text, voice, rate), rate)


def test_official_names_are_the_ones_written_here(official):
    _, state = official
    upstream = {k[len("feature_extract.model."):] for k in state if k.startswith("feature_extract.model.")}
    assert OFFICIAL_FRONT_AND_LAYER0 <= upstream
    assert "encoder.layers.1.self_attn.relative_attention_bias.weight" not in upstream
    assert {"feature_weight", "layer1.conv.weight", "layer2.Res2Conv1dReluBn.convs.6.weight",
            "layer4.SE_Connect.linear2.bias", "pooling.linear1.weight", "bn.running_var", "linear.weight"} <= set(state)
    assert state["feature_weight"].shape == (TINY["num_hidden_layers"] + 1,)


def test_state_dict_loads_strictly_onto_every_parameter(official, embedder):
    _, state = official
    report = embedder.load_report
    assert report["ignored"] == []
    assert sorted(report["unused"]) == ["feature_extract.model.mask_emb", "loss_calculator.projection.weight"]
    own = embedder.model.state_dict()
    assert report["loaded"] == {"checkpoint": len(own)}
    for key, value in own.items():  # every tensor of the model is the checkpoint's, nothing left at init
        assert torch.equal(value.cpu(), state[official_name(key)]), key
    assert embedder.name == f"seedtts-wavlm:{SEEDTTS_CHECKPOINT}"


def test_embedding_is_deterministic_and_self_similarity_is_one(official, embedder):
    a, b = speech(), speech("turn left at the second traffic light", "en-gb+f3")
    first = embedder.embed([a, b])
    assert first.shape == (2, 256) and np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-6)
    assert np.array_equal(first, embedder.embed([a, b]))
    again = SeedTTSWavLMEmbedder(str(official[0] / SEEDTTS_CHECKPOINT))  # PATH naming the .pth itself
    assert np.array_equal(first, again.embed([a, b]))
    same, other = embedder.similarity([a, a], [a, b])
    assert same == pytest.approx(1.0, abs=1e-6)
    assert other < 0.9999


def test_other_rates_are_resampled_to_16k(embedder):
    import soxr

    clip = speech(rate=24000)
    resampled = soxr.resample(clip.samples, 24000, 16000).astype(np.float32)
    assert np.allclose(embedder.embed([clip]), embedder.embed([Audio(resampled, 16000)]), atol=1e-6)


def test_clip_shorter_than_one_frame_has_no_embedding(embedder):
    emb = embedder.embed([Audio(np.zeros(399, np.float32), 16000), speech()])
    assert np.isnan(emb[0]).all() and np.isfinite(emb[1]).all()


class Payload:
    """Unpickling this calls ``open(marker, "w")``: code run by loading a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payload_in_checkpoint_is_refused(tmp_path):
    state = random_official_state()
    torch.save({"model": state, "args": Payload(tmp_path / "ran")}, tmp_path / SEEDTTS_CHECKPOINT)
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    with pytest.raises(ValueError, match="weights_only=True"):
        SeedTTSWavLMEmbedder(str(tmp_path))
    assert not (tmp_path / "ran").exists()
    torch.load(tmp_path / SEEDTTS_CHECKPOINT, weights_only=False)  # the payload is live: a plain load runs it
    assert (tmp_path / "ran").exists()


def test_upstream_weights_may_come_from_wavlm_large_pt(tmp_path, official):
    _, state = official
    head = {k: v for k, v in state.items() if not k.startswith("feature_extract.model.")}
    prefix = "feature_extract.model."
    upstream = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    torch.save({"model": head}, tmp_path / SEEDTTS_CHECKPOINT)
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    with pytest.raises(ValueError, match=r"not in the checkpoint .*WavLM-Large\.pt.*wavlm\.feature_extractor"):
        SeedTTSWavLMEmbedder(str(tmp_path))
    torch.save({"cfg": {"encoder_layers": 2, "normalize": True}, "model": upstream}, tmp_path / "WavLM-Large.pt")
    emb = SeedTTSWavLMEmbedder(str(tmp_path))
    n_wavlm = sum(k.startswith("wavlm.") for k in emb.model.state_dict())
    assert emb.load_report["loaded"]["WavLM-Large.pt"] == n_wavlm
    clip = speech()
    assert np.array_equal(emb.embed([clip]), build_embedder(f"seedtts-wavlm:{official[0]}").embed([clip]))


def test_bad_paths_and_configs_are_one_line_errors(tmp_path, official):
    with pytest.raises(ValueError, match="no wavlm_large_finetune.pth"):
        build_embedder(f"seedtts-wavlm:{tmp_path}")
    torch.save({"model": official[1]}, tmp_path / SEEDTTS_CHECKPOINT)
    (tmp_path / "config.json").write_text(json.dumps({**TINY, "intermediate_size": 48}))
    with pytest.raises(ValueError, match="does not fit the model"):
        SeedTTSWavLMEmbedder(str(tmp_path))
    with pytest.raises(ValueError, match="seedtts-wavlm:PATH"):
        build_embedder("seedtts-wavlm")
