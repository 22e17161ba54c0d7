"""MoST language model: DeepSeek-V2 with a modality-aware mixture of experts.

MoST ("Mixing Speech and Text with a Modality-Aware Mixture of Experts") is a decoder-only LM initialised from
DeepSeek-V2-Lite. Everything except the expert *routing* is transformers' DeepSeek-V2, used as is:
MLA attention, YaRN RoPE, RMSNorm, the decoder layer, the KV cache, the 3-D expert weights and their GEMM kernels
(`DeepseekV2Experts`, kernel chosen by `config._experts_implementation`: eager / batched_mm / grouped_mm), and the
shared experts (`DeepseekV2MLP`). What this file adds:

1. modality marks: every token is text (0) or audio (1), derived from its id (`modality_marks_from_ids`);
2. `ModalityAwareRouter`: softmax over all routed experts, the other modality's experts' scores set to zero, then
   greedy top-k; with the mask off it *is* DeepSeek-V2's router;
3. `MoSTMoe`: router + routed experts + shared experts (which see every token) + the sequence-level balance loss;
4. `MoSTForCausalLM`: DeepseekV2ForCausalLM with each MoE block swapped for `MoSTMoe`, modality marks threaded in,
   continuous audio features spliced between span markers, and the balance loss returned as `aux_loss`.

References:
- MoST paper and release (NUS-HPC-AI-Lab/MoST): the architecture, token layout, routing and initialisation.
- DeepSeek-V2 (arXiv:2405.04434) §2.1.3 for the balance loss; transformers'
  `models/deepseek_v2/modeling_deepseek_v2.py` for everything we reuse.

Read top to bottom: config -> modality marks -> router -> balance loss -> MoE layer -> language model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.conversion_mapping import (
    get_checkpoint_conversion_mapping,
    register_checkpoint_conversion_mapping,
)
from transformers.models.deepseek_v2.configuration_deepseek_v2 import DeepseekV2Config
from transformers.models.deepseek_v2.modeling_deepseek_v2 import (
    DeepseekV2ForCausalLM,
    DeepseekV2Moe,
    DeepseekV2TopkRouter,
)
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple

TEXT, AUDIO = 0, 1  # modality marks


# -----------------------------------------------------------------------------------------------------------------
# Config


@strict
class MoSTConfig(DeepseekV2Config):
    """DeepSeek-V2 config plus the MoST fields (all other fields mean exactly what they mean in DeepSeek-V2).

    The token-id fields default to MoST's real vocabulary layout (MoST release); tiny test configs remap them into a
    small vocabulary. Ranges are inclusive `[first, last]`.
    """

    model_type = "most"

    # --- modality-aware routing -----------------------------------------------------------------------------------
    modality_routing: bool = True  # False: the MoE layer is exactly DeepSeek-V2's (no mask)
    num_text_experts: int | None = None  # routed experts [0, n) are text experts, [n, N) audio; None -> N // 2
    aux_loss_alpha: float = 0.001  # weight of the sequence-level balance loss (DeepSeek-V2's alpha_1); 0 disables

    # --- token layout (the MoST release) ----------------------------------------------------------------------------
    audio_token_range: list[int] | tuple[int, int] = (100002, 100503)  # discrete audio tokens, always marked audio
    unit_token_offset: int = 100002  # HuBERT unit k <-> token id unit_token_offset + k
    num_units: int = 500  # HuBERT clusters
    audio_span_begin_id: int = 100504  # begin of a continuous (HuBERT feature) audio span
    audio_span_end_id: int = 100505  # end of that span; positions strictly between the two are audio
    span_marker_modality: int = TEXT  # the two span markers themselves: MoST marks only the inside as audio

    # --- speech input (used by speech_encoder.py; kept here so one file describes the whole model) ----------------
    speech_feature_dim: int = 768  # mHuBERT-base hidden size
    speech_feature_layer: int = 12  # fairseq layer (1-based) of the continuous input features
    unit_feature_layer: int = 11  # fairseq layer the unit quantizer reads
    deduplicate_units: bool = True  # runs of equal units collapsed before they become tokens (the release's
    # SpiritLM `encode_string`); the vocoder's duration predictor restores the timing

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.num_text_experts is None:
            self.num_text_experts = self.n_routed_experts // 2
        self.audio_token_range = [int(v) for v in self.audio_token_range]

    def validate_architecture(self):
        """Checks the routing fields on top of DeepSeek-V2's own checks."""
        super().validate_architecture()
        n_text = self.n_routed_experts // 2 if self.num_text_experts is None else self.num_text_experts
        n_audio = self.n_routed_experts - n_text
        if self.modality_routing and min(n_text, n_audio) < (self.num_experts_per_tok or 0):
            raise ValueError(
                f"modality routing needs >= top-k ({self.num_experts_per_tok}) experts per modality, "
                f"got {n_text} text / {n_audio} audio"
            )


