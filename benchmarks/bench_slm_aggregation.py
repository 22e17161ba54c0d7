"""Time our sLM21 aggregation (sWUGGY, sBLIMP) against the official scorer on the same 10,000-pair files.

    python benchmarks/bench_slm_aggregation.py [--pairs 10000] [--repeat 7]

Ours: ``read_gold`` + ``read_submission`` (validating) + ``score_lexical`` / ``score_syntactic``, and the scoring call
alone. Official: ``LexicalTask.run_lexical_eval`` / ``SyntacticTask.run_syntactic_comparison`` of
zerospeech-benchmarks 0.9 (CSV reading included), timed inside its pandas<3 venv (``tests/official/zr_official.py``
builds it). When that venv cannot be built, the baseline is a direct pandas implementation (merge + groupby) instead,
and the output says so. Times are the median of ``--repeat`` runs, in ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from most_eval_tasks.slm import zerospeech as zr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "official"))
import zr_official  # noqa: E402

VOICES = ("Alex", "Bruce", "Fred", "Junior")


def make_files(tmp: Path, kind: str, n_pairs: int, seed: int = 0) -> tuple[Path, Path]:
    rng = random.Random(seed)
    rows, scores = [], {}
    for k in range(n_pairs):
        item, voice = k // len(VOICES) + 1, VOICES[k % len(VOICES)]
        for correct in (1, 0):
            stem = f"{kind[:3]}{k:06d}{correct}{rng.randrange(10**6):06d}"
            scores[stem] = float(rng.randint(-40, 0)) if rng.random() < 0.3 else round(rng.gauss(-20, 5), 6)
            if kind == zr.LEXICAL:
                rows.append(f"{stem},{item},{voice},{rng.choice([0, 2, 7, 30, 500]) if correct else ''},"
                            f"{'w%d' % item if correct else ''},p a t,3,{correct}")
            else:
                rows.append(f"{stem},{item % 500},{voice},t{item % 7},s{item % 3},sentence {item} {correct},{correct}")
    header = ("filename,id,voice,frequency,word,phones,length,correct" if kind == zr.LEXICAL
              else "filename,id,voice,type,subtype,transcription,correct")
    gold = tmp / f"{kind}_gold.csv"
    gold.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    order = list(scores)
    rng.shuffle(order)
    submission = zr.write_submission(tmp / f"{kind}.txt", {s: scores[s] for s in order})
    return gold, submission


def direct_pandas(kind: str, gold: Path, submission: Path) -> float:
    """Baseline without the official code: the same aggregation in a few plain pandas calls (headline only)."""
    g = pd.read_csv(gold)
    s = pd.read_csv(submission, sep=" ", header=None, names=["filename", "score"])
    g = g.merge(s, on="filename")
    ok, ko = g[g.correct == 1].reset_index(drop=True), g[g.correct == 0].reset_index(drop=True)
    if kind == zr.LEXICAL:
        p = ok.merge(ko, on=["voice", "id"], suffixes=("", "_n"))
        keys = ["id"]
    else:
        p = ok.join(ko, rsuffix="_n")
        keys = ["type", "subtype", "id"]
    p["o"] = (p.score > p.score_n) + 0.5 * (p.score == p.score_n)
    return float(p.groupby(keys)["o"].mean().round(4).mean())


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    try:
        env = zr_official.ensure_env()
        baseline = f"official zerospeech-benchmarks 0.9 (pandas {env.pandas_version}, own venv)"
    except zr_official.OfficialUnavailable as error:
        env, baseline = None, f"direct pandas {pd.__version__} implementation (official unavailable: {error})"
    print(f"{args.pairs} pairs per kind, median of {args.repeat}; ours on pandas {pd.__version__}; "
          f"baseline: {baseline}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in zr.KINDS:
            gold, submission = make_files(Path(tmp), kind, args.pairs)
            score = zr.score_lexical if kind == zr.LEXICAL else zr.score_syntactic
            g = zr.read_gold(gold, kind)
            s = zr.read_submission(submission, g.stems)
            ours_total = _median_ms(lambda: zr.score_files(gold, submission, kind), args.repeat)
            ours_score = _median_ms(lambda: score(g, s), args.repeat)
            result = score(g, s)
            headline = result.all if kind == zr.LEXICAL else result.score
            if env is not None:
                official = zr_official.run_official(env, kind, (gold, submission), repeat=args.repeat)
                base_ms = statistics.median(official["times_ms"])
                board = official["leaderboard"]
                base_headline = board["all"]["dev"] if kind == zr.LEXICAL else board["dev"]
            else:
                base_ms = _median_ms(lambda: direct_pandas(kind, gold, submission), args.repeat)
                base_headline = direct_pandas(kind, gold, submission)
            print(f"{kind:9s} ours files->result {ours_total:8.1f} ms | ours scoring only {ours_score:8.1f} ms | "
                  f"baseline {base_ms:8.1f} ms | ratio ours/baseline {ours_total / base_ms:5.2f} (scoring only "
                  f"{ours_score / base_ms:5.2f}) | headline ours {headline!r} baseline {base_headline!r} "
                  f"{'equal' if headline == base_headline else 'DIFFERENT'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
