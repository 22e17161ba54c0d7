"""Speaker embedders for TTS speaker similarity (SIM): cosine between prompt and generated speech.

``--embedder NAME`` (task option ``embedder``):

* ``resemblyzer`` (default): resemblyzer's GE2E encoder, whose weights ship inside the PyPI package (offline).
* ``ecapa:PATH``: speechbrain ECAPA-TDNN (``EncoderClassifier``) from a local folder (hyperparams.yaml + ckpts).
* ``wavlm:PATH``: transformers ``WavLMForXVector`` from a local folder (the Seed-TTS-eval family of embedders).
* ``seedtts-wavlm:PATH``: Seed-TTS-eval's own SIM model rebuilt offline — WavLM-large hidden states mixed by a
  softmax-weighted sum into UniSpeech's ECAPA-TDNN head (256-d), loaded from the official ``wavlm_large_finetune.pth``.
  PATH layout and key mapping: :class:`SeedTTSWavLMEmbedder`.

Each returns L2-normalised embeddings, so SIM is a dot product in [-1, 1].
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from most_eval.core.audio import Audio

log = logging.getLogger(__name__)


class SpeakerEmbedder:
    """Base: ``embed(audios) -> (n, d)`` unit vectors at ``sample_rate``; ``name`` goes into results."""

    name = ""
    sample_rate = 16000

    def embed(self, audios: Sequence[Audio]) -> np.ndarray:
        raise NotImplementedError

    def similarity(self, a: Sequence[Audio], b: Sequence[Audio]) -> list[float]:
        """Cosine similarity of each pair (a[i], b[i])."""
        ea, eb = self.embed(a), self.embed(b)
        return [float(x) for x in np.sum(ea * eb, axis=1)]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class ResemblyzerEmbedder(SpeakerEmbedder):
    """resemblyzer VoiceEncoder (weights ship with the package)."""

    def __init__(self, device: str = "cpu"):
        import warnings
        from importlib.metadata import version

        with warnings.catch_warnings():  # resemblyzer -> webrtcvad imports the deprecated pkg_resources
            warnings.simplefilter("ignore")
            from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder(device if device.startswith("cuda") else "cpu", verbose=False)
        self.name = f"resemblyzer-{version('resemblyzer')}"

    def embed(self, audios: Sequence[Audio]) -> np.ndarray:
        from resemblyzer import preprocess_wav

        out = []
        for a in audios:
            wav = preprocess_wav(a.resampled(self.sample_rate).samples, source_sr=self.sample_rate)
            if len(wav) < 1600:  # voice-activity trimming left (almost) nothing: embed the raw signal
                wav = a.resampled(self.sample_rate).samples
            out.append(self.encoder.embed_utterance(wav))
        return _unit(np.stack(out))


class ECAPAEmbedder(SpeakerEmbedder):
    """speechbrain ECAPA-TDNN speaker encoder from a local folder."""

    def __init__(self, path: str, device: str = "cpu"):
        from speechbrain.inference.speaker import EncoderClassifier

        folder = Path(path).expanduser()
        if not (folder / "hyperparams.yaml").is_file():
            raise ValueError(f"{folder}: no hyperparams.yaml — expected a speechbrain ECAPA model folder "
                             f"(download speechbrain/spkrec-ecapa-voxceleb on a connected machine)")
        self.model = EncoderClassifier.from_hparams(source=str(folder), savedir=str(folder),
                                                    run_opts={"device": device})
        self.name = f"ecapa:{folder.name}"

    def embed(self, audios: Sequence[Audio]) -> np.ndarray:
        import torch

        out = []
        for a in audios:
            wav = torch.from_numpy(a.resampled(self.sample_rate).samples)[None]
            with torch.inference_mode():
                out.append(self.model.encode_batch(wav).reshape(-1).cpu().numpy())
        return _unit(np.stack(out))


class WavLMEmbedder(SpeakerEmbedder):
    """transformers WavLMForXVector from a local folder."""

    def __init__(self, path: str, device: str = "cpu"):
        import transformers

        from most_eval.core.hf_loading import load_pretrained

        self.extractor = load_pretrained(path, transformers.AutoFeatureExtractor.from_pretrained, "feature extractor")
        self.model = load_pretrained(path, transformers.WavLMForXVector.from_pretrained, "WavLMForXVector").eval()
        self.model.to(device)
        self.device = device
        self.name = f"wavlm:{Path(path).name}"

    def embed(self, audios: Sequence[Audio]) -> np.ndarray:
        import torch

        out = []
        for a in audios:
            inputs = self.extractor(a.resampled(self.sample_rate).samples, sampling_rate=self.sample_rate,
                                    return_tensors="pt")
            with torch.inference_mode():
                emb = self.model(**{k: v.to(self.device) for k, v in inputs.items()}).embeddings
            out.append(emb.reshape(-1).cpu().numpy())
        return _unit(np.stack(out))


# --------------------------------------------------------------------------------------------------------------------
# seedtts-wavlm: Seed-TTS-eval's speaker-verification model, rebuilt without s3prl, fairseq or the network.
#
# Reference: seed-tts-eval's thirdparty/UniSpeech/downstreams/speaker_verification — verification.py (``init_model``:
# ``ECAPA_TDNN_SMALL(feat_dim=1024, feat_type='wavlm_large')``, then ``load_state_dict(ckpt['model'], strict=False)``;
# ``verification``: both clips resampled to 16 kHz with torchaudio's ``Resample``, one clip per forward, cosine of the
# two embeddings) and models/ecapa_tdnn.py (the head below). The upstream is s3prl's ``wavlm_large``: the waveform is
# layer-normalised (WavLM-Large's ``cfg.normalize``), and its "hidden_states" are the input of each of the 24
# transformer layers plus the encoder's output after its final LayerNorm: 25 states of 1024 channels.
# --------------------------------------------------------------------------------------------------------------------

SEEDTTS_CHECKPOINT = "wavlm_large_finetune.pth"  # the official fine-tuned verifier: {"model": state_dict}
SEEDTTS_UPSTREAM = "WavLM-Large.pt"  # optional: WavLM-Large's pre-trained weights ({"cfg", "model"}), fairseq names
SEEDTTS_MIN_SAMPLES = 400  # one WavLM frame (first conv: kernel 400 at 16 kHz); shorter clips get a NaN embedding


def _torch_load_tensors(path: Path) -> dict:
    """``torch.load(weights_only=True)``: tensors and plain containers only, a pickled object is refused."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as exc:
        raise ValueError(
            f"{path}: refused by torch.load(weights_only=True) ({str(exc).splitlines()[0][:160]}); a checkpoint that "
            f"pickles objects besides tensors is not loaded here. If you trust the file, keep only its weights where "
            f"running its code is acceptable: torch.save({{'model': torch.load(P, weights_only=False)['model']}}, P2)"
        ) from None


