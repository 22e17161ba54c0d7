"""The module the training recipe trains: its parts, what it measures of them, and the copies its export writes.

`SpeechTextLM` is the LM and the speech encoder (frozen HuBERT + trainable projection) as one `nn.Module`, the one
accelerate wraps and the optimizer steps; `ExpertLoad` counts the routers' picks per expert for text and audio tokens
(the per-modality expert load of train_log.jsonl). `lm_skeleton` and `speech_encoder` build parts from the config
(the recipe's `_build_model` picks which), `stage_vocoder` and `export_copies` make what the export hands to the
adapter's checkpoint writer. `grad_norm_value` reads the gradient norm each backend returns, and
`materialize_meta_parameters` gives an LM skeleton the storage FSDP's cpu_ram_efficient_loading fills. Kept apart
from the recipe (train.py), so that it reads as the run's order of steps: it builds, prepares, steps and exports these.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import torch
from torch import nn

from .model import TEXT, MoSTConfig, MoSTForCausalLM, MoSTMoe


# -----------------------------------------------------------------------------------------------------------------
# The trained module: frozen HuBERT + projection + LM


class SpeechTextLM(nn.Module):
    """LM + speech encoder as one module (what accelerate wraps). forward(batch) -> the LM's output."""

    def __init__(self, lm: MoSTForCausalLM, encoder):
        super().__init__()
        self.lm = lm
        self.encoder = encoder

    def forward(self, input_ids, attention_mask, labels, waveforms, num_items_in_batch: float | None = None):
        """The LM's output; with `num_items_in_batch` its LM loss is the sum of token losses / num_items_in_batch
        (transformers' loss convention), not the micro-batch's own token mean."""
        extra = {} if num_items_in_batch is None else {"num_items_in_batch": num_items_in_batch}
        features = None
        if waveforms:
            device = self.encoder.proj.weight.device
            features = torch.cat([self.encoder(w.to(device)[None])[0] for w in waveforms])  # (n_frames, H)
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask, labels=labels, audio_features=features,
                      use_cache=False, **extra)
        if features is None:  # keep the projection in the graph: DDP expects a gradient for every trained parameter
            out.loss = out.loss + 0.0 * sum(p.sum() for p in self.encoder.proj.parameters())
        return out


class ExpertLoad:
    """Counts routed picks per expert for text and audio tokens (padding excluded), from the routers' outputs."""

    def __init__(self, lm: MoSTForCausalLM):
        self.lm = lm
        self.n = lm.config.n_routed_experts
        self.active = False
        self.valid: torch.Tensor | None = None
        self.counts = torch.zeros(2, self.n, dtype=torch.float64)
        for layer in lm.model.layers:
            if isinstance(layer.mlp, MoSTMoe):
                layer.mlp.gate.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        if not self.active:  # not during activation-checkpoint recomputation or evaluation
            return
        indices = output[2].detach()  # (N, k)
        marks = self.lm.routing_state.marks
        marks = marks.reshape(-1) if marks is not None else torch.full(indices.shape[:1], TEXT, device=indices.device)
        keep = self.valid if self.valid is not None and self.valid.numel() == marks.numel() else torch.ones_like(marks, dtype=torch.bool)
        for modality in (0, 1):
            picks = indices[(marks == modality) & keep].reshape(-1)
            self.counts[modality] += torch.bincount(picks, minlength=self.n).double().cpu()

    def summary(self, counts: torch.Tensor) -> dict:
        """Per modality: each expert's share of that modality's picks, over the experts of its group."""
        n_text = self.lm.config.num_text_experts
        out = {}
        for modality, name, group in ((0, "text", slice(0, n_text)), (1, "audio", slice(n_text, self.n))):
            c = counts[modality]
            total = float(c.sum())
            if total == 0:
                continue
            share = (c[group] / total).tolist()
            out[name] = [round(v, 4) for v in share]
            out[f"{name}_outside_group"] = round(1 - sum(share), 6)  # > 0 only with modality routing off
            mean = 1 / len(share)
            out[f"{name}_max_over_mean"] = round(max(share) / mean, 3)
        return out


# -----------------------------------------------------------------------------------------------------------------
# Building the parts (Recipe._build_model)


def lm_skeleton(config: MoSTConfig, init: Path | None, previous: bool) -> MoSTForCausalLM:
    """The LM's skeleton on a rank that gets its weights from rank 0 in prepare(): the same architecture as rank
    0 loads, no weights read, parameters left uninitialised (fp32: what FSDP's upcast makes of rank 0's)."""
    from accelerate import init_empty_weights

    from .import_weights import most_config_from_deepseek, read_json

    if previous:
        config = MoSTConfig.from_pretrained(init)
    elif init is not None:
        config = most_config_from_deepseek(read_json(init / "config.json"), config, source=init / "config.json")
    with init_empty_weights(include_buffers=False):
        lm = MoSTForCausalLM(config)
    return materialize_meta_parameters(lm, torch.float32)


