"""Tests of the MoST reference model (reference_impl/model.py, import name most_reference): with the modality mask
off it is exactly DeepSeek-V2, with it on text and audio tokens reach their own experts, the sequence-level balance
loss, the router against DeepSeek-V2's, and its own checkpoint layout. Tiny configs, CPU, float32.

The importers of external checkpoints (HuBERT, quantizers, DeepSeek-V2, the vocoder) and bad checkpoints are tested in
tests/test_most_import_weights.py, which uses the helpers defined here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import DeepseekV2Config, DeepseekV2ForCausalLM

from most_reference.model import MoSTConfig, MoSTForCausalLM, ModalityAwareRouter, MoSTMoe


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
# The router by hand: DeepSeek-V2's greedy top-k, with and without the modality mask; MoST's own checkpoint layout


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
