"""What DNSMOS costs beside the judge: the same generated clips rated by DNSMOS (speechmos's ONNX models) on one
thread and on the scorer's pool, and transcribed by the default judge.

    python benchmarks/bench_dnsmos.py [--clips 24] [--repeats 2]

The clips are espeak-ng sentences of 2-6 s at 16 kHz (several voices), as a TTS task's generated speech. The judge
is the offline baseline's pocketsphinx ASR (the default judge without ``$MOST_EVAL_JUDGE_PATH``). Prints seconds
per clip for each, best of ``--repeats``, and DNSMOS's cost as a ratio of the judge's.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import time

import numpy as np
import soundfile as sf

from most_eval.core.audio import Audio
from most_eval.models.speech_quality import DNSMOSScorer
from most_eval.registry import build_model

SENTENCES = ["the old man sat down by the fire", "we should plant more trees in the park this spring",
             "the library closes early on sundays and holidays", "he said nothing at all",
             "a quick brown fox jumps over the lazy dog near the river bank", "the road ran north"]
VOICES = ["en-us", "en-gb", "en-us+f3", "en-us+m3"]


def clip(text: str, voice: str) -> Audio:
    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True).stdout
    data, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return Audio(np.ascontiguousarray(data), rate).resampled(16000)


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    clips = [clip(SENTENCES[i % len(SENTENCES)], VOICES[i % len(VOICES)]) for i in range(a.clips)]
    seconds = sum(c.duration for c in clips)
    one, pool = DNSMOSScorer(threads=1), DNSMOSScorer()
    one.score(clips[:1]), pool.score(clips[:1])  # load the ONNX sessions outside the timing
    judge = build_model("offline-baseline", None)
    judge.transcribe(clips[:1])
    rows = [("DNSMOS, 1 thread", best(lambda: one.score(clips), a.repeats)),
            (f"DNSMOS, {pool.threads} threads", best(lambda: pool.score(clips), a.repeats)),
            ("judge (offline-baseline pocketsphinx)", best(lambda: judge.transcribe(clips), a.repeats))]
    print(f"{a.clips} clips, {seconds:.1f} s of speech; best of {a.repeats}")
    for name, spent in rows:
        print(f"{name:40s} {spent:7.3f} s  {1000 * spent / a.clips:7.1f} ms/clip  RTF {spent / seconds:.3f}")
    print(f"DNSMOS ({pool.threads} threads) / judge = {rows[1][1] / rows[2][1]:.2f}x; "
          f"{pool.threads} threads / 1 thread speed-up = {rows[0][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
