"""Tests of the MoST reference model's checkpoint importers (reference_impl/import_weights.py, speech_encoder.py,
vocoder.py; import name most_reference): HuBERT features and quantizers, a DeepSeek-V2 per-expert checkpoint imported
into MoST (and the DeepSeek-V2-Lite shapes), bad checkpoints refused with the file named and no pickle executed, and the
vocoder against a plain HiFi-GAN forward. Tiny configs, CPU, float32; the model helpers come from test_most_model.py.
"""

from __future__ import annotations

import builtins
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import DeepseekV2ForCausalLM, HubertConfig, HubertModel

from most_reference.import_weights import (
    CheckpointError,
    import_deepseek_v2,
    import_hubert,
    import_quantizer,
    import_vocoder,
)
from most_reference.model import MoSTForCausalLM, MoSTMoe
from most_reference.speech_encoder import KMeansQuantizer, LinearQuantizer, SpeechEncoder
from most_reference.vocoder import UnitVocoder, speechbrain_to_fairseq

from test_most_model import TINY, TOL, deepseek_config, max_diff, mixed_batch, tiny_config

torch.set_num_threads(2)


# -----------------------------------------------------------------------------------------------------------------
# (d) speech encoder = HubertModel


def tiny_hubert(seed=0) -> HubertModel:
    torch.manual_seed(seed)
    config = HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16, 16), conv_stride=(5, 2, 2), conv_kernel=(10, 3, 2), conv_bias=False,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )
    model = HubertModel(config).eval()
    with torch.no_grad():  # non-trivial norms and weight-norm gains
        for name, p in model.named_parameters():
            if "norm" in name or "original0" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


# transformers -> fairseq renames, restated independently of import_weights' table
HF_TO_FAIRSEQ = [
    ("feature_extractor.conv_layers.{}.conv.", "feature_extractor.conv_layers.{}.0."),
    ("feature_extractor.conv_layers.0.layer_norm.", "feature_extractor.conv_layers.0.2."),
    ("feature_projection.layer_norm.", "layer_norm."),
    ("feature_projection.projection.", "post_extract_proj."),
    ("masked_spec_embed", "mask_emb"),
    ("encoder.pos_conv_embed.conv.parametrizations.weight.original0", "encoder.pos_conv.0.weight_g"),
    ("encoder.pos_conv_embed.conv.parametrizations.weight.original1", "encoder.pos_conv.0.weight_v"),
    ("encoder.pos_conv_embed.conv.bias", "encoder.pos_conv.0.bias"),
    (".attention.", ".self_attn."),
    (".feed_forward.intermediate_dense.", ".fc1."),
    (".feed_forward.output_dense.", ".fc2."),
]


def to_fairseq(state):
    out = {}
    for key, tensor in state.items():
        new = key
        for a, b in HF_TO_FAIRSEQ:
            for i in range(3):
                new = new.replace(a.format(i), b.format(i))
        new = new.replace(".layer_norm.", ".self_attn_layer_norm.") if new.startswith("encoder.layers.") else new
        out[new] = tensor
    return out


@torch.no_grad()
def test_speech_encoder_features_equal_hubert(tmp_path):
    hubert = tiny_hubert()
    encoder = SpeechEncoder(hubert, lm_hidden_size=64, feature_layer=2)
    wav = torch.randn(1, 4000)
    reference = HubertModel.forward(hubert, wav, output_hidden_states=True).hidden_states
    assert max_diff(encoder.hubert_features(wav), reference[2]) == 0
    assert max_diff(encoder.hubert_features(wav, layer=1), reference[1]) == 0
    assert max_diff(encoder(wav), encoder.proj(reference[2])) == 0
    assert encoder(wav).shape == (1, encoder.num_frames(4000), 64)
    encoder.train()
    assert not encoder.hubert.training and encoder.proj.training
    assert not any(p.requires_grad for p in encoder.hubert.parameters())

    # SpiritLM-style converted fairseq dict -> HubertModel gives the same features
    converted = {
        "model_cfg": {
            "encoder_layers": 2, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64, "encoder_attention_heads": 2,
            "activation_fn": "gelu", "conv_feature_layers": "[(16,10,5)] + [(16,3,2)] + [(16,2,2)]",
            "conv_bias": False, "extractor_mode": "default", "conv_pos": 16, "conv_pos_groups": 2,
            "layer_norm_first": False,
        },
        "task_cfg": {"normalize": False, "sample_rate": 16000},
        "model_weight": to_fairseq(hubert.state_dict()) | {"label_embs_concat": torch.zeros(3, 4)},
        "dictionaries_symbols": [["0", "1", "2"]],
    }
    torch.save(converted, tmp_path / "hubert_converted.pt")
    imported, normalize = import_hubert(tmp_path / "hubert_converted.pt")
    assert normalize is False
    out = imported(wav, output_hidden_states=True).hidden_states
    assert all(max_diff(a, b) <= 1e-6 for a, b in zip(out, reference))

    hubert.save_pretrained(tmp_path / "hf_hubert")
    from_dir, _ = import_hubert(tmp_path / "hf_hubert")
    assert max_diff(from_dir(wav).last_hidden_state, reference[-1]) <= 1e-6