# -----------------------------------------------------------------------------------------------------------------
# Modality marks: 0 text, 1 audio, one per token


def continuous_span_interior(input_ids: torch.Tensor, config: MoSTConfig) -> torch.Tensor:
    """Bool mask of positions strictly between an `audio_span_begin_id` and the next `audio_span_end_id`.

    These are the positions whose embeddings are replaced by projected HuBERT features. A span still open at the
    end of the sequence (a prompt cut inside a span) extends to the end.
    """
    begin = input_ids == config.audio_span_begin_id
    end = input_ids == config.audio_span_end_id
    depth = begin.long().cumsum(-1) - end.long().cumsum(-1)  # (B, T): 1 from a begin marker up to its end marker
    return (depth > 0) & ~begin


def modality_marks_from_ids(input_ids: torch.Tensor, config: MoSTConfig) -> torch.Tensor:
    """Per-token modality marks (B, T) long: 1 for discrete audio tokens and continuous-span interiors, else 0."""
    first, last = config.audio_token_range
    is_audio = ((input_ids >= first) & (input_ids <= last)) | continuous_span_interior(input_ids, config)
    marks = is_audio.long()
    is_marker = (input_ids == config.audio_span_begin_id) | (input_ids == config.audio_span_end_id)
    return marks.masked_fill(is_marker, config.span_marker_modality)


def expert_modality(config: MoSTConfig, device=None) -> torch.Tensor:
    """(n_routed_experts,) long: the modality each routed expert serves (index split: text first, then audio)."""
    return (torch.arange(config.n_routed_experts, device=device) >= config.num_text_experts).long()


# -----------------------------------------------------------------------------------------------------------------
# Router


class ModalityAwareRouter(DeepseekV2TopkRouter):
    """DeepSeek-V2's top-k router with the modality mask applied between the softmax and the top-k.

    For token t with mark m_t: s_t = softmax(W h_t) over *all* N routed experts; s_{i,t} := 0 for every expert i
    whose modality differs from m_t; the k largest remaining scores pick the experts and are their weights
    (optionally renormalised, `norm_topk_prob`, else multiplied by `routed_scaling_factor`, as in DeepSeek-V2's
    reference code; transformers' DeepSeek-V2 router ignores `norm_topk_prob`, which V2-Lite sets to false).
    Without marks (mask off) and without `norm_topk_prob` this defers to transformers' router unchanged, so the layer
    is exactly DeepSeek-V2's.

    Returns `(router_logits, topk_weights, topk_indices)` like the parent, so transformers' router-logit capture
    (`output_router_logits`) keeps working.
    """

    def __init__(self, config: MoSTConfig):
        super().__init__(config)
        self.config = config
        self.norm_topk_prob = bool(config.norm_topk_prob)

    def forward(self, hidden_states: torch.Tensor, modality_marks: torch.Tensor | None = None):
        """hidden_states (..., H); modality_marks (N,) with N = number of tokens, or None for no mask."""
        if modality_marks is None and not self.norm_topk_prob:
            return super().forward(hidden_states)  # exactly DeepSeek-V2 (incl. group_limited_greedy)
        if self.topk_method != "greedy":
            raise NotImplementedError("the modality mask is implemented for greedy top-k (DeepSeek-V2-Lite's)")

        hidden_states = hidden_states.view(-1, self.hidden_dim)  # (N, H)
        router_logits = F.linear(hidden_states.float(), self.weight.float())  # (N, E)
        scores = router_logits.softmax(dim=-1, dtype=torch.float32)  # (N, E), over all experts
        if modality_marks is not None:
            scores = scores * allowed_experts(modality_marks, self.config)  # other modality's scores -> 0
        topk_weights, topk_indices = torch.topk(scores, k=self.top_k, dim=-1, sorted=False)  # (N, k) each
        if self.norm_topk_prob and self.top_k > 1:
            topk_weights = topk_weights / (topk_weights.sum(dim=-1, keepdim=True) + 1e-20)
        else:
            topk_weights = topk_weights * self.routed_scaling_factor
        return router_logits, topk_weights, topk_indices


