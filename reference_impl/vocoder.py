"""Speech out: unit HiFi-GAN vocoder (HuBERT units -> 16 kHz waveform) on speechbrain's generator.

MoST speaks through SpiritLM's unit HiFi-GAN (facebookresearch/spiritlm: `generator.pt`, key `generator`, fairseq
CodeHiFiGAN layout: unit embedding `dict`, learned speaker table `spkr`, learned style table `style`, optional
duration predictor). The generator network is speechbrain's `UnitHifiganGenerator` (same HiFi-GAN family). What
had to differ from a plain speechbrain model to reproduce the fairseq network:

1. padding: speechbrain's Conv1d pads "same" with *reflect* padding; fairseq pads with zeros. We switch every conv
   of the generator to zero ("constant") padding after building it (`_use_zero_padding`).
2. duration predictor: speechbrain's VariancePredictor has no LayerNorms; fairseq's has one after each conv. We keep
   our own `DurationPredictor` in fairseq's layout and expand the units before the generator.
3. speaker / style: speechbrain's `multi_speaker` takes an external speaker vector; fairseq looks up learned
   speaker and style tables. We keep those tables here and pass `[spkr(speaker); style(style)]` as speechbrain's
   speaker vector (it concatenates it after the unit embedding, the same channel order as fairseq).
4. keys: `dict` -> `unit_embedding`, convs gain a `.conv` infix, `weight_g`/`weight_v` -> weight-norm
   `parametrizations.weight.original0`/`original1` (see `fairseq_to_speechbrain`).
5. unit ids are used as they are (speechbrain's `UnitHIFIGAN.decode_unit` adds 1; its public models expect HuBERT
   layer-6 k=100 units and do not fit MoST's units).
Expressive inputs (f0 / style-code tables of SpiritLM's expressive vocoder) are not supported.
"""

from __future__ import annotations

import re

import torch
from speechbrain.lobes.models.HifiGAN import UnitHifiganGenerator
from speechbrain.nnet.CNN import Conv1d as SBConv1d
from torch import nn

SAMPLE_RATE = 16_000