@torch.no_grad()
def test_quantizers(tmp_path):
    torch.manual_seed(0)
    features = torch.randn(1, 9, 32)
    centroids = torch.randn(5, 32)
    np.save(tmp_path / "km.npy", centroids.numpy())
    kmeans = import_quantizer(tmp_path / "km.npy")
    expected = torch.cdist(features[0], centroids).argmin(-1)
    assert torch.equal(kmeans(features)[0], expected)

    linear = LinearQuantizer([32, 24, 16, 6])  # 5 units + blank
    save_file({k: v.contiguous() for k, v in linear.state_dict().items()}, str(tmp_path / "lin.safetensors"))
    loaded = import_quantizer(tmp_path / "lin.safetensors")
    assert isinstance(loaded, LinearQuantizer) and loaded.num_units == 5
    units = loaded(features)
    assert units.shape == (1, 9) and (units < 5).all()

    class FixedLogits(torch.nn.Module):  # argmax per frame: [5, 2, 5, 5, 3]; 5 is the blank
        def forward(self, x):
            return F.one_hot(torch.tensor([[5, 2, 5, 5, 3]]), 6).float()

    loaded.encoder = FixedLogits()
    assert loaded(features).tolist() == [[3, 2, 2, 2, 3]]  # blanks take the unit on their left (frame 0 wraps)
    assert isinstance(kmeans, KMeansQuantizer)


# -----------------------------------------------------------------------------------------------------------------
# (e) a DeepSeek-V2 per-expert checkpoint imports into MoST


def save_deepseek(tmp_path: Path, seed=0, shard="40KB") -> tuple[DeepseekV2ForCausalLM, Path]:
    torch.manual_seed(seed)
    model = DeepseekV2ForCausalLM(deepseek_config()).eval()
    directory = tmp_path / "dsv2"
    model.save_pretrained(directory, max_shard_size=shard)
    return model, directory


@torch.no_grad()
def test_deepseek_checkpoint_imports_into_most(tmp_path):
    deepseek, directory = save_deepseek(tmp_path)
    index = json.loads((directory / "model.safetensors.index.json").read_text())["weight_map"]
    assert "model.layers.1.mlp.experts.5.gate_proj.weight" in index  # per-expert layout, several shards
    assert len(set(index.values())) > 1

    most = import_deepseek_v2(directory, most_config=tiny_config(modality_routing=False), dtype=torch.float32)
    assert isinstance(most, MoSTForCausalLM) and isinstance(most.model.layers[1].mlp, MoSTMoe)
    ids = mixed_batch()
    assert max_diff(most(ids).logits, deepseek(ids).logits) <= TOL

    # expert j of the checkpoint is expert j of MoST (gate rows first in the merged tensor)
    up = index_tensor(directory, "model.layers.2.mlp.experts.6.up_proj.weight")
    inter = most.config.moe_intermediate_size
    assert torch.equal(most.model.layers[2].mlp.experts.gate_up_proj[6, inter:], up)

    routed = import_deepseek_v2(directory, most_config=tiny_config(), dtype=torch.float32)
    assert routed.config.modality_routing and routed.config.num_text_experts == 4
    assert all(torch.equal(a, b) for a, b in zip(routed.state_dict().values(), most.state_dict().values()))


