"""Corpus WER with normalisation (our ASR path) vs plain ``jiwer.wer`` on the already-normalised text.

    python benchmarks/bench_wer.py [--pairs 2620]

Ours = Whisper English normalisation of both sides + jiwer alignment + per-utterance S/D/I records + corpus WER with a
1,000-resample bootstrap CI. The peer = ``jiwer.wer`` alone on text normalised beforehand. Reported twice: a cold
normaliser (first pass over new text) and a warm one (the memoised normaliser, as in re-scoring and compare runs).
"""

from __future__ import annotations

import argparse
import random
import time

import jiwer

from most_eval.scoring import wer as W


def corpus(n: int, seed: int = 0):
    rng = random.Random(seed)
    vocab = ("the of and to a in he that it was his i with for as had you not be her on at by which have or from "
             "this him but all she they were my are me one their so an said them we who would been will no when "
             "there if more out up into do any your what has man could other than our some very time upon about "
             "may its only now like little then can should made did us such great before must two these see know "
             "over much down after first mister good men own never most old shall day where those came come").split()
    refs = [" ".join(rng.choice(vocab) for _ in range(rng.randint(5, 35))).upper() for _ in range(n)]
    hyps = [" ".join(w if rng.random() > 0.08 else rng.choice(vocab) for w in r.lower().split()) for r in refs]
    return refs, hyps


def ours(refs, hyps):
    records = W.wer_records([str(i) for i in range(len(refs))], refs, hyps, "whisper")
    return W.aggregate_wer(records, "whisper")["wer"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2620)
    args = parser.parse_args()
    refs, hyps = corpus(args.pairs)
    nrefs, nhyps = [W.whisper_normalize(r) for r in refs], [W.whisper_normalize(h) for h in hyps]

    t = time.perf_counter()
    plain = 100 * jiwer.wer(nrefs, nhyps)
    t_plain = time.perf_counter() - t

    W.whisper_normalize.cache_clear()
    t = time.perf_counter()
    cold = ours(refs, hyps)
    t_cold = time.perf_counter() - t
    t = time.perf_counter()
    warm = ours(refs, hyps)
    t_warm = time.perf_counter() - t
    assert abs(cold - plain) < 1e-3 and cold == warm, (cold, plain)
    print(f"pairs={args.pairs}  WER ours={cold:.4f}  jiwer.wer={plain:.4f}")
    print(f"jiwer.wer (pre-normalised) : {1000 * t_plain:8.1f} ms")
    print(f"ours, cold normaliser      : {1000 * t_cold:8.1f} ms  ratio {t_cold / t_plain:.2f}x")
    print(f"ours, warm normaliser      : {1000 * t_warm:8.1f} ms  ratio {t_warm / t_plain:.2f}x")


if __name__ == "__main__":
    main()
