"""Speaker embedders for TTS speaker similarity (SIM): cosine between prompt and generated speech.

``--embedder NAME`` (task option ``embedder``):

* ``resemblyzer`` (default): resemblyzer's GE2E encoder, whose weights ship inside the PyPI package (offline).
* ``ecapa:PATH``: speechbrain ECAPA-TDNN (``EncoderClassifier``) from a local folder (hyperparams.yaml + ckpts).
* ``wavlm:PATH``: transformers ``WavLMForXVector`` from a local folder (the Seed-TTS-eval family of embedders).

Each returns L2-normalised embeddings, so SIM is a dot product in [-1, 1].
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from most_eval.audio import Audio


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

        from most_eval.models.hf_loading import load_pretrained

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


@lru_cache(maxsize=4)
def build_embedder(spec: str, device: str = "cpu") -> SpeakerEmbedder:
    """``resemblyzer`` | ``ecapa:PATH`` | ``wavlm:PATH`` -> an embedder (built once per process)."""
    kind, _, path = spec.partition(":")
    if kind == "resemblyzer":
        return ResemblyzerEmbedder(device)
    if kind == "ecapa" and path:
        return ECAPAEmbedder(path, device)
    if kind == "wavlm" and path:
        return WavLMEmbedder(path, device)
    raise ValueError(f"unknown speaker embedder {spec!r}; use resemblyzer, ecapa:PATH or wavlm:PATH")