def test_deepseek_v2_lite_config_gives_most_full_architecture():
    """V2-Lite's published config.json (legacy rope_scaling form) -> the MoST shapes (DeepSeek-V2-Lite's config, the paper's expert split)."""
    from most_reference.import_weights import expected_checkpoint_shapes, most_config_from_deepseek

    lite = {
        "model_type": "deepseek_v2", "vocab_size": 102400, "hidden_size": 2048, "intermediate_size": 10944,
        "moe_intermediate_size": 1408, "num_hidden_layers": 27, "num_attention_heads": 16, "num_key_value_heads": 16,
        "n_shared_experts": 2, "n_routed_experts": 64, "num_experts_per_tok": 6, "first_k_dense_replace": 1,
        "kv_lora_rank": 512, "q_lora_rank": None, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
        "topk_method": "greedy", "n_group": 1, "topk_group": 1, "norm_topk_prob": False, "routed_scaling_factor": 1.0,
        "rms_norm_eps": 1e-6, "max_position_embeddings": 163840, "rope_theta": 10000, "bos_token_id": 100000,
        "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096, "beta_fast": 32,
                         "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707},
        "aux_loss_alpha": 0.001, "seq_aux": True, "auto_map": {"AutoConfig": "configuration_deepseek.DeepseekV2Config"},
    }
    config = most_config_from_deepseek(lite)
    assert config.num_text_experts == 32 and config.q_lora_rank is None and config.rope_parameters["factor"] == 40
    shapes = expected_checkpoint_shapes(config)
    assert shapes["model.layers.1.mlp.experts.63.gate_proj.weight"] == (1408, 2048)
    assert shapes["model.layers.26.mlp.experts.0.down_proj.weight"] == (2048, 1408)
    assert shapes["model.layers.1.mlp.gate.weight"] == (64, 2048)
    assert shapes["model.layers.1.mlp.shared_experts.up_proj.weight"] == (2816, 2048)
    assert shapes["model.layers.0.mlp.gate_proj.weight"] == (10944, 2048)
    assert abs(sum(np.prod(s) for s in shapes.values()) / 1e9 - 15.7) < 0.05  # DeepSeek-V2-Lite: 15.7B parameters
    with pytest.raises(CheckpointError, match="hidden_size"):
        most_config_from_deepseek({**lite, "hidden_size": 1024})


def index_tensor(directory: Path, key: str) -> torch.Tensor:
    index = json.loads((directory / "model.safetensors.index.json").read_text())["weight_map"]
    return load_file(str(directory / index[key]))[key]


# -----------------------------------------------------------------------------------------------------------------
# (f) bad checkpoints


def test_missing_shard_is_named(tmp_path):
    _, directory = save_deepseek(tmp_path)
    index = json.loads((directory / "model.safetensors.index.json").read_text())["weight_map"]
    victim = sorted(set(index.values()))[1]
    (directory / victim).unlink()
    with pytest.raises(CheckpointError) as error:
        import_deepseek_v2(directory, most_config=tiny_config(), dtype=torch.float32)
    assert victim in str(error.value) and "missing" in str(error.value) and "\n" not in str(error.value)


def test_wrong_shape_names_file_and_tensor(tmp_path):
    _, directory = save_deepseek(tmp_path)
    index = json.loads((directory / "model.safetensors.index.json").read_text())["weight_map"]
    key = "model.layers.1.mlp.experts.3.down_proj.weight"
    shard = directory / index[key]
    tensors = load_file(str(shard))
    tensors[key] = torch.zeros(tensors[key].shape[0], tensors[key].shape[1] + 1)
    save_file(tensors, str(shard), metadata={"format": "pt"})
    with pytest.raises(CheckpointError) as error:
        import_deepseek_v2(directory, most_config=tiny_config(), dtype=torch.float32)
    assert shard.name in str(error.value) and key in str(error.value)


