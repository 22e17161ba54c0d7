"""Training data pipeline throughput vs what the tiny training step consumes (CPU).

    python benchmarks/bench_data_pipeline.py [--steps 200] [--workers 0 1 2] [--threads 2]

Sets up the tiny recipe (configs/train_tiny.yaml: model, manifests, k-means units) in a temporary folder, then
measures, over the same `--steps` stage-1 steps (micro-batches of 8 sequences, the paper's ASR/TTS/text-LM mixture):

1. pipeline: sequences/s the DataLoader delivers (read + resample audio, tokenize, format, collate), per worker count;
2. consumption: sequences/s of the training step alone (HuBERT features, forward, backward, AdamW) on batches
   loaded beforehand;
3. end to end: the training loop fed by the DataLoader, per worker count.

The pipeline keeps up when (1) is well above (2); (3) shows what a 2-core machine really gets, since loader workers
and the training step share the cores. Per-task pipeline rates are printed too (ASR reads audio, TTS reads units).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from most_reference.train import Recipe, SpecSampler
from most_reference.train_config import load_config

TINY = Path(__file__).resolve().parents[1] / "reference_impl" / "configs" / "train_tiny.yaml"


def loader(recipe: Recipe, steps: int, workers: int):
    plan = recipe._plan(0)
    return torch.utils.data.DataLoader(recipe.dataset, batch_size=None, num_workers=workers,
                                       sampler=SpecSampler(plan, 0, 1, steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training step")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(TINY, {"training.threads": args.threads, "logging.every": 0, "logging.tensorboard": False,
                                 "checkpointing.resume": "never"})
        recipe = Recipe(cfg, tmp, None)
        t0 = time.perf_counter()
        recipe.setup()
        print(f"setup (model, manifests, k-means, units of {len(recipe.units)} utterances): "
              f"{time.perf_counter() - t0:.1f} s; examples {recipe.sizes}")
        print(f"torch threads {torch.get_num_threads()}, micro-batch {cfg['training']['micro_batch_size']}, "
              f"{args.steps} steps\n")

        # 1. pipeline alone
        for workers in args.workers:
            per_task = defaultdict(lambda: [0, 0.0])
            n, t0 = 0, time.perf_counter()
            last = t0
            for batch in loader(recipe, args.steps, workers):
                now = time.perf_counter()
                per_task[batch["task"]][0] += batch["n_examples"]
                per_task[batch["task"]][1] += now - last
                last = now
                n += batch["n_examples"]
            rate = n / (time.perf_counter() - t0)
            tasks = ", ".join(f"{t} {c / s:,.0f}/s" for t, (c, s) in sorted(per_task.items()))
            print(f"pipeline  workers={workers}: {rate:8,.0f} sequences/s   ({tasks})")

        # 2. the training step alone, on batches loaded beforehand
        batches = list(loader(recipe, args.steps, 0))
        recipe._step([batches[0]])  # warm-up (allocations, kernel choice)
        n, t0 = 0, time.perf_counter()
        for batch in batches[1:]:
            recipe._step([batch])
            n += batch["n_examples"]
        consume = n / (time.perf_counter() - t0)
        print(f"training step alone:  {consume:8,.0f} sequences/s")

        # 3. end to end
        for workers in args.workers:
            n, t0 = 0, time.perf_counter()
            for batch in loader(recipe, args.steps, workers):
                recipe._step([batch])
                n += batch["n_examples"]
            print(f"end to end workers={workers}: {n / (time.perf_counter() - t0):8,.0f} sequences/s")
        recipe.cleanup()


if __name__ == "__main__":
    main()
