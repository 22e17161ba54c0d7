"""2 ranks vs 1 on a CPU-bound adapter (pocketsphinx ASR), same machine, same run.

    python benchmarks/bench_distributed.py [--utterances 64]

Synthesises a LibriSpeech-layout test set with espeak-ng, then times `most-eval run --model offline-baseline` as one
process and as `torchrun --standalone --nproc-per-node 2` (gloo), each into a fresh output folder, and checks that the
two results are identical. Reports wall seconds (start-up included) and the speed-up. Target: >= 1.8x on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
import soxr

WORDS = "the quick brown fox jumps over a lazy dog while seven old men read quiet books by the warm fire".split()


def synthesise(root: Path, n: int) -> None:
    folder = root / "LibriSpeech" / "test-clean" / "1089" / "100"
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        text = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(8)).upper()
        wav = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True).stdout
        data, rate = sf.read(io.BytesIO(wav), dtype="float32")
        sf.write(folder / f"1089-100-{i:04d}.flac", soxr.resample(data, rate, 16000), 16000)
        lines.append(f"1089-100-{i:04d} {text}")
    (folder / "1089-100.trans.txt").write_text("\n".join(lines) + "\n")


def timed(cmd: list[str]) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthesise(root, args.utterances)
        run = ["run", "--model", "offline-baseline", "--tasks", "asr:librispeech-test-clean", "--data-root",
               str(root), "--batch-size", "1", "--no-progress"]
        one = timed([sys.executable, "-m", "most_eval", *run, "--output", str(root / "one")])
        two = timed([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                     "-m", "most_eval", *run, "--output", str(root / "two")])
        r1 = json.loads((root / "one" / "results.json").read_text())["results"]["asr:librispeech-test-clean"]
        r2 = json.loads((root / "two" / "results.json").read_text())["results"]["asr:librispeech-test-clean"]
        assert r1["wer"] == r2["wer"] and r1["scored"] == r2["scored"] == args.utterances
        print(f"utterances={args.utterances}  WER equal: {r1['wer']}")
        print(f"1 process : {one:6.1f} s")
        print(f"2 ranks   : {two:6.1f} s  speed-up {one / two:.2f}x")


if __name__ == "__main__":
    main()
