"""Speech in: frozen HuBERT features for the LM, and HuBERT units for the unit vocabulary.

MoST hears speech two ways (README §1):
- continuous: mHuBERT-base (25 Hz, 768-d) last-layer features, linearly projected to the LM's hidden size and placed
  between the begin/end audio-span tokens (`SpeechEncoder`);
- discrete: layer-11 features quantised into 500 units, which become the audio tokens `[Hu0]..[Hu499]`
  (`UnitExtractor` with a `LinearQuantizer` as in SpiritLM, or a `KMeansQuantizer` as in textlesslib).

The encoder is transformers' `HubertModel`, unchanged. Layer numbering follows fairseq: layer L (1-based) is
`hidden_states[L]` of HubertModel (hidden_states[0] is the input to the first transformer layer).
Quantizer weights are read from safetensors or .npy only (never pickle); see import_weights.py for SpiritLM files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import HubertModel

SAMPLE_RATE = 16_000  # HuBERT input rate; mHuBERT-base 25 Hz -> 640 samples per frame


class SpeechEncoder(nn.Module):
    """Frozen HuBERT + trainable linear projection to the LM hidden size.

    waveform (B, S) float at 16 kHz -> features (B, T, lm_hidden). Pass one utterance at a time, or a batch of equal
    lengths: HuBERT-base's group-norm feature extractor normalises over the whole (padded) time axis, so padding
    changes its output; `encode` loops over a list for that reason.
    """

    def __init__(self, hubert: HubertModel, lm_hidden_size: int, feature_layer: int = 12, normalize_waveform=False):
        super().__init__()
        self.hubert = hubert.eval()
        self.hubert.requires_grad_(False)
        self.feature_layer = feature_layer  # fairseq layer index, 1-based
        self.normalize_waveform = normalize_waveform  # fairseq task.normalize (layer-norm the raw waveform)
        self.proj = nn.Linear(hubert.config.hidden_size, lm_hidden_size)

    def train(self, mode: bool = True):
        """Trains the projection only; HuBERT stays in eval mode (no dropout, frozen)."""
        super().train(mode)
        self.hubert.eval()
        return self

    @torch.no_grad()
    def hubert_features(self, waveform: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """HuBERT features of fairseq layer `layer` (default: the encoder's feature layer), (B, T, D)."""
        if waveform.dim() == 1:
            waveform = waveform.unsqueeze(0)  # (1, S)
        if self.normalize_waveform:
            waveform = F.layer_norm(waveform, waveform.shape[-1:])
        layer = self.feature_layer if layer is None else layer
        out = self.hubert(waveform.to(self.proj.weight.device, self.hubert.dtype), output_hidden_states=True)
        return out.hidden_states[layer]

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, S) waveform -> (B, T, lm_hidden) projected features."""
        features = self.hubert_features(waveform)
        return self.proj(features.to(self.proj.weight.dtype))

    def encode(self, waveforms: list[torch.Tensor]) -> list[torch.Tensor]:
        """Projected features per utterance, one HuBERT pass each (no padding effects): list of (T_i, lm_hidden)."""
        return [self(w)[0] for w in waveforms]

    def num_frames(self, num_samples: int) -> int:
        """HuBERT frames produced for `num_samples` input samples."""
        return int(self.hubert._get_feat_extract_output_lengths(torch.tensor(num_samples)))


# -----------------------------------------------------------------------------------------------------------------
# Quantizers: HuBERT features (B, T, D) -> unit ids (B, T) in [0, num_units)


class LinearQuantizer(nn.Module):
    """SpiritLM's linear quantizer: a 3-layer MLP with `num_units + 1` outputs (the last is a CTC blank).

    Blank frames take the unit of the nearest non-blank frame to their left, cyclically within the sequence (what
    SpiritLM's `torch.roll` loop does for a single utterance; SpiritLM rolls the flattened batch, we roll each row).
    Layer widths are read from the weights.
    """

    def __init__(self, dims: list[int]):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(dims[0], dims[1]),
            nn.LeakyReLU(),
            nn.Linear(dims[1], dims[2]),
            nn.LeakyReLU(),
            nn.Linear(dims[2], dims[3]),
        )
        self.num_units = dims[3] - 1  # the last output is the blank

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> LinearQuantizer:
        """Builds it from `encoder.{0,2,4}.{weight,bias}` (or SpiritLM's bare `{0,2,4}.*`) tensors."""
        state = {k if k.startswith("encoder.") else f"encoder.{k}": v for k, v in state.items()}
        dims = [state["encoder.0.weight"].shape[1]] + [state[f"encoder.{i}.weight"].shape[0] for i in (0, 2, 4)]
        quantizer = cls(dims)
        quantizer.load_state_dict(state)
        return quantizer

    @torch.no_grad()
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T) long unit ids."""
        units = self.encoder(features.float()).argmax(dim=-1)  # (B, T), blank = num_units
        for _ in range(units.shape[-1]):  # an all-blank row stays blank
            blank = units == self.num_units
            filled = torch.where(blank, units.roll(1, dims=-1), units)
            if torch.equal(filled, units):
                break
            units = filled
        return units


class KMeansQuantizer(nn.Module):
    """Nearest-centroid quantizer; centroids (K, D) from a .npy or a safetensors file (key `centroids`)."""

    def __init__(self, centroids: torch.Tensor):
        super().__init__()
        self.register_buffer("centroids", centroids.float())  # (K, D)
        self.num_units = centroids.shape[0]

    @classmethod
    def from_file(cls, path: str | Path) -> KMeansQuantizer:
        """Loads centroids without unpickling (np.load with allow_pickle=False, or safetensors)."""
        path = Path(path)
        if path.suffix == ".npy":
            return cls(torch.from_numpy(np.load(path, allow_pickle=False)))
        return cls(load_file(path)["centroids"])

    def save(self, path: str | Path) -> None:
        """Writes the centroids as safetensors."""
        save_file({"centroids": self.centroids.contiguous()}, str(path))

    @torch.no_grad()
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T) long: index of the closest centroid (squared Euclidean distance)."""
        x = features.float()
        dist = x.pow(2).sum(-1, keepdim=True) - 2 * x @ self.centroids.T + self.centroids.pow(2).sum(-1)  # (B, T, K)
        return dist.argmin(dim=-1)


class UnitExtractor(nn.Module):
    """waveform -> HuBERT units: features of `unit_layer` (fairseq, 1-based; 11 for MoST) through a quantizer."""

    def __init__(self, encoder: SpeechEncoder, quantizer: nn.Module, unit_layer: int = 11, deduplicate=False):
        super().__init__()
        self.encoder = encoder
        self.quantizer = quantizer
        self.unit_layer = unit_layer
        self.deduplicate = deduplicate  # collapse runs of equal units (not done for MoST's LM tokens)

    @torch.no_grad()
    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """(S,) or (1, S) waveform -> (T,) long unit ids."""
        features = self.encoder.hubert_features(waveform, layer=self.unit_layer)  # (1, T, D)
        units = self.quantizer(features)[0]  # (T,)
        return torch.unique_consecutive(units) if self.deduplicate else units


def units_to_token_ids(units: torch.Tensor, unit_token_offset: int) -> torch.Tensor:
    """HuBERT unit k -> LM token id `unit_token_offset + k` (README §1: [Hu0] is 100002)."""
    return units + unit_token_offset


def token_ids_to_units(token_ids: torch.Tensor, unit_token_offset: int, num_units: int) -> torch.Tensor:
    """Inverse of units_to_token_ids; ids outside the unit range are dropped."""
    units = token_ids - unit_token_offset
    return units[(units >= 0) & (units < num_units)]
