"""Speech in: frozen HuBERT features for the LM, and HuBERT units for the unit vocabulary.

MoST hears speech two ways (MoST paper and release):
- continuous: mHuBERT-base (25 Hz, 768-d) last-layer features, linearly projected to the LM's hidden size and placed
  between the begin/end audio-span tokens (`SpeechEncoder`);
- discrete: layer-11 features quantised into 500 units, runs of equal units collapsed (deduplicated, as the release's
  SpiritLM `encode_string` does), which become the audio tokens `[Hu0]..[Hu499]` (`UnitExtractor` with a
  `LinearQuantizer` as in SpiritLM, or a `KMeansQuantizer` as in textlesslib).

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
from transformers.masking_utils import create_bidirectional_mask

SAMPLE_RATE = 16_000  # HuBERT input rate; mHuBERT-base 25 Hz -> 640 samples per frame


class SpeechEncoder(nn.Module):
    """Frozen HuBERT + trainable linear projection to the LM hidden size.

    waveform (B, S) float at 16 kHz -> features (B, T, lm_hidden). `forward` takes one utterance or a batch of equal
    lengths: HuBERT-base's group-norm feature extractor normalises over the whole (padded) time axis, so padding
    changes its output. Batches of different lengths go through `hubert_features_batch` / `encode`, which run that
    convolutional front end per utterance and the transformer layers batched with an attention mask: per-utterance
    exact (zero-padded positions are zeroed before the positional convolution, whose own padding is zeros too).
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
        """Projected features per utterance, batched and exact (`hubert_features_batch`): list of (T_i, lm_hidden)."""
        features = self.hubert_features_batch(waveforms)
        return [self.proj(f.to(self.proj.weight.dtype)) for f in features]

    @torch.no_grad()
    def hubert_features_batch(self, waveforms: list[torch.Tensor], layer: int | None = None) -> list[torch.Tensor]:
        """HuBERT features of fairseq layer `layer` for utterances of any lengths: list of (T_i, D), each equal to
        `hubert_features` of that utterance alone.

        The convolutional front end (group norm over time) runs per utterance; the projection and the transformer
        layers up to `layer` run once on the zero-padded batch with an attention mask. Encoders with the "stable"
        (pre-norm) layout fall back to one pass per utterance.
        """
        layer = self.feature_layer if layer is None else layer
        if len(waveforms) == 1 or self.hubert.config.do_stable_layer_norm:
            return [self.hubert_features(w, layer)[0] for w in waveforms]
        device, dtype = self.proj.weight.device, self.hubert.dtype
        fronts = []
        for w in waveforms:
            w = w.reshape(1, -1)
            if self.normalize_waveform:
                w = F.layer_norm(w, w.shape[-1:])
            fronts.append(self.hubert.feature_extractor(w.to(device, dtype))[0].transpose(0, 1))  # (T_i, C)
        lengths = [f.shape[0] for f in fronts]
        padded = nn.utils.rnn.pad_sequence(fronts, batch_first=True)  # (B, T, C)
        mask = torch.arange(padded.shape[1], device=device)[None] < torch.tensor(lengths, device=device)[:, None]
        hidden = self.hubert.feature_projection(padded)  # per position: layer norm + linear
        encoder = self.hubert.encoder
        hidden = hidden.masked_fill(~mask[..., None], 0.0)  # as HubertEncoder: padded positions are zero
        hidden = encoder.layer_norm(hidden + encoder.pos_conv_embed(hidden))  # fairseq layer 0 (hidden_states[0])
        attention = create_bidirectional_mask(config=self.hubert.config, inputs_embeds=hidden, attention_mask=mask)
        for block in encoder.layers[:layer]:
            hidden = block(hidden, attention_mask=attention)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return [hidden[i, :n] for i, n in enumerate(lengths)]

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
    """waveform -> HuBERT units: features of `unit_layer` (fairseq, 1-based; 11 for MoST) through a quantizer.

    `deduplicate` collapses runs of equal units ([5, 5, 3, 3, 5] -> [5, 3, 5]). MoST's LM sees deduplicated units:
    the release tokenises speech with SpiritLM's `encode_string`, whose `hubert_dedup` does this (SpiritLM's own
    example: 228 frames -> 167 units), and the vocoder's duration predictor restores the timing.
    """

    def __init__(self, encoder: SpeechEncoder, quantizer: nn.Module, unit_layer: int = 11, deduplicate=True):
        super().__init__()
        self.encoder = encoder
        self.quantizer = quantizer
        self.unit_layer = unit_layer
        self.deduplicate = deduplicate

    @torch.no_grad()
    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """(S,) or (1, S) waveform -> (T,) long unit ids."""
        return self.batch([waveform.reshape(-1)])[0]

    @torch.no_grad()
    def batch(self, waveforms: list[torch.Tensor]) -> list[torch.Tensor]:
        """Unit ids per utterance, HuBERT batched and exact (`SpeechEncoder.hubert_features_batch`): list of (T_i,)."""
        features = self.encoder.hubert_features_batch(waveforms, layer=self.unit_layer)  # [(T_i, D)]
        units = [self.quantizer(f[None])[0] for f in features]
        return [torch.unique_consecutive(u) if self.deduplicate else u for u in units]


def units_to_token_ids(units: torch.Tensor, unit_token_offset: int) -> torch.Tensor:
    """HuBERT unit k -> LM token id `unit_token_offset + k` (in MoST, [Hu0] is 100002)."""
    return units + unit_token_offset


def token_ids_to_units(token_ids: torch.Tensor, unit_token_offset: int, num_units: int) -> torch.Tensor:
    """Inverse of units_to_token_ids; ids outside the unit range are dropped."""
    units = token_ids - unit_token_offset
    return units[(units >= 0) & (units < num_units)]