def allowed_experts(modality_marks: torch.Tensor, config: MoSTConfig) -> torch.Tensor:
    """(N, E) float mask: 1 where expert i serves token t's modality."""
    experts = expert_modality(config, modality_marks.device)  # (E,)
    return (modality_marks.reshape(-1, 1) == experts.view(1, -1)).float()  # (N, E)


# -----------------------------------------------------------------------------------------------------------------
# Balance loss


def sequence_balance_loss(
    router_logits: torch.Tensor,
    topk_indices: torch.Tensor,
    batch_size: int,
    alpha: float,
    modality_marks: torch.Tensor | None = None,
    config: MoSTConfig | None = None,
) -> torch.Tensor:
    """DeepSeek-V2's expert-level balance loss, computed per sequence and averaged over the batch.

    DeepSeek-V2 (arXiv:2405.04434, eq. 12-14), for one sequence of T tokens, N' routed experts, top-K':

        L_ExpBal = alpha * sum_{i=1}^{N'} f_i * P_i
        f_i      = N' / (K' * T) * sum_{t=1}^{T} 1[token t selects expert i]
        P_i      = 1 / T * sum_{t=1}^{T} s_{i,t}

    s_{i,t} is token t's softmax score for expert i. With modality routing on, s_{i,t} is the *masked* score (zero
    for the other modality's experts), i.e. the scores top-k chose from; with it off this is exactly DeepSeek-V2's
    `seq_aux` loss. Padding positions are counted like any token (as in DeepSeek-V2's code).

    router_logits (B*T, N'), topk_indices (B*T, K'); returns a scalar.
    """
    n_tokens, n_experts = router_logits.shape
    top_k = topk_indices.shape[-1]
    seq_len = n_tokens // batch_size
    scores = router_logits.float().softmax(dim=-1)  # (B*T, N')
    if modality_marks is not None:
        scores = scores * allowed_experts(modality_marks, config)
    scores = scores.view(batch_size, seq_len, n_experts)  # (B, T, N')
    picks = torch.zeros(batch_size, n_experts, device=scores.device)
    picks.scatter_add_(1, topk_indices.view(batch_size, -1), torch.ones(batch_size, seq_len * top_k, device=scores.device))
    f = picks * n_experts / (top_k * seq_len)  # (B, N')
    p = scores.mean(dim=1)  # (B, N')
    return alpha * (f * p).sum(dim=1).mean()


# -----------------------------------------------------------------------------------------------------------------
# MoE layer


class RoutingState:
    """What the LM hands to its MoE layers for one forward: the modality marks, and where they put their losses.

    transformers' decoder layer calls `mlp(hidden_states)` with no other argument, so the marks travel through this
    object, shared by all MoE layers of one model. It is set at the start of every `MoSTForCausalLM.forward` and kept
    afterwards, so gradient checkpointing (which re-runs the MoE during backward) routes with the same marks.
    """

    def __init__(self):
        self.marks: torch.Tensor | None = None  # (B, T) long, or None: no mask
        self.aux_losses: list[torch.Tensor] = []