def speech_encoder(hub: dict, init: Path | None, previous: bool, lm_config: MoSTConfig):
    """The speech input the LM trains with: HuBERT from the config's `model.hubert` (`hub`: a path, or a random
    HubertConfig dict) or from `init` when it is an earlier stage's export (`previous`, whose trained projection is
    loaded too), and a projection of its features to the LM's hidden size."""
    from transformers import HubertConfig, HubertModel

    from .import_weights import import_hubert
    from .speech_encoder import SpeechEncoder

    hubert_path = init / "hubert" if previous else hub["path"]
    if hubert_path:
        hubert, normalize = import_hubert(hubert_path)
    elif hub["random"]:
        hubert, normalize = HubertModel(HubertConfig(**hub["random"])).eval(), False
    else:
        raise ValueError("model.hubert: give path (HuBERT dir or SpiritLM dict) or random (a HubertConfig dict)")
    if hubert.config.hidden_size != lm_config.speech_feature_dim:
        raise ValueError(f"HuBERT hidden size {hubert.config.hidden_size} != speech_feature_dim "
                         f"{lm_config.speech_feature_dim} of the model config")
    encoder = SpeechEncoder(hubert, lm_config.hidden_size, lm_config.speech_feature_layer,
                            normalize_waveform=normalize)
    if previous:
        from safetensors.torch import load_file

        encoder.proj.load_state_dict(load_file(str(init / "speech_projection.safetensors")))
    return encoder


# -----------------------------------------------------------------------------------------------------------------
# What the export writes (Recipe.export)


def stage_vocoder(staging: Path, v: dict, init_dir: Path | None, seed: int) -> None:
    """Writes the vocoder the export ships into `staging`: an earlier stage's export's vocoder/ as it is, else the
    one `model.vocoder` (`v`) names (SpiritLM generator.pt) or a random one, as config.json + generator.safetensors."""
    from safetensors.torch import save_file

    from .import_weights import import_vocoder
    from .vocoder import UnitVocoder, speechbrain_to_fairseq

    if init_dir is not None and (init_dir / "vocoder").is_dir():
        shutil.copytree(init_dir / "vocoder", staging, dirs_exist_ok=True)
    else:
        if v["path"]:
            vocoder = import_vocoder(v["path"])
        elif v["random"]:
            torch.manual_seed(seed)
            vocoder = UnitVocoder(v["random"]).remove_weight_norm()
        else:
            raise ValueError("model.vocoder: give path (SpiritLM generator.pt) or random (a config dict)")
        (staging / "config.json").write_text(json.dumps(vocoder.cfg))
        fair = speechbrain_to_fairseq(vocoder.state_dict())
        save_file({k: t.contiguous() for k, t in fair.items()}, str(staging / "generator.safetensors"))


def export_copies(state: dict, lm_config: MoSTConfig, trained: nn.Module, dtype: str):
    """(LM, speech encoder) to export: fresh modules that take the full gathered `state` of the trained SpeechTextLM
    (the LM's tensors cast to `dtype`, e.g. "bfloat16"), shaped after `lm_config` and the `trained` encoder."""
    from transformers import HubertModel

    from .speech_encoder import SpeechEncoder

    # a fresh LM on the meta device takes the gathered tensors, cast to the export dtype (no second full copy)
    torch_dtype = getattr(torch, dtype)
    lm_state = {k[len("lm."):]: t.detach().to("cpu", torch_dtype) for k, t in state.items() if k.startswith("lm.")}
    export_config = copy.deepcopy(lm_config)
    export_config.use_cache = True
    export_config.dtype = dtype
    with torch.device("meta"):
        export_lm = MoSTForCausalLM(export_config)
    export_lm.load_state_dict(lm_state, assign=True, strict=True)
    enc_state = {k[len("encoder."):]: t.detach().to("cpu", torch.float32) for k, t in state.items()
                 if k.startswith("encoder.")}
    # a fresh encoder skeleton too: under FSDP2 / ZeRO-3 the trained module's parameters are shards
    with torch.device("meta"):
        encoder = SpeechEncoder(HubertModel(trained.hubert.config), trained.proj.out_features,
                                trained.feature_layer, normalize_waveform=trained.normalize_waveform)
    encoder.load_state_dict(enc_state, assign=True, strict=True)
    return export_lm, encoder



# -----------------------------------------------------------------------------------------------------------------
# What the distributed backends hand back or expect: gradient norms, parameters with no weights yet


def grad_norm_value(norm) -> float | None:
    """A gradient norm returned by `accelerator.clip_grad_norm_` as a float: FSDP2 returns a DTensor (gathered
    here), DeepSpeed a float, a backend that cannot tell None."""
    if norm is None:
        return None
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return float(norm)


def materialize_meta_parameters(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Gives every meta-device parameter of `module` uninitialised CPU storage of `dtype`, in place.

    What FSDP's cpu_ram_efficient_loading expects on the ranks that receive rank 0's weights in `prepare`: real,
    distinct tensors (accelerate maps optimizer parameters by storage address) whose pages are never written
    before the broadcast, so they cost address space, not memory. Buffers are left as they are (build the module
    with `init_empty_weights(include_buffers=False)` so the non-persistent ones, such as RoPE's, are real).
    """
    done: dict[int, nn.Parameter] = {}
    for sub in module.modules():
        for name, param in list(sub._parameters.items()):
            if param is None or not param.is_meta:
                continue
            if id(param) not in done:  # tied parameters stay tied
                done[id(param)] = nn.Parameter(torch.empty(param.shape, dtype=dtype, device="cpu"),
                                               requires_grad=param.requires_grad)
            sub._parameters[name] = done[id(param)]
    return module

