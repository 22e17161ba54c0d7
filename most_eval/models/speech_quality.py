"""Speech quality of generated speech: DNSMOS (Microsoft's non-intrusive MOS predictor) through ``speechmos``.

``--task-args mos=dnsmos`` (the default for TTS and spoken-QA S->S tasks), ``mos=utmos:PATH`` (UTMOS22 from a local
file, :mod:`most_eval.models.utmos`), both (``mos=dnsmos+utmos:PATH``) or ``mos=none``. ``speechmos``'s wheel
ships the DNSMOS ONNX models (P.835 ``dnsmos_models/sig_bak_ovr.onnx``, P.808 ``dnsmos_models/model_v8.onnx``); its
``DNSMOS`` class scores one clip — the 9.01 s windows, the P.835 polynomial fit, the P.808 mel input — and this
module only hands it each clip as ``speechmos.dnsmos.run`` takes it (16 kHz, mono float32, clipped to [-1, 1]) and
runs clips in a thread pool (onnxruntime releases the GIL). Per clip: ``dnsmos_ovrl``, ``dnsmos_sig``, ``dnsmos_bak``
(P.835: overall, signal, background) and ``dnsmos_p808``, each on the 1-5 MOS scale.

DNSMOS is no number of the MoST paper: results mark it so (see the TTS task's comparability).
Reference: Reddy et al., "DNSMOS P.835", ICASSP 2022; https://github.com/microsoft/DNS-Challenge (DNSMOS/).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from importlib import metadata
from typing import Sequence

import numpy as np

from most_eval.core.audio import Audio
from most_eval.scoring.speech_quality import DNSMOS_FIELDS, mos_parts

SAMPLE_RATE = 16000  # the only rate DNSMOS takes
#: (our field, speechmos's key) for each number of a clip
FIELDS = tuple(zip(DNSMOS_FIELDS, ("ovrl_mos", "sig_mos", "bak_mos", "p808_mos")))
INSTALL = "pip install speechmos onnxruntime librosa"


def dnsmos_input(audio: Audio) -> np.ndarray:
    """A clip as DNSMOS takes it, and as ``speechmos.dnsmos.run(path, 16000)`` reads a file: at 16 kHz (soxr HQ,
    as ``librosa.load`` resamples), ``ceil(n * 16000 / rate)`` samples long (librosa pads the last one), mono
    float32, clipped to [-1, 1] (speechmos refuses values outside that range rather than clip them)."""
    samples = audio.resampled(SAMPLE_RATE).samples
    if audio.sample_rate != SAMPLE_RATE:
        length = int(np.ceil(len(audio.samples) * SAMPLE_RATE / audio.sample_rate))
        samples = np.pad(samples, (0, max(0, length - len(samples))))[:length]
    return np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)


class DNSMOSScorer:
    """DNSMOS P.835 + P.808 of each clip, with speechmos's own models and code; ``name`` goes into results."""

    fields = DNSMOS_FIELDS

    def __init__(self, threads: int | None = None):
        try:
            from speechmos import dnsmos
        except ImportError as exc:
            raise RuntimeError(f"DNSMOS needs speechmos, onnxruntime and librosa ({exc}): {INSTALL}") from None
        self._dnsmos = dnsmos
        self.threads = threads or min(8, os.cpu_count() or 1)

    @cached_property
    def name(self) -> str:
        return f"dnsmos (speechmos {metadata.version('speechmos')})"

    @cached_property
    def _model(self):
        """speechmos's DNSMOS over the ONNX files inside its package (what ``dnsmos.run`` loads)."""
        folder = os.path.join(os.path.dirname(os.path.abspath(self._dnsmos.__file__)), "dnsmos_models")
        return self._dnsmos.DNSMOS(os.path.join(folder, "sig_bak_ovr.onnx"), os.path.join(folder, "model_v8.onnx"))

    def score(self, audios: Sequence[Audio]) -> list[dict[str, float]]:
        """``{dnsmos_ovrl, dnsmos_sig, dnsmos_bak, dnsmos_p808}`` per clip, in input order."""
        model = self._model

        def one(audio: Audio) -> dict[str, float]:
            clip = model(dnsmos_input(audio), SAMPLE_RATE, False)
            return {ours: float(clip[theirs]) for ours, theirs in FIELDS}

        if not audios:
            return []
        with ThreadPoolExecutor(max_workers=min(self.threads, len(audios))) as pool:
            return list(pool.map(one, audios))


class SpeechQualityScorers:
    """Several scorers as one (``mos=dnsmos+utmos:PATH``): each clip gets every scorer's fields."""

    def __init__(self, scorers: list):
        self.scorers = scorers
        self.name = " + ".join(s.name for s in scorers)
        self.fields = tuple(f for s in scorers for f in s.fields)

    def score(self, audios: Sequence[Audio]) -> list[dict[str, float]]:
        out: list[dict[str, float]] = [{} for _ in audios]
        for scorer in self.scorers:
            for merged, scores in zip(out, scorer.score(audios)):
                merged.update(scores)
        return out


def build_mos(spec: str, device: str = "cpu"):
    """The speech-quality scorer a ``mos`` task option names (``dnsmos``, ``utmos:PATH``, several joined with
    ``+``), or None for ``none``; ValueError (one line) for a bad option or an unusable UTMOS file."""
    from most_eval.models.utmos import UTMOSScorer

    scorers = [DNSMOSScorer() if name == "dnsmos" else UTMOSScorer(path, device) for name, path in mos_parts(spec)]
    if not scorers:
        return None
    return scorers[0] if len(scorers) == 1 else SpeechQualityScorers(scorers)
