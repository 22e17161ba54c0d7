"""``dummy``: the smallest complete adapter — documentation by example, test fixture and benchmark peer.

It does no modelling and costs (almost) nothing, so the runner's own overhead can be measured against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from most_eval.core.adapter import AudioScore, Model
from most_eval.core.audio import Audio


@dataclass(frozen=True)
class DummyArgs:
    """``--model-args`` of the dummy model."""

    text: str = ""  # what transcribe and respond return
    tone_hz: float = 220.0  # synthesize returns a 0.2 s tone of this pitch


class DummyModel(Model):
    name = "dummy"
    description = "zero-cost test model: fixed transcript, minus-duration score, a short tone as speech"
    Args = DummyArgs
    score_reduction = "sum"

    def deterministic(self, capability: str) -> bool:
        """Fixed outputs: every seed gives the same."""
        return True

    def transcribe(self, audios: Sequence[Audio]) -> list[str]:
        return [self.args.text for _ in audios]

    def synthesize(self, texts: Sequence[str], prompts=None) -> list[Audio]:
        t = np.arange(int(0.2 * self.sample_rate), dtype=np.float32) / self.sample_rate
        tone = (0.1 * np.sin(2 * np.pi * self.args.tone_hz * t)).astype(np.float32)
        return [Audio(tone, self.sample_rate) for _ in texts]

    def score_audio(self, audios: Sequence[Audio]) -> list[AudioScore]:
        # minus the duration, over one "token" per 40 ms (a 25 Hz unit rate)
        return [AudioScore(-a.duration, max(1, round(a.duration * 25))) for a in audios]

    def respond(self, audios: Sequence[Audio], modality: str = "text"):
        if modality == "speech":
            return self.synthesize([self.args.text] * len(audios))
        return [self.args.text for _ in audios]
