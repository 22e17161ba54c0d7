"""Tests of the MoST reference model (reference_impl/, import name most_reference). Tiny configs, CPU, float32."""

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
from transformers import DeepseekV2Config, DeepseekV2ForCausalLM, HubertConfig, HubertModel

from most_reference.import_weights import (
    CheckpointError,
    import_deepseek_v2,
    import_hubert,
    import_quantizer,
    import_vocoder,
)
from most_reference.model import MoSTConfig, MoSTForCausalLM, ModalityAwareRouter, MoSTMoe
from most_reference.speech_encoder import KMeansQuantizer, LinearQuantizer, SpeechEncoder
from most_reference.vocoder import UnitVocoder, speechbrain_to_fairseq

TINY = Path(__file__).resolve().parents[1] / "reference_impl" / "configs" / "most_tiny.json"
TINY_DICT = json.loads(TINY.read_text())
MOST_ONLY = set(MoSTConfig.__annotations__)
TOL = 1e-5

torch.set_num_threads(2)


def tiny_config(**overrides) -> MoSTConfig:
    return MoSTConfig.from_dict({**TINY_DICT, **overrides})


def deepseek_config() -> DeepseekV2Config:
    fields = {k: v for k, v in TINY_DICT.items() if k not in MOST_ONLY and k not in ("model_type", "architectures")}
    return DeepseekV2Config.from_dict(fields)


def tiny_most(seed=0, **overrides) -> MoSTForCausalLM:
    torch.manual_seed(seed)
    return MoSTForCausalLM(tiny_config(**overrides)).eval()


def deepseek_twin(most: MoSTForCausalLM) -> DeepseekV2ForCausalLM:
    """transformers' own DeepSeek-V2 with MoST's weights (the parameter names are the same)."""
    twin = DeepseekV2ForCausalLM(deepseek_config()).eval()
    twin.load_state_dict(most.state_dict(), strict=True)
    return twin


def mixed_batch() -> torch.Tensor:
    """Two sequences mixing text ids (< 100), unit ids (100..117) and a continuous span (118 ... 119)."""
    g = torch.Generator().manual_seed(1)
    text = torch.randint(3, 100, (2, 14), generator=g)
    units = torch.randint(100, 116, (2, 10), generator=g)
    span = torch.tensor([[118, 0, 0, 0, 0, 119]] * 2)
    return torch.cat([text[:, :6], units[:, :5], span, text[:, 6:], units[:, 5:], text[:, :3]], dim=1)  # (2, 33)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# -----------------------------------------------------------------------------------------------------------------
# (a) mask off: exactly DeepSeek-V2


