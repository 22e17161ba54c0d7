"""Runner overhead: `run_task` with the zero-cost dummy adapter vs a bare loop calling the same adapter.

    python benchmarks/bench_runner.py [--samples 10000] [--batch-size 32]

Both sides read the same tiny wav files (0.1 s each) and call ``DummyModel.score_audio`` on the same batches; the
runner adds what it is for — the output-folder lock, content digests of every input file (input keys and the dataset
hash), length bucketing, per-sample records stamped with the model fingerprint and task key, the resumable cache
(flushed every batch, fsync'd once a second), items, aggregation and the samples file. Reports ms/sample for each and
the difference. Target: runner overhead < 0.1 ms per sample.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from most_eval.core.adapter import SCORE_AUDIO, Request
from most_eval.core.audio import load_audio
from most_eval.models.dummy import DummyModel
from most_eval.run.output_lock import OutputLock
from most_eval.run.runner import run_task
from most_eval.core.task import Sample, Task, TaskContext


class ManyWavs(Task):
    """A synthetic spoken-LM-like task: score each wav; metric = mean score."""

    name = "bench:many-wavs"
    capability = SCORE_AUDIO
    dataset_folder = "wavs"

    def samples(self):
        return [Sample(p.stem, Request(SCORE_AUDIO, audio=p), None, None, 0.1, (p,))
                for p in sorted(self.root.glob("*.wav"))]

    def score(self, samples, outputs):
        return [{"id": s.id, "score": o.total} for s, o in zip(samples, outputs)]

    def aggregate(self, items):
        return {"mean_score": float(np.mean([r["score"] for r in items]))}


def bare_loop(model, task, batch_size):
    samples = task.samples()
    records = []
    for i in range(0, len(samples), batch_size):
        batch = samples[i:i + batch_size]
        audios = [load_audio(s.request.audio, model.sample_rate) for s in batch]
        records.extend(task.score(batch, model.score_audio(audios)))
    return task.aggregate(records)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "wavs").mkdir()
        tone = (0.1 * np.sin(np.arange(1600) / 5)).astype(np.float32)
        for i in range(args.samples):
            sf.write(root / "wavs" / f"{i:06d}.wav", tone, 16000, subtype="PCM_16")
        model = DummyModel()
        bare, runner = [], []
        for rep in range(args.repeats):
            task = ManyWavs(root, context=TaskContext(output_dir=root / "out"))
            t = time.perf_counter()
            expected = bare_loop(model, task, args.batch_size)
            bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            with OutputLock(root / f"out{rep}"):
                outcome = run_task(model, task, root / f"out{rep}", batch_size=args.batch_size)
            runner.append(time.perf_counter() - t)
            assert outcome.metrics == expected and len(outcome.items) == args.samples
        b, r = min(bare), min(runner)
        n = args.samples
        print(f"samples={n} batch_size={args.batch_size} (best of {args.repeats})")
        print(f"bare loop : {1000 * b / n:.3f} ms/sample ({b:.2f} s)")
        print(f"runner    : {1000 * r / n:.3f} ms/sample ({r:.2f} s)")
        print(f"overhead  : {1000 * (r - b) / n:.3f} ms/sample; ratio runner/bare = {r / b:.2f}x")


if __name__ == "__main__":
    main()