class SeedTTSWavLMEmbedder(SpeakerEmbedder):
    """Seed-TTS-eval's SIM embedder (WavLM-large + ECAPA-TDNN, 256-d), from local files only.

    ``seedtts-wavlm:PATH`` — PATH is a folder holding

    * ``wavlm_large_finetune.pth`` (required): the official checkpoint, a dict whose ``"model"`` entry is the state
      dict of UniSpeech's ``ECAPA_TDNN_SMALL(feat_dim=1024, feat_type='wavlm_large')``: head keys (``feature_weight``,
      ``layer1.conv.weight``, ``layer2.Res2Conv1dReluBn.convs.0.weight``, ``pooling.linear1.weight``, ``bn.*``,
      ``linear.*`` …) and the upstream's keys under ``feature_extract.model.`` (fairseq WavLM names);
    * ``config.json`` (optional): a transformers ``WavLMConfig``; default: WavLM-Large (:data:`WAVLM_LARGE_CONFIG`;
      microsoft/wavlm-large's own config.json fits as is);
    * ``WavLM-Large.pt`` (optional): WavLM-Large's pre-trained weights, read only for upstream keys the fine-tuned
      checkpoint lacks (s3prl fetched them from the network when seed-tts-eval built its model).

    PATH may also name the ``.pth`` file itself; the optional files are then looked for beside it. Loading is strict:
    every parameter of the model must come from those files (a missing BatchNorm ``num_batches_tracked`` counter,
    unused in inference, is the one exception), else a ValueError lists the missing keys. Checkpoint keys with no
    place in the model are ignored, as seed-tts-eval's ``strict=False`` ignores them, listed in
    ``load_report["ignored"]`` and logged (the known training-only keys, :data:`SEEDTTS_UNUSED_KEYS`, go to
    ``load_report["unused"]`` silently). Files are read with ``torch.load(weights_only=True)``: a pickled object is
    refused.

    Audio: mono (the loader's down-mix; seed-tts-eval keeps channel 0), resampled to 16 kHz with soxr (seed-tts-eval
    uses torchaudio's sinc ``Resample``; torchaudio is kept out of most-eval, whose install has only its CPU-less
    build, so audio not already at 16 kHz can differ in the last digits of SIM), one clip per forward pass, float32.
    A clip shorter than one WavLM frame (400 samples) has no embedding: a NaN row (seed-tts-eval skips that pair).
    """

    def __init__(self, path: str, device: str = "cpu"):
        from transformers import WavLMConfig

        from most_eval.models.seedtts_verifier import WAVLM_LARGE_CONFIG, seedtts_verifier  # torch: on first use

        target = Path(path).expanduser()
        ckpt = target if target.is_file() else target / SEEDTTS_CHECKPOINT
        folder = ckpt.parent
        if not ckpt.is_file():
            raise ValueError(f"{target}: no {SEEDTTS_CHECKPOINT} — expected Seed-TTS-eval's fine-tuned WavLM-large "
                             f"verifier (UniSpeech speaker_verification) there, or PATH naming that .pth file")
        config = dict(WAVLM_LARGE_CONFIG)
        if (folder / "config.json").is_file():
            config.update(json.loads((folder / "config.json").read_text()))
        # inference only: no SpecAugment masking, no layer drop (masked_spec_embed is then not even created)
        config.update(mask_time_prob=0.0, mask_feature_prob=0.0, layerdrop=0.0, apply_spec_augment=False)
        config = WavLMConfig.from_dict(config)
        if not config.do_stable_layer_norm:
            raise ValueError(f"{folder / 'config.json'}: do_stable_layer_norm must be true (WavLM-Large's "
                             f"layer_norm_first); this embedder rebuilds WavLM-Large only")
        self.model = seedtts_verifier(config).eval()
        self.load_report = self._load(ckpt, folder / SEEDTTS_UPSTREAM)
        self.model.to(device)
        self.device = device
        self.name = f"seedtts-wavlm:{ckpt.name}"

    def _load(self, ckpt: Path, upstream: Path) -> dict:  # long: every key of both files is accounted for here
        """Map the official checkpoint (and, for what it lacks, WavLM-Large.pt) onto the model; strict."""
        from most_eval.models.seedtts_verifier import SEEDTTS_UNUSED_KEYS, _WEIGHT_NORM, wavlm_key

        payload = _torch_load_tensors(ckpt)
        if not isinstance(payload, dict) or not isinstance(payload.get("model"), dict):
            raise ValueError(f"{ckpt}: expected a dict with a 'model' state dict (seed-tts-eval loads "
                             f"state_dict['model'])")
        own = self.model.state_dict()
        state, ignored, unused, source = {}, [], [], {}

        def put(target_key, value, origin):
            state[target_key] = value
            source[target_key] = origin

        def upstream_key(name):  # fairseq WavLM name -> our key (None: no place in the model)
            key = wavlm_key(name)
            if key is None:
                return None
            key = f"wavlm.{key}"
            for old, new in _WEIGHT_NORM.items():  # whichever weight-norm layout this torch's model uses
                if key.endswith(old) and key not in own:
                    key = key[: -len(old)] + new
                elif key.endswith(new) and key not in own:
                    key = key[: -len(new)] + old
            return key

        for name, value in payload["model"].items():
            if name.startswith("feature_extract.model."):
                key = upstream_key(name[len("feature_extract.model."):])
            else:
                key = name if not name.startswith("wavlm.") else None
            if name in SEEDTTS_UNUSED_KEYS:
                unused.append(name)
            elif key is None or key not in own:
                ignored.append(name)
            else:
                put(key, value, "checkpoint")
        lacking = [k for k in own if k not in state and k.startswith("wavlm.")]
        if lacking and upstream.is_file():
            up = _torch_load_tensors(upstream)
            for name, value in (up.get("model", up) if isinstance(up, dict) else {}).items():
                key = None if f"feature_extract.model.{name}" in SEEDTTS_UNUSED_KEYS else upstream_key(name)
                if key is not None and key in own and key not in state:
                    put(key, value, upstream.name)
        for key in own:  # BatchNorm step counters: not used in eval mode, absent from old checkpoints
            if key not in state and key.endswith("num_batches_tracked"):
                state[key] = own[key]
        missing = [k for k in own if k not in state]
        if missing:
            hint = (f" nor in {upstream.name}" if upstream.is_file()
                    else f" (put {SEEDTTS_UPSTREAM} beside it for the upstream weights)")
            raise ValueError(f"{ckpt}: {len(missing)} model parameter(s) not in the checkpoint{hint}: "
                             f"{', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}")
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # a shape that does not fit: the config does not describe this checkpoint
            raise ValueError(f"{ckpt}: does not fit the model built from the config "
                             f"({' '.join(str(exc).split())[:300]})") from None
        if ignored:
            log.warning("%s: %d checkpoint key(s) not used by the model: %s", ckpt, len(ignored),
                        ", ".join(ignored[:8]))
        counts: dict[str, int] = {}
        for origin in source.values():
            counts[origin] = counts.get(origin, 0) + 1
        return {"loaded": counts, "unused": unused, "ignored": ignored}

    def _to_16k(self, audio: Audio):
        """(1, n) float32 tensor at 16 kHz (soxr; see the class docstring for the difference to seed-tts-eval)."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(audio.resampled(self.sample_rate).samples, np.float32))[None]

    def embed(self, audios: Sequence[Audio]) -> np.ndarray:
        import torch

        out = []
        for a in audios:
            wav = self._to_16k(a)
            if wav.shape[-1] < SEEDTTS_MIN_SAMPLES:
                out.append(np.full(self.model.linear.out_features, np.nan, dtype=np.float32))
                continue
            with torch.inference_mode():
                out.append(self.model(wav.to(self.device)).reshape(-1).float().cpu().numpy())
        return _unit(np.stack(out))


@lru_cache(maxsize=4)
def build_embedder(spec: str, device: str = "cpu") -> SpeakerEmbedder:
    """``resemblyzer`` | ``ecapa:PATH`` | ``wavlm:PATH`` | ``seedtts-wavlm:PATH`` -> an embedder (one per process)."""
    kind, _, path = spec.partition(":")
    if kind == "resemblyzer":
        return ResemblyzerEmbedder(device)
    if kind == "ecapa" and path:
        return ECAPAEmbedder(path, device)
    if kind == "wavlm" and path:
        return WavLMEmbedder(path, device)
    if kind == "seedtts-wavlm" and path:
        return SeedTTSWavLMEmbedder(path, device)
    raise ValueError(f"unknown speaker embedder {spec!r}; "
                     f"use resemblyzer, ecapa:PATH, wavlm:PATH or seedtts-wavlm:PATH")