class MoSTMoe(nn.Module):
    """Modality-aware MoE block: ModalityAwareRouter + DeepSeek-V2's routed experts + shared experts.

    Parameter names equal DeepseekV2Moe's (`gate.weight`, `experts.gate_up_proj`, `experts.down_proj`,
    `shared_experts.*`), so checkpoints move between the two unchanged. Build it from an existing DeepseekV2Moe with
    `from_deepseek` (it takes over the same parameter tensors).
    """

    def __init__(self, config: MoSTConfig, experts: nn.Module, shared_experts: nn.Module, state: RoutingState):
        super().__init__()
        self.config = config
        self.experts = experts  # DeepseekV2Experts: 3-D weights, kernel picked by config._experts_implementation
        self.gate = ModalityAwareRouter(config)
        self.shared_experts = shared_experts  # DeepseekV2MLP, applied to every token
        self.state = state

    @classmethod
    def from_deepseek(cls, moe: DeepseekV2Moe, config: MoSTConfig, state: RoutingState) -> MoSTMoe:
        """Wraps a DeepseekV2Moe's experts and shared experts; the router weight tensor is shared, not copied."""
        layer = cls(config, moe.experts, moe.shared_experts, state)
        layer.gate.weight = moe.gate.weight
        return layer

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """hidden_states (B, T, H) -> (B, T, H). Reads the marks from the shared RoutingState."""
        batch, seq_len, hidden = hidden_states.shape
        marks = None
        if self.config.modality_routing and self.state.marks is not None:
            marks = self.state.marks.reshape(-1)  # (B*T,)
            if marks.numel() != batch * seq_len:
                raise ValueError(f"modality marks cover {marks.numel()} tokens, the layer sees {batch * seq_len}")

        router_logits, topk_weights, topk_indices = self.gate(hidden_states, marks)  # (B*T, E), (B*T, k) x2
        routed = self.experts(hidden_states.view(-1, hidden), topk_indices, topk_weights)  # (B*T, H)
        output = routed.view(batch, seq_len, hidden) + self.shared_experts(hidden_states)

        if self.training and self.config.aux_loss_alpha > 0:  # as DeepSeek-V2: a training-time loss
            self.state.aux_losses.append(
                sequence_balance_loss(router_logits, topk_indices, batch, self.config.aux_loss_alpha, marks, self.config)
            )
        return output


# -----------------------------------------------------------------------------------------------------------------
# Language model

# Experts kernel used when none is requested, by device type and phase ("decode": at most DECODE_MAX_TOKENS tokens in
# the step). Measured with benchmarks/bench_moe.py (64 experts, top-6, 2 shared, float32, 2 shared CPU cores,
# torch 2.13), quietest run: 2048-token prefill eager 1.73 s vs grouped_mm 1.86 s at hidden 2048 (175 vs 200 ms at
# 512); decode grouped_mm 17.4 / 63.4 / 110.7 ms vs eager 17.9 / 64.0 / 117.3 ms for 1 / 4 / 8 tokens at hidden 2048.
# The margins are small (<15%) and a loaded run flipped the prefill winner, so re-measure on your machine.
# batched_mm was slowest everywhere (102 ms for 1 token) and cannot run a long prefill: it copies one weight matrix
# per token-expert pair. CUDA keeps transformers' default, grouped_mm (not measured: no GPU in this session).
FASTEST_EXPERTS_KERNEL = {
    "cpu": {"prefill": "eager", "decode": "grouped_mm"},
    "cuda": {"prefill": "grouped_mm", "decode": "grouped_mm"},
}
DECODE_MAX_TOKENS = 64


def fastest_experts_kernel(device_type: str, n_tokens: int) -> str:
    """The experts kernel to use for a step of `n_tokens` tokens on `device_type` (FASTEST_EXPERTS_KERNEL)."""
    phase = "decode" if n_tokens <= DECODE_MAX_TOKENS else "prefill"
    return FASTEST_EXPERTS_KERNEL.get(device_type, FASTEST_EXPERTS_KERNEL["cuda"])[phase]