@torch.no_grad()
def test_mask_off_equals_deepseek_v2_prefill_and_cached_decoding():
    most = tiny_most(modality_routing=False)
    twin = deepseek_twin(most)
    ids = mixed_batch()

    ours, theirs = most(ids, labels=ids), twin(ids, labels=ids)
    assert max_diff(ours.logits, theirs.logits) <= TOL
    assert abs(ours.loss.item() - theirs.loss.item()) <= TOL

    prompt, rest = ids[:, :20], ids[:, 20:]
    ours_step = most(prompt, use_cache=True)
    theirs_step = twin(prompt, use_cache=True)
    cache_ours, cache_theirs = ours_step.cache, theirs_step.cache  # transformers 5.x renamed past_key_values
    for t in range(rest.shape[1]):
        token = rest[:, t : t + 1]
        ours_step = most(token, cache=cache_ours, use_cache=True)
        theirs_step = twin(token, cache=cache_theirs, use_cache=True)
        cache_ours, cache_theirs = ours_step.cache, theirs_step.cache
        assert max_diff(ours_step.logits, theirs_step.logits) <= TOL
        assert max_diff(ours_step.logits[:, -1], ours.logits[:, 20 + t]) <= 1e-4  # cache agrees with prefill

    mask = torch.ones_like(prompt)
    generated_ours = most.generate(prompt, attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)
    generated_theirs = twin.generate(prompt, attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert torch.equal(generated_ours, generated_theirs)


@torch.no_grad()
def test_mask_off_equals_deepseek_v2_with_every_experts_kernel():
    most = tiny_most(modality_routing=False)
    twin = deepseek_twin(most)
    ids = mixed_batch()
    for kernel in ("eager", "batched_mm", "grouped_mm"):
        most.set_experts_implementation(kernel)
        twin.set_experts_implementation(kernel)
        assert most.config._experts_implementation == kernel
        assert max_diff(most(ids).logits, twin(ids).logits) <= TOL


# -----------------------------------------------------------------------------------------------------------------
# (b) mask on: text tokens reach text experts only, audio tokens audio experts only


def record_routing(model: MoSTForCausalLM):
    """Hooks every router and shared-expert block; returns the list they fill."""
    records = []
    for layer in model.model.layers:
        if isinstance(layer.mlp, MoSTMoe):
            layer.mlp.gate.register_forward_hook(
                lambda mod, args, out: records.append(("router", args[0].shape, args[1], out[0], out[2]))
            )
            layer.mlp.shared_experts.register_forward_hook(
                lambda mod, args, out: records.append(("shared", args[0].shape, None, None, None))
            )
    return records


@torch.no_grad()
def test_modality_routing_keeps_modalities_apart():
    most = tiny_most()
    ids = mixed_batch()
    marks = most.modality_marks(ids)
    assert marks.sum() > 0 and (marks == 0).sum() > 0
    n_span = int(((ids == 118).cumsum(-1) - (ids == 119).cumsum(-1) > 0).sum() - (ids == 118).sum())
    features = torch.randn(n_span, most.config.hidden_size)

    records = record_routing(most)
    most(ids, audio_features=features)
    routers = [r for r in records if r[0] == "router"]
    shared = [r for r in records if r[0] == "shared"]
    assert len(routers) == len(shared) == most.config.num_hidden_layers - most.config.first_k_dense_replace

    n_text = most.config.num_text_experts
    flat_marks = marks.reshape(-1)
    for _, _, passed_marks, _, indices in routers:
        assert torch.equal(passed_marks, flat_marks)
        text_picks, audio_picks = indices[flat_marks == 0], indices[flat_marks == 1]
        assert (text_picks < n_text).all(), "a text token reached an audio expert"
        assert (audio_picks >= n_text).all(), "an audio token reached a text expert"
        assert indices.shape == (ids.numel(), most.config.num_experts_per_tok)
    for _, shape, *_ in shared:
        assert shape[:2] == ids.shape  # shared experts see every token of the batch

    # The same weights without the mask do cross modalities, so the check above is not vacuous.
    most.config.modality_routing = False
    records.clear()
    most(ids)
    crossed = [((r[4][flat_marks == 0] >= n_text).any() or (r[4][flat_marks == 1] < n_text).any()) for r in records if r[0] == "router"]
    assert any(crossed)


def test_marks_from_ids_and_audio_span_splice():
    most = tiny_most()
    ids = torch.tensor([[1, 5, 100, 117, 118, 9, 9, 119, 7, 118, 9]])  # last span still open
    assert most.modality_marks(ids).tolist() == [[0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 1]]
    features = torch.randn(3, most.config.hidden_size)
    embeds = most.splice_audio_features(ids, features)
    assert torch.equal(embeds[0, [5, 6, 10]], features)
    assert torch.equal(embeds[0, 0], most.model.embed_tokens.weight[1])
    with pytest.raises(ValueError):
        most.splice_audio_features(ids, torch.randn(2, most.config.hidden_size))


# -----------------------------------------------------------------------------------------------------------------
# (c) sequence-level balance loss


def direct_balance_loss(logits, indices, marks, batch, alpha, n_text, masked):
    """DeepSeek-V2 eq. 12-14 with explicit loops: alpha * sum_i f_i P_i per sequence, mean over sequences."""
    n_tokens, n_experts = logits.shape
    seq_len, top_k = n_tokens // batch, indices.shape[1]
    scores = torch.softmax(logits.double(), dim=-1)
    total = 0.0
    for b in range(batch):
        loss_b = 0.0
        for i in range(n_experts):
            picks, score_sum = 0, 0.0
            for t in range(b * seq_len, (b + 1) * seq_len):
                picks += int((indices[t] == i).sum())
                allowed = (i >= n_text) == bool(marks[t]) if masked else True
                score_sum += scores[t, i].item() if allowed else 0.0
            f_i = n_experts / (top_k * seq_len) * picks
            p_i = score_sum / seq_len
            loss_b += f_i * p_i
        total += loss_b
    return alpha * total / batch


@pytest.mark.parametrize("routing", [True, False])
def test_balance_loss_matches_direct_computation(routing):
    most = tiny_most(modality_routing=routing).train()
    ids = mixed_batch()
    records = record_routing(most)
    out = most(ids, labels=ids)
    marks = most.modality_marks(ids).reshape(-1)
    expected = sum(
        direct_balance_loss(r[3], r[4], marks, ids.shape[0], most.config.aux_loss_alpha, most.config.num_text_experts, routing)
        for r in records
        if r[0] == "router"
    )
    assert abs(out.aux_loss.item() - expected) <= 1e-6
    with torch.no_grad():
        lm_loss = most.eval()(ids, labels=ids).loss  # dropout is 0: same numbers in eval mode
    assert abs(out.loss.item() - (lm_loss.item() + out.aux_loss.item())) <= 1e-5  # added in training only
    out.loss.backward()
    assert most.model.layers[1].mlp.gate.weight.grad is not None


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


def greedy_topk_routing(hidden, weight, top_k, scale, allowed=None):
    """DeepSeek-V2's greedy top-k routing written out per token in float64, independently of any router class.

    s_t = softmax(W h_t) over every routed expert; with ``allowed`` (N, E) the scores of disallowed experts are set to
    0 *after* the softmax (MoST's mask); the k largest scores pick the experts, weights = score * scale.
    Returns (logits (N, E), per token a dict expert -> weight).
    """
    flat = hidden.reshape(-1, hidden.shape[-1]).double()
    w = weight.double()
    logits = torch.stack([torch.stack([(flat[t] * w[e]).sum() for e in range(w.shape[0])]) for t in range(flat.shape[0])])
    picks = []
    for t in range(flat.shape[0]):
        exp = [float(torch.exp(logits[t, e] - logits[t].max())) for e in range(w.shape[0])]
        scores = [x / sum(exp) for x in exp]
        if allowed is not None:
            scores = [s if allowed[t][e] else 0.0 for e, s in enumerate(scores)]
        order = sorted(range(len(scores)), key=lambda e: -scores[e])[:top_k]
        picks.append({e: scores[e] * scale for e in order})
    return logits, picks


def as_picks(weights, indices):
    return [dict(zip(i.tolist(), w.tolist())) for w, i in zip(weights, indices)]


def assert_same_picks(got, expected, tol=1e-5):  # float32 router vs float64 reference
    assert len(got) == len(expected)
    for t, (g, e) in enumerate(zip(got, expected)):
        assert set(g) == set(e), f"token {t}: experts {sorted(g)} != {sorted(e)}"
        for expert in e:
            assert abs(g[expert] - e[expert]) <= tol, (t, expert, g[expert], e[expert])


@torch.no_grad()
def test_router_without_marks_is_deepseek_router():
    """No marks: DeepSeek-V2's greedy top-k (softmax over W h, top-k, x routed_scaling_factor), computed by hand and by
    transformers' DeepseekV2TopkRouter holding the same weight; with marks: the same with the other modality's scores
    zeroed between the softmax and the top-k."""
    from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2TopkRouter

    scale = 2.5  # not 1, so a missing scaling would show
    config = tiny_config(routed_scaling_factor=scale)
    router = ModalityAwareRouter(config)
    torch.manual_seed(3)
    torch.nn.init.normal_(router.weight)
    hidden = torch.randn(2, 9, config.hidden_size)  # (B, T, H): the router flattens tokens
    top_k, n_experts = config.num_experts_per_tok, config.n_routed_experts

    logits, weights, indices = router(hidden)
    exp_logits, expected = greedy_topk_routing(hidden, router.weight.detach(), top_k, scale)
    assert logits.shape == (18, n_experts) and weights.shape == indices.shape == (18, top_k)
    assert max_diff(logits.double(), exp_logits) <= 1e-5
    assert_same_picks(as_picks(weights, indices), expected)

    twin = DeepseekV2TopkRouter(deepseek_config_with(routed_scaling_factor=scale))
    assert type(twin) is not type(router)
    twin.weight.copy_(router.weight)
    t_logits, t_weights, t_indices = twin(hidden)
    assert torch.equal(t_logits, logits)
    assert_same_picks(as_picks(weights, indices), as_picks(t_weights, t_indices), tol=0.0)

    # masked path: a mixed pattern of text (0) and audio (1) tokens
    marks = torch.tensor([0, 1, 1, 0, 0, 1, 0, 1, 0] * 2)
    allowed = [[(e >= config.num_text_experts) == bool(m) for e in range(n_experts)] for m in marks.tolist()]
    m_logits, m_weights, m_indices = router(hidden, marks)
    assert torch.equal(m_logits, logits)  # the mask changes the picks, never the logits
    _, m_expected = greedy_topk_routing(hidden, router.weight.detach(), top_k, scale, allowed)
    assert_same_picks(as_picks(m_weights, m_indices), m_expected)
    # the mask made a difference on these weights (else the masked check would repeat the unmasked one)
    assert any(set(a) != set(b) for a, b in zip(m_expected, expected))


def deepseek_config_with(**overrides) -> DeepseekV2Config:
    fields = {k: v for k, v in TINY_DICT.items() if k not in MOST_ONLY and k not in ("model_type", "architectures")}
    return DeepseekV2Config.from_dict({**fields, **overrides})


@torch.no_grad()
def test_most_checkpoint_round_trip_keeps_deepseek_layout(tmp_path):
    from transformers import AutoModelForCausalLM

    most = tiny_most()
    most.save_pretrained(tmp_path / "most")
    saved = load_file(str(tmp_path / "most" / "model.safetensors"))
    assert "model.layers.1.mlp.experts.7.down_proj.weight" in saved  # per-expert, like DeepSeek-V2 checkpoints
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "most")
    assert isinstance(again, MoSTForCausalLM) and again.config.num_text_experts == 4
    ids = mixed_batch()
    assert max_diff(again(ids).logits, most(ids).logits) <= TOL
