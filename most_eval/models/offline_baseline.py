"""``offline-baseline``: a real model that needs no download — pocketsphinx for ASR, espeak-ng for TTS.

* ``transcribe``: pocketsphinx 5 with the English acoustic model, CMU dictionary and n-gram LM its wheel ships.
* ``synthesize``: the espeak-ng program (Debian package ``espeak-ng``); the voice is fixed by ``voice=``, a speaker
  prompt is ignored (espeak-ng cannot clone a voice), so speaker similarity measures how far it is from the prompt.
* ``score_audio``: a *cascade*, not a spoken LM: the pocketsphinx transcript scored by pocketsphinx's trigram LM
  (natural-log probability summed over words and the end-of-sentence token).
* ``respond``: not supported (it has no way to answer a question).

Its numbers on synthetic voices are weak and real: pocketsphinx was trained on read human speech.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np
import soundfile as sf

from most_eval.core.adapter import AudioScore, Model
from most_eval.core.audio import Audio, to_mono_float32


@dataclass(frozen=True)
class OfflineBaselineArgs:
    """``--model-args`` of the offline baseline."""

    voice: str = "en-us"  # espeak-ng voice for synthesize
    speed: int = 160  # espeak-ng words per minute


class OfflineBaseline(Model):
    name = "offline-baseline"
    description = "pocketsphinx ASR + espeak-ng TTS + cascade spoken-LM score (ASR transcript -> trigram LM); offline"
    Args = OfflineBaselineArgs
    score_reduction = "sum"

    @cached_property
    def decoder(self):
        """The pocketsphinx decoder (16 kHz, bundled English model)."""
        from pocketsphinx import Decoder

        return Decoder(samprate=16000, loglevel="FATAL")

    @cached_property
    def lm(self):
        """pocketsphinx's bundled English trigram LM and its log base converter."""
        import pocketsphinx
        from pocketsphinx import Config, LogMath, NGramModel

        path = os.path.join(pocketsphinx.get_model_path(), "en-us", "en-us.lm.bin")
        logmath = LogMath()
        return NGramModel(Config(), logmath, path), logmath

    def identity(self) -> dict:
        import pocketsphinx

        return {**super().identity(), "pocketsphinx": getattr(pocketsphinx, "__version__", "5"),
                "espeak-ng": _espeak_version()}

    def deterministic(self, capability: str) -> bool:
        """pocketsphinx's decoder and espeak-ng's synthesis draw no random numbers."""
        return True

    def transcribe(self, audios: Sequence[Audio]) -> list[str]:
        out = []
        for audio in audios:
            if len(audio.samples) < audio.sample_rate // 100:  # under 10 ms: nothing to decode
                out.append("")
                continue
            pcm = (np.clip(audio.samples, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
            self.decoder.reinit_feat()  # reset live CMN state: each transcript independent of the ones before
            self.decoder.start_utt()
            self.decoder.process_raw(pcm, full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
            out.append(hyp.hypstr if hyp is not None else "")
        return out

    def synthesize(self, texts: Sequence[str], prompts=None) -> list[Audio]:
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
        out = []
        for text in texts:
            # the text goes on stdin, never on the command line: dataset text such as "-f/etc/passwd" would be an
            # option there (speak that file), and a NUL byte cannot be passed as an argument at all. An empty stdin
            # gives no WAV at all, a blank gives the near-empty WAV an empty argument gave.
            wav = subprocess.run([exe, "-v", self.args.voice, "-s", str(self.args.speed), "--stdout", "--stdin"],
                                 input=(text or " ").encode("utf-8"), capture_output=True, check=True).stdout
            data, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
            out.append(Audio(to_mono_float32(data), int(rate)))
        return out

    def text_logprob(self, text: str) -> AudioScore:
        """Natural-log probability of a word sequence under the trigram LM, with <s> and </s>; tokens = words + 1."""
        lm, logmath = self.lm
        words = ["<s>"] + text.lower().split() + ["</s>"]
        total = 0
        for i in range(1, len(words)):
            total += lm.prob(words[i::-1][:3])  # (word, previous, the one before): pocketsphinx's order
        return AudioScore(logmath.log_to_ln(total), len(words) - 1)

    def score_audio(self, audios: Sequence[Audio]) -> list[AudioScore]:
        return [self.text_logprob(t) for t in self.transcribe(audios)]


def _espeak_version() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return "missing"
    try:
        return subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout.split("Data")[0].strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


__all__ = ["OfflineBaseline"]