class MoSTForCausalLM(DeepseekV2ForCausalLM):
    """DeepseekV2ForCausalLM whose MoE blocks route by modality.

    forward(...) takes DeepSeek-V2's arguments plus:
      modality_marks (B, T) long, optional: 0 text / 1 audio per input position; derived from `input_ids` when
        omitted (`modality_marks_from_ids`). Required when only `inputs_embeds` are given and routing is on.
      audio_features (n, H) (or any (..., H) holding n rows), optional: projected speech features, written in order
        into the n positions strictly between audio-span markers of `input_ids` (whatever ids sit there).
    In training mode the output's `aux_loss` is the balance loss summed over MoE layers, and with `labels` it is
    added to `loss`; in eval mode it is not computed (as in DeepSeek-V2), so eval losses are pure LM losses.

    Without a requested experts kernel (`experts_implementation=` / `set_experts_implementation`), each forward picks
    the kernel measured fastest for its device and step size (`fastest_experts_kernel`).
    """

    config: MoSTConfig
    config_class = MoSTConfig

    def __init__(self, config: MoSTConfig):
        self._auto_experts_kernel = config._experts_implementation is None
        super().__init__(config)
        self.routing_state = RoutingState()
        for layer in self.model.layers:
            if isinstance(layer.mlp, DeepseekV2Moe):  # layers >= first_k_dense_replace
                layer.mlp = MoSTMoe.from_deepseek(layer.mlp, config, self.routing_state)
        if self._auto_experts_kernel:
            self.config._experts_implementation_internal = fastest_experts_kernel("cpu", DECODE_MAX_TOKENS + 1)

    @classmethod
    def _can_set_experts_implementation(cls) -> bool:
        # transformers decides this by grepping the model's module for `@use_experts_implementation`; our experts
        # are DeepSeek-V2's decorated class, so switching kernels works.
        return True

    def set_experts_implementation(self, experts_implementation):
        """Pins the experts kernel (turns the per-device automatic choice off)."""
        self._auto_experts_kernel = False
        return super().set_experts_implementation(experts_implementation)

    def modality_marks(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Modality marks (B, T) for `input_ids` under this model's config."""
        return modality_marks_from_ids(input_ids, self.config)

    def splice_audio_features(self, input_ids: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        """Token embeddings of `input_ids` with the span interiors replaced by `audio_features`, (B, T, H)."""
        embeds = self.model.embed_tokens(input_ids)  # (B, T, H)
        slots = continuous_span_interior(input_ids, self.config)  # (B, T) bool
        features = audio_features.reshape(-1, embeds.shape[-1]).to(embeds.dtype)  # (n, H)
        if int(slots.sum()) != features.shape[0]:
            raise ValueError(f"{int(slots.sum())} audio-span positions in input_ids but {features.shape[0]} feature rows")
        return embeds.masked_scatter(slots.unsqueeze(-1), features)

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        modality_marks: torch.LongTensor | None = None,
        audio_features: torch.Tensor | None = None,
        **kwargs,
    ):
        """DeepSeek-V2's causal-LM forward with modality marks, spliced audio features and the balance loss."""
        if modality_marks is None and input_ids is not None:
            modality_marks = self.modality_marks(input_ids)
        if modality_marks is None and self.config.modality_routing:
            raise ValueError("pass modality_marks when calling with inputs_embeds only")
        if audio_features is not None:
            if input_ids is None:
                raise ValueError("audio_features are placed by the span markers in input_ids")
            inputs_embeds, input_ids = self.splice_audio_features(input_ids, audio_features), None

        if self._auto_experts_kernel:
            tokens = input_ids if input_ids is not None else inputs_embeds[..., 0]  # (B, T)
            self.config._experts_implementation_internal = fastest_experts_kernel(tokens.device.type, tokens.numel())
        self.routing_state.marks = modality_marks
        self.routing_state.aux_losses = []

        output = super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            labels=labels,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )
        if self.routing_state.aux_losses:
            output.aux_loss = torch.stack(self.routing_state.aux_losses).sum()
            if self.training and output.loss is not None:
                output.loss = output.loss + output.aux_loss.to(output.loss.device)
        return output

    def prepare_inputs_for_generation(self, input_ids, *args, is_first_iteration=False, **kwargs):
        """Derives the marks from the whole history (so a token inside an open audio span stays audio while
        decoding) and passes `audio_features` to the first step only."""
        kwargs.pop("modality_marks", None)
        audio_features = kwargs.pop("audio_features", None)
        inputs = super().prepare_inputs_for_generation(input_ids, *args, is_first_iteration=is_first_iteration, **kwargs)
        if inputs.get("input_ids") is not None:
            step = inputs["input_ids"].shape[1]
            inputs["modality_marks"] = self.modality_marks(input_ids)[:, -step:]
            if audio_features is not None and step == input_ids.shape[1]:
                inputs["audio_features"] = audio_features
        return inputs


# -----------------------------------------------------------------------------------------------------------------
# Registration: AutoConfig / AutoModelForCausalLM, and the load-time checkpoint conversion. DeepSeek-V2 checkpoints
# store one tensor per expert; transformers merges them into 3-D tensors through a conversion registered for
# model_type "deepseek_v2". Our model_type is "most", so we register the same conversion for it (saving reverses it,
# so MoST checkpoints keep DeepSeek-V2's per-expert layout).

AutoConfig.register("most", MoSTConfig, exist_ok=True)
AutoModelForCausalLM.register(MoSTConfig, MoSTForCausalLM, exist_ok=True)
if get_checkpoint_conversion_mapping("most") is None:
    register_checkpoint_conversion_mapping("most", get_checkpoint_conversion_mapping("deepseek_v2"))