class DurationPredictor(nn.Module):
    """fairseq's VariancePredictor (conv-ReLU-LayerNorm twice, then a linear): (B, T, C) -> (B, T) log(dur + 1)."""

    def __init__(self, encoder_embed_dim: int, var_pred_hidden_dim: int, var_pred_kernel_size: int, **_):
        super().__init__()
        pad = (var_pred_kernel_size - 1) // 2
        self.conv1 = nn.Sequential(nn.Conv1d(encoder_embed_dim, var_pred_hidden_dim, var_pred_kernel_size, padding=pad), nn.ReLU())
        self.ln1 = nn.LayerNorm(var_pred_hidden_dim)
        self.conv2 = nn.Sequential(nn.Conv1d(var_pred_hidden_dim, var_pred_hidden_dim, var_pred_kernel_size, padding=1), nn.ReLU())
        self.ln2 = nn.LayerNorm(var_pred_hidden_dim)
        self.proj = nn.Linear(var_pred_hidden_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) -> (B, T)."""
        x = self.ln1(self.conv1(x.transpose(1, 2)).transpose(1, 2))  # (B, T, hidden)
        x = self.ln2(self.conv2(x.transpose(1, 2)).transpose(1, 2))
        return self.proj(x).squeeze(-1)


class UnitVocoder(nn.Module):
    """Unit HiFi-GAN: (T,) unit ids -> (S,) waveform at 16 kHz, built from a fairseq/SpiritLM vocoder config dict.

    Config keys (fairseq CodeHiFiGAN `config.json`): upsample_rates, upsample_kernel_sizes, upsample_initial_channel,
    resblock_kernel_sizes, resblock_dilation_sizes, num_embeddings, embedding_dim, model_in_dim, and optionally
    multispkr + num_speakers, multistyle + num_styles, dur_predictor_params.
    """

    def __init__(self, cfg: dict):
        super().__init__()
        if cfg.get("f0") or cfg.get("num_f0_tokens") or cfg.get("num_style_tokens") or cfg.get("embedder_params"):
            raise NotImplementedError("expressive (f0 / style-code / speaker-embedder) vocoders are not supported")
        self.cfg = dict(cfg)
        emb = cfg["embedding_dim"]
        self.multispkr = bool(cfg.get("multispkr"))
        self.multistyle = bool(cfg.get("multistyle"))
        self.generator = UnitHifiganGenerator(
            in_channels=cfg.get("model_in_dim", emb * (1 + self.multispkr + self.multistyle)),
            out_channels=1,
            resblock_type=str(cfg.get("resblock", "1")),
            resblock_dilation_sizes=cfg["resblock_dilation_sizes"],
            resblock_kernel_sizes=cfg["resblock_kernel_sizes"],
            upsample_kernel_sizes=cfg["upsample_kernel_sizes"],
            upsample_initial_channel=cfg["upsample_initial_channel"],
            upsample_factors=cfg["upsample_rates"],
            vocab_size=cfg["num_embeddings"],
            embedding_dim=emb,
            duration_predictor=False,  # ours, in fairseq's layout (see module docstring)
            multi_speaker=self.multispkr or self.multistyle,
            pooling_type="none",  # one codebook
        )
        _use_zero_padding(self.generator)
        self.spkr = nn.Embedding(cfg.get("num_speakers", 200), emb) if self.multispkr else None
        self.style = nn.Embedding(cfg.get("num_styles", 100), emb) if self.multistyle else None
        params = cfg.get("dur_predictor_params")
        self.dur_predictor = DurationPredictor(**params) if params else None

    @property
    def samples_per_unit(self) -> int:
        """Output samples per (duration-expanded) input unit: the product of the upsample rates."""
        out = 1
        for rate in self.cfg["upsample_rates"]:
            out *= rate
        return out

    @torch.no_grad()
    def forward(self, units: torch.Tensor, speaker: int = 0, style: int = 0, dur_prediction: bool = True) -> torch.Tensor:
        """units (T,) long in [0, num_embeddings) -> waveform (S,) float in [-1, 1].

        With a duration predictor and `dur_prediction`, runs of equal units are collapsed and re-expanded by the
        predicted durations (SpiritLM's default); otherwise every unit lasts one frame.
        """
        units = units.view(-1).long().to(self.generator.unit_embedding.weight.device)
        units = units[units >= 0]
        if self.dur_predictor is not None and dur_prediction:
            units = torch.unique_consecutive(units)
            log_dur = self.dur_predictor(self.generator.unit_embedding(units)[None])  # (1, T)
            duration = torch.clamp(torch.round(torch.exp(log_dur) - 1).long(), min=1)  # (1, T)
            units = torch.repeat_interleave(units, duration.view(-1))
        conditioning = []
        if self.spkr is not None:
            conditioning.append(self.spkr.weight[speaker])
        if self.style is not None:
            conditioning.append(self.style.weight[style])
        spk = torch.cat(conditioning)[None] if conditioning else None  # (1, C)
        wav = self.generator.inference(units.view(1, -1, 1), spk=spk)  # (1, 1, S)
        return wav.view(-1)

    def remove_weight_norm(self) -> UnitVocoder:
        """Folds weight norm into plain weights (inference)."""
        self.generator.remove_weight_norm()
        return self


def _use_zero_padding(generator: nn.Module) -> None:
    """fairseq pads its convolutions with zeros; speechbrain's Conv1d defaults to reflect padding."""
    for module in generator.modules():
        if isinstance(module, SBConv1d):
            module.padding_mode = "constant"


# -----------------------------------------------------------------------------------------------------------------
# fairseq CodeHiFiGAN / SpiritLM `generator.pt` key layout -> UnitVocoder

_WEIGHT_NORM = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}


def fairseq_to_speechbrain(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames a fairseq CodeGenerator state dict (`generator.pt`['generator']) to UnitVocoder's keys."""
    out = {}
    for key, value in state.items():
        if key == "dict.weight":
            out["generator.unit_embedding.weight"] = value
        elif key.startswith(("spkr.", "style.", "dur_predictor.")):
            out[key] = value
        elif re.match(r"(conv_pre|conv_post|ups\.\d+|resblocks\.\d+\.convs[12]\.\d+)\.", key):
            module, name = key.rsplit(".", 1)
            out[f"generator.{module}.conv.{_WEIGHT_NORM.get(name, name)}"] = value
        else:
            raise KeyError(f"unexpected vocoder key {key!r}")
    return out


def speechbrain_to_fairseq(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of fairseq_to_speechbrain (used to write fairseq-layout test checkpoints)."""
    inverse = {v: k for k, v in _WEIGHT_NORM.items()}
    out = {}
    for key, value in state.items():
        if key == "generator.unit_embedding.weight":
            out["dict.weight"] = value
        elif key.startswith("generator."):
            module, name = key.removeprefix("generator.").split(".conv.", 1)
            out[f"{module}.{inverse.get(name, name)}"] = value
        else:
            out[key] = value
    return out
