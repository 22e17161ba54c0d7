"""UTMOS: the UTMOS22 "strong learner" MOS predictor from a local checkpoint file (``--task-args mos=utmos:PATH``).

UTMOS22 (Saeki et al., "UTMOS: UTokyo-SaruLab System for VoiceMOS Challenge 2022", Interspeech 2022) rates a clip on
the 1-5 MOS scale: wav2vec 2.0 BASE features of the 16 kHz waveform, each frame concatenated with a domain embedding
and a listener ("judge") embedding, a bidirectional LSTM, a two-layer projection, then ``2 * mean over frames + 3``.
The released strong learner has no phoneme encoder, scores with domain 0 and judge 288, and takes the waveform as it
is (no normalisation).

Two files of the same weights are read, both with ``torch.load(weights_only=True)`` (no pickle code runs):

* SpeechMOS's ``utmos22_strong_step7459_v1.pt`` (github.com/tarepan/SpeechMOS, release v1.0.0; MIT): ``wav2vec2.*``
  in fairseq's layout, ``domain_emb`` / ``judge_emb`` (the two rows already cut out), ``blstm.*``, ``projection.{0,2}``;
* the original lightning layout, as UTMOS-PyTorch's ``utmos_state_dict.pt`` holds it:
  ``feature_extractors.0.ssl_model.*`` (wav2vec 2.0), ``feature_extractors.1.embedding.weight`` (3 domains),
  ``output_layers.0.judge_embedding.weight`` (3000 judges), ``output_layers.0.decoder_rnn.*``,
  ``output_layers.1.net.{0,3}``.

wav2vec 2.0 runs as transformers' ``Wav2Vec2Model`` with fairseq's keys renamed
(:mod:`most_eval.models.fairseq_weights`); fairseq's padding of the frames to an even count is masked out of
attention there, so leaving it out changes nothing. Clips are scored one at a time: the model has no length mask,
so padding a batch would change the scores. Audio at another rate is resampled to 16 kHz with soxr (SpeechMOS uses
torchaudio's resampler, so at other rates the two may differ in the last digits).
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from most_eval.core.audio import Audio
from most_eval.core.errors import ModelFilesError
from most_eval.models.fairseq_weights import fairseq_to_hf

SAMPLE_RATE = 16000
DOMAIN, JUDGE = 0, 288  # the strong learner's scoring domain and listener (SpeechMOS, UTMOS22 demo)
#: where the file is published, for the one-line error of a missing file
WHERE = ("SpeechMOS's utmos22_strong_step7459_v1.pt (github.com/tarepan/SpeechMOS, release v1.0.0), or "
         "UTMOS-PyTorch's utmos_state_dict.pt")


class UTMOSFileError(ModelFilesError, ValueError):
    """A UTMOS checkpoint that cannot be used; ``str(err)`` is one line naming the file."""


def build_utmos_module():
    """The UTMOS22 strong learner as torch modules, weights uninitialised: wav2vec 2.0 BASE (transformers), the two
    embeddings, the BLSTM and the projection."""
    import torch
    from torch import nn
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    class UTMOS22Strong(nn.Module):
        """SSL features + domain + judge -> BLSTM -> projection -> per-frame score."""

        def __init__(self):
            super().__init__()
            config = Wav2Vec2Config(  # fairseq wav2vec_small: group-norm conv stack, post-LN encoder
                feat_extract_norm="group", conv_bias=False, do_stable_layer_norm=False, hidden_act="gelu",
                feat_extract_activation="gelu", hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                feat_proj_dropout=0.0, layerdrop=0.0, apply_spec_augment=False)  # mask_emb kept, never applied
            self.wav2vec2 = Wav2Vec2Model(config)
            self.domain_emb = nn.Parameter(torch.zeros(1, 128), requires_grad=False)
            self.judge_emb = nn.Parameter(torch.zeros(1, 128), requires_grad=False)
            self.blstm = nn.LSTM(input_size=768 + 256, hidden_size=512, batch_first=True, bidirectional=True)
            self.projection = nn.Sequential(nn.Linear(1024, 2048), nn.ReLU(), nn.Linear(2048, 1))

        def forward(self, wave: torch.Tensor) -> torch.Tensor:
            """(B, T) 16 kHz waveforms -> (B,) MOS."""
            frames = self.wav2vec2(wave).last_hidden_state  # (B, F, 768)
            b, f, _ = frames.shape
            cat = torch.cat([frames, self.domain_emb.expand(b, f, -1), self.judge_emb.expand(b, f, -1)], dim=2)
            scores = self.projection(self.blstm(cat)[0])  # (B, F, 1)
            return scores.mean(dim=1).squeeze(1) * 2 + 3

    return UTMOS22Strong()


def speechmos_state(state: dict) -> dict:
    """Either layout (module docstring) as SpeechMOS's keys; UTMOSFileError's reason (ValueError) otherwise."""
    if "domain_emb" in state:
        return state
    prefix = "feature_extractors.0.ssl_model."
    if not any(k.startswith(prefix) for k in state):
        raise ValueError(f"keys {sorted(state)[:3]}: neither SpeechMOS's UTMOS layout (wav2vec2.*, domain_emb, "
                         f"judge_emb, blstm.*, projection.*) nor the original one (feature_extractors.*)")
    out = {"wav2vec2." + k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    out["domain_emb"] = state["feature_extractors.1.embedding.weight"][DOMAIN:DOMAIN + 1]
    out["judge_emb"] = state["output_layers.0.judge_embedding.weight"][JUDGE:JUDGE + 1]
    rnn = "output_layers.0.decoder_rnn."
    out.update({"blstm." + k[len(rnn):]: v for k, v in state.items() if k.startswith(rnn)})
    for theirs, ours in (("net.0", "projection.0"), ("net.3", "projection.2")):
        for part in ("weight", "bias"):
            out[f"{ours}.{part}"] = state[f"output_layers.1.{theirs}.{part}"]
    return out


class UTMOSScorer:
    """UTMOS of each clip from the checkpoint at ``path``; ``name`` (with the file's digest) goes into results."""

    fields = ("utmos",)

    def __init__(self, path: str | Path, device: str = "cpu"):
        self.path = Path(path).expanduser()
        self.device = device
        if not self.path.is_file():
            raise UTMOSFileError(f"{self.path}: no UTMOS checkpoint there (mos=utmos:PATH names a local file: "
                                 f"{WHERE}; nothing is downloaded)")
        self.model  # load now: a bad file fails before any model work

    @cached_property
    def name(self) -> str:
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:12]
        return f"utmos22-strong ({self.path.name}, sha256 {digest})"

    @cached_property
    def model(self):
        """The module with the file's weights, every key matched (strict), in eval mode."""
        import torch

        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise ValueError(f"holds a {type(state).__name__}, not a state dict")
            state = speechmos_state(state)
            wav2vec = fairseq_to_hf({k[len("wav2vec2."):]: v for k, v in state.items() if k.startswith("wav2vec2.")})
            state = {**{k: v for k, v in state.items() if not k.startswith("wav2vec2.")},
                     **{"wav2vec2." + k: v for k, v in wav2vec.items()}}
            model = build_utmos_module()
            expected = model.state_dict()
            state.setdefault("wav2vec2.masked_spec_embed", expected["wav2vec2.masked_spec_embed"])  # unused at
            # inference (pre-training's mask embedding); UTMOS-PyTorch's file leaves it out
            missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
            if missing or unexpected:
                raise ValueError(f"{len(missing)} missing key(s) (first {missing[:1]}), {len(unexpected)} "
                                 f"unexpected (first {unexpected[:1]})")
            wrong = next((k for k, v in state.items() if tuple(v.shape) != tuple(expected[k].shape)), None)
            if wrong:
                raise ValueError(f"{wrong} has shape {tuple(state[wrong].shape)}, expected "
                                 f"{tuple(expected[wrong].shape)}")
            model.load_state_dict(state, strict=True)
        except (KeyError, ValueError, RuntimeError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UTMOSFileError(f"{self.path}: not a UTMOS22 strong checkpoint: {reason}") from None
        return model.to(self.device).eval()

    def score(self, audios: Sequence[Audio]) -> list[dict[str, float]]:
        """``{"utmos": MOS}`` per clip, in input order; each clip alone (no padding), 16 kHz mono float32."""
        import torch

        out = []
        with torch.inference_mode():
            for audio in audios:
                wave = audio.resampled(SAMPLE_RATE).samples.astype(np.float32, copy=False)
                if len(wave) < 400:  # shorter than wav2vec 2.0's receptive field: no frame to score
                    out.append({"utmos": float("nan")})
                    continue
                tensor = torch.from_numpy(np.ascontiguousarray(wave))[None].to(self.device)
                out.append({"utmos": float(self.model(tensor)[0])})
        return out