class Payload:
    """A pickle that creates a file when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (str(self.marker), "w")


def test_pickle_instead_of_safetensors_is_refused_unexecuted(tmp_path):
    _, directory = save_deepseek(tmp_path, shard="10GB")  # single model.safetensors
    marker = tmp_path / "pwned"
    target = directory / "model.safetensors"

    live = tmp_path / "live"  # the payload is live: unpickling it does create its marker
    pickle.loads(pickle.dumps(Payload(live)))
    assert live.exists()

    for writer in (lambda: target.write_bytes(pickle.dumps(Payload(marker))), lambda: torch.save(Payload(marker), target)):
        writer()
        with pytest.raises(CheckpointError) as error:
            import_deepseek_v2(directory, most_config=tiny_config(), dtype=torch.float32)
        assert "model.safetensors" in str(error.value) and "expected safetensors" in str(error.value)
        assert not marker.exists()

    # where a .pt dict is expected, torch.load(weights_only=True) refuses the payload
    torch.save({"model_cfg": {}, "model_weight": Payload(marker)}, tmp_path / "hubert.pt")
    with pytest.raises(CheckpointError) as error:
        import_hubert(tmp_path / "hubert.pt")
    assert "hubert.pt" in str(error.value) and "weights_only" in str(error.value)
    with pytest.raises(CheckpointError):
        import_vocoder(tmp_path / "hubert.pt", config_path=TINY)
    assert not marker.exists()

    (tmp_path / "km.joblib").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(CheckpointError):
        import_quantizer(tmp_path / "km.joblib")
    assert not marker.exists()


# -----------------------------------------------------------------------------------------------------------------
# Vocoder: fairseq-layout weights through speechbrain's generator equal a plain HiFi-GAN forward


VOCODER_CFG = dict(
    upsample_rates=[5, 4, 2], upsample_kernel_sizes=[11, 8, 4], upsample_initial_channel=32,
    resblock_kernel_sizes=[3, 7], resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
    num_embeddings=20, embedding_dim=8, model_in_dim=24, multispkr=True, num_speakers=3, multistyle=True, num_styles=4,
    dur_predictor_params=dict(encoder_embed_dim=8, var_pred_hidden_dim=8, var_pred_kernel_size=3, var_pred_dropout=0.5),
)


def plain_hifigan(w: dict, units: torch.Tensor, speaker: int, style: int) -> torch.Tensor:
    """HiFi-GAN generator from the fairseq-layout dict, zero padding, written out with torch.nn.functional."""

    def weight(name):
        g, v = w[f"{name}.weight_g"], w[f"{name}.weight_v"]
        return g * v / v.norm(dim=(1, 2), keepdim=True)

    def conv(x, name, dilation=1):
        k = w[f"{name}.weight_v"].shape[-1]
        return F.conv1d(x, weight(name), w[f"{name}.bias"], padding=dilation * (k - 1) // 2, dilation=dilation)

    x = w["dict.weight"][units].T[None]  # (1, C, T)
    cond = torch.cat([w["spkr.weight"][speaker], w["style.weight"][style]])[None, :, None].expand(-1, -1, x.shape[-1])
    x = conv(torch.cat([x, cond], dim=1), "conv_pre")
    cfg = VOCODER_CFG
    for i, (rate, k) in enumerate(zip(cfg["upsample_rates"], cfg["upsample_kernel_sizes"])):
        x = F.conv_transpose1d(F.leaky_relu(x, 0.1), weight(f"ups.{i}"), w[f"ups.{i}.bias"], stride=rate, padding=(k - rate) // 2)
        total = 0
        for j, dilations in enumerate(cfg["resblock_dilation_sizes"]):
            block, y = f"resblocks.{i * len(cfg['resblock_kernel_sizes']) + j}", x
            for n, d in enumerate(dilations):
                t = conv(F.leaky_relu(y, 0.1), f"{block}.convs1.{n}", d)
                y = y + conv(F.leaky_relu(t, 0.1), f"{block}.convs2.{n}")
            total = total + y
        x = total / len(cfg["resblock_kernel_sizes"])
    return torch.tanh(conv(F.leaky_relu(x), "conv_post")).view(-1)


@torch.no_grad()
def test_vocoder_matches_plain_hifigan_on_fairseq_weights(tmp_path):
    torch.manual_seed(0)
    fairseq_state = speechbrain_to_fairseq(UnitVocoder(VOCODER_CFG).state_dict())
    fairseq_state = {k: v + 0.05 * torch.randn_like(v) for k, v in fairseq_state.items()}
    (tmp_path / "config.json").write_text(json.dumps(VOCODER_CFG))
    torch.save({"generator": fairseq_state}, tmp_path / "generator.pt")

    vocoder = import_vocoder(tmp_path / "generator.pt")
    units = torch.tensor([3, 3, 7, 1, 1, 1, 12, 19])
    wav = vocoder(units, speaker=2, style=1, dur_prediction=False)
    assert wav.shape == (units.numel() * vocoder.samples_per_unit,)
    assert max_diff(wav, plain_hifigan(fairseq_state, units, 2, 1)) <= 1e-5
    assert vocoder(units, speaker=2, style=1).numel() % vocoder.samples_per_unit == 0  # with duration prediction
