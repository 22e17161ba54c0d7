"""Re-scoring a resumed run: a LibriSpeech test-clean sized ASR run (2,620 utterances) whose every output is in the
cache, against scoring the same transcripts once with the bare scorer.

    python benchmarks/bench_rescore.py [--utterances 2620] [--repeats 3]

The cache keeps model outputs only, so every run — resumed or not — scores again with the current task code. This
measures what that costs. It writes a LibriSpeech-layout folder (``<speaker>/<chapter>/*.flac`` + ``.trans.txt``,
0.1 s of silence per utterance, sentences of 10-30 words from a fixed vocabulary) and a ``precomputed`` outputs file
whose transcripts differ from the references by a few words, runs ``asr:librispeech-test-clean`` once to fill the
cache, then times ``run_task`` on the full cache (every output reused: listing the corpus, input digests, reading
and checking the cache, Whisper normalisation, per-utterance S/D/I, corpus WER with its 1,000-resample bootstrap
interval). The peer is the bare scoring of the same pairs: ``wer_records`` + ``aggregate_wer`` called directly.
Reports seconds for each (best of ``--repeats``) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from most_eval.core.task import TaskContext
from most_eval.models.precomputed import PrecomputedArgs, PrecomputedModel
from most_eval.run.runner import run_task
from most_eval.scoring.wer import aggregate_wer, wer_records
from most_eval_tasks.asr.task import LibriSpeechTestClean

WORDS = ("the of and to a in that he was it his i with as had for you her him not be at on by which she this "
         "they all have but one so from were said we there are no or when my what would their some out if an then "
         "into them up more now could been like over your such than only about who very time little down man").split()


def write_corpus(root: Path, n: int, rng: random.Random) -> dict[str, tuple[str, str]]:
    """LibriSpeech-layout utterances under ``root``; returns id -> (reference, hypothesis)."""
    pairs = {}
    silence = np.zeros(1600, dtype=np.float32)
    per_chapter = 100
    for start in range(0, n, per_chapter):
        speaker, chapter = 1000 + start // per_chapter, 1
        folder = root / "LibriSpeech" / "test-clean" / str(speaker) / str(chapter)
        folder.mkdir(parents=True)
        lines = []
        for k in range(min(per_chapter, n - start)):
            uid = f"{speaker}-{chapter}-{k:04d}"
            ref = [rng.choice(WORDS) for _ in range(rng.randint(10, 30))]
            hyp = [w if rng.random() > 0.08 else rng.choice(WORDS) for w in ref if rng.random() > 0.02]
            sf.write(folder / f"{uid}.flac", silence, 16000)
            lines.append(f"{uid} {' '.join(ref).upper()}")
            pairs[uid] = (" ".join(ref), " ".join(hyp))
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=2620)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pairs = write_corpus(tmp / "data", args.utterances, rng)
        outputs = tmp / "outputs"
        outputs.mkdir()
        (outputs / "asr_librispeech-test-clean.jsonl").write_text(
            "".join(json.dumps({"id": uid, "text": hyp}) + "\n" for uid, (_, hyp) in pairs.items()))
        model = PrecomputedModel(PrecomputedArgs(dir=outputs))
        out = tmp / "run"

        def resumed_run() -> dict:
            task = LibriSpeechTestClean(tmp / "data", context=TaskContext(output_dir=out))
            outcome = run_task(model, task, out)
            return {**outcome.metrics, "reused": outcome.reused}

        first = resumed_run()  # fills the cache
        assert first["reused"] == 0
        timings = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            again = resumed_run()
            timings.append(time.perf_counter() - started)
            assert again["reused"] == args.utterances and again["wer"] == first["wer"]
        ids = sorted(pairs)
        bare = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            records = wer_records(ids, [pairs[i][0] for i in ids], [pairs[i][1] for i in ids], "whisper")
            peer = aggregate_wer(records, "whisper", resamples=1000, seed=0)
            bare.append(time.perf_counter() - started)
        assert peer["wer"] == first["wer"]
    result = {"utterances": args.utterances, "wer": first["wer"], "resumed_run_s": round(min(timings), 3),
              "bare_scoring_s": round(min(bare), 3), "ratio": round(min(timings) / min(bare), 2)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
