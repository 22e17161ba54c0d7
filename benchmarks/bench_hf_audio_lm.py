"""``hf-audio-lm`` batched generation: batch 8 vs batch 1 throughput on CPU, tiny random Qwen2-Audio.

    python benchmarks/bench_hf_audio_lm.py [--clips 16] [--max-new-tokens 16] [--threads 1]

The model is the tests' tiny Qwen2-Audio (1-layer encoder, 1-layer Qwen2, hidden 16), built into a temp folder and
loaded through the adapter. The same clips (2-6 s of noise, different lengths, so batches are left-padded) are
transcribed in batches of 8 and one at a time; reports clips/s for each and the speed-up, and checks that both give
the same transcripts. With weights this small the figures measure per-call overhead (processor, 30 s Whisper
features, generate's loop), not a real model's compute.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_hf_audio_lm import tiny_qwen2_audio  # noqa: E402

from most_eval.core.audio import Audio  # noqa: E402
from most_eval.models.hf_audio_lm import HFAudioLM, HFAudioLMArgs  # noqa: E402


class TimedProcessor:
    """The adapter's processor, with the seconds spent in its ``__call__`` (features + tokens) added up."""

    def __init__(self, processor):
        self.processor, self.seconds = processor, 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.processor(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start

    def __getattr__(self, name):
        return getattr(self.processor, name)


def timed(model: HFAudioLM, audios: list[Audio], batch_size: int) -> tuple[float, float, list[str]]:
    """(total seconds, seconds in the processor, transcripts) for ``audios`` in batches of ``batch_size``."""
    inner = model.processor.processor if isinstance(model.processor, TimedProcessor) else model.processor
    model.__dict__["processor"] = timer = TimedProcessor(inner)  # replaces the cached_property's value
    start = time.perf_counter()
    texts = []
    for i in range(0, len(audios), batch_size):
        texts += model.transcribe(audios[i:i + batch_size])
    return time.perf_counter() - start, timer.seconds, texts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    audios = [Audio((0.1 * rng.standard_normal(int(16000 * rng.uniform(2, 6)))).astype(np.float32), 16000)
              for _ in range(args.clips)]
    with tempfile.TemporaryDirectory() as tmp:
        model = HFAudioLM(HFAudioLMArgs(path=str(tiny_qwen2_audio(Path(tmp))), max_new_tokens=args.max_new_tokens))
        timed(model, audios[:2], 2)  # warm-up
        t8, p8, texts8 = timed(model, audios, 8)
        t1, p1, texts1 = timed(model, audios, 1)
    print(f"clips={args.clips} max_new_tokens={args.max_new_tokens} threads={args.threads}")
    for size, total, proc in ((8, t8, p8), (1, t1, p1)):
        print(f"batch {size}: {total:.2f} s  {args.clips / total:.1f} clips/s  "
              f"(processor {proc:.2f} s, generate + decode {total - proc:.2f} s)")
    print(f"speed-up: {t1 / t8:.2f}x overall, {(t1 - p1) / (t8 - p8):.2f}x in generate   "
          f"same transcripts: {texts8 == texts1}")


if __name__ == "__main__":
    main()
