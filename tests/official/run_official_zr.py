"""Run the official ZeroSpeech sLM21 lexical/syntactic scoring on gold + submission files and print JSON.

Runs *inside* a pandas<3 venv (see ``zr_official.py``, which builds it). It imports the scoring modules straight from
an unpacked ``zerospeech-benchmarks==0.9`` sdist (``--sdist-root``), with only the package plumbing around them
replaced by stubs: the data loader (``pd.read_csv``), the pydantic task/score-dir base classes, the console, the
parameter objects (file names only) and the leaderboard models. Nothing of the official code is copied here: the
official ``LexicalTask.eval`` / ``SyntacticTask.eval`` write their score CSVs, and the official
``SLM21ScoreDir.lexical_scores`` / ``syntactic_scores`` / ``*_extras`` read them back into the leaderboard numbers.

    python run_official_zr.py --sdist-root DIR --kind lexical --dev GOLD SUB [--test GOLD SUB] [--repeat N]

The output JSON holds the score CSVs as records, the leaderboard numbers (dev/test) and, with ``--repeat``, the
wall time in ms of each ``run_lexical_eval`` / ``run_syntactic_comparison`` call (file reading included).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
import tempfile
import time
import types
from pathlib import Path

import pandas as pd

RESULT_FILES = {  # names only; both the writer and the reader below take them from these stub params
    "lexical": {s: {"by_pair": f"score_lexical_{s}_by_pair.csv", "by_frequency": f"score_lexical_{s}_by_frequency.csv",
                    "by_length": f"score_lexical_{s}_by_length.csv"} for s in ("dev", "test")},
    "syntactic": {s: {"by_pair": f"score_syntactic_{s}_by_pair.csv", "by_type": f"score_syntactic_{s}_by_type.csv"}
                  for s in ("dev", "test")},
}


def _module(name: str, path: Path | None = None, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    if path is not None:
        module.__path__ = [str(path)]  # a package whose real submodules load from the sdist
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


class _Console:
    def status(self, *args, **kwargs):
        return contextlib.nullcontext()

    def print(self, *args, **kwargs):
        pass


class _Task:
    """Stands in for the pydantic ``m_benchmark.Task``: keyword fields, a silent console."""

    quiet = True

    def __init__(self, **fields):
        for key, value in fields.items():
            setattr(self, key, value)

    @property
    def console(self):
        return _Console()


class _ScoreDir:
    """Stands in for the pydantic ``m_score_dir.ScoreDir``."""

    def __init__(self, location):
        self.location = Path(location)


class _Record:
    """Stands in for the pydantic leaderboard models: keeps its fields as a dict."""

    def __init__(self, **fields):
        self.fields = fields

    @classmethod
    def parse_obj(cls, obj):
        return cls(**obj)


def _plain(value):
    if isinstance(value, _Record):
        return {k: _plain(v) for k, v in value.fields.items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def load_official(sdist_root: Path):
    """Import the official LexicalTask, SyntacticTask and SLM21ScoreDir from the sdist with stubbed plumbing."""
    pkg = sdist_root / "zerospeech"
    if not (pkg / "benchmarks" / "tasks" / "lm" / "lexical.py").is_file():
        raise SystemExit(f"{sdist_root}: not an unpacked zerospeech-benchmarks sdist")

    def load_dataframe(file_item, **extras):
        return pd.read_csv(getattr(file_item, "file", file_item), **extras)

    params = types.SimpleNamespace(
        lexical=types.SimpleNamespace(result_filenames=RESULT_FILES["lexical"]),
        syntactic=types.SimpleNamespace(result_filenames=RESULT_FILES["syntactic"]))
    _module("pydantic", Extra=types.SimpleNamespace(ignore="ignore", allow="allow", forbid="forbid"))
    _module("zerospeech", pkg)
    _module("zerospeech.data_loaders", load_dataframe=load_dataframe)
    model = _module("zerospeech.model")
    model.m_benchmark = _module("zerospeech.model.m_benchmark", Task=_Task)
    model.m_data_items = _module("zerospeech.model.m_data_items", FileItem=object)
    # annotations only (EntryDetails, LeaderboardEntry, ...): any name resolves to the stand-in record
    model.m_leaderboard = _module("zerospeech.model.m_leaderboard", __getattr__=lambda name: _Record)
    model.m_score_dir = _module("zerospeech.model.m_score_dir", ScoreDir=_ScoreDir)
    _module("zerospeech.benchmarks", pkg / "benchmarks")
    _module("zerospeech.benchmarks.datasets", SLM21Dataset=object)
    _module("zerospeech.benchmarks.tasks", pkg / "benchmarks" / "tasks")
    _module("zerospeech.benchmarks.tasks.lm", pkg / "benchmarks" / "tasks" / "lm",
            SLM21BenchmarkParameters=lambda: params)
    _module("zerospeech.benchmarks.tasks.lm.params",
            LexicalParams=lambda: types.SimpleNamespace(by_pair=True, by_length=True, by_frequency=True,
                                                        result_filenames=RESULT_FILES["lexical"]),
            SyntacticParams=lambda: types.SimpleNamespace(result_filenames=RESULT_FILES["syntactic"]))
    _module("zerospeech.benchmarks._benchmarks", pkg / "benchmarks" / "_benchmarks")
    _module("zerospeech.benchmarks._benchmarks.sLM_21", pkg / "benchmarks" / "_benchmarks" / "sLM_21")
    leaderboard_names = ("SLM21LeaderboardEntry", "LexicalScores", "ScoreTuple", "LexicalExtras", "SLM21Scores",
                         "SemanticScores", "SemanticScoreSets", "SLM21Extras", "SyntacticExtras", "SemanticExtras")
    _module("zerospeech.benchmarks._benchmarks.sLM_21.leaderboard", **{n: _Record for n in leaderboard_names})

    lexical = importlib.import_module("zerospeech.benchmarks.tasks.lm.lexical")
    syntactic = importlib.import_module("zerospeech.benchmarks.tasks.lm.syntactic")
    scores = importlib.import_module("zerospeech.benchmarks._benchmarks.sLM_21.scores")
    return lexical.LexicalTask, syntactic.SyntacticTask, scores.SLM21ScoreDir


def _records(path: Path) -> list[dict]:
    frame = pd.read_csv(path)
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist-root", type=Path, required=True)
    parser.add_argument("--kind", choices=("lexical", "syntactic"), required=True)
    parser.add_argument("--dev", nargs=2, metavar=("GOLD", "SUBMISSION"), type=Path, required=True)
    parser.add_argument("--test", nargs=2, metavar=("GOLD", "SUBMISSION"), type=Path,
                        help="defaults to the dev files (the leaderboard code reads both sets)")
    parser.add_argument("--repeat", type=int, default=0, help="also time N scoring calls on the dev files")
    args = parser.parse_args(argv)
    test = args.test or args.dev

    LexicalTask, SyntacticTask, ScoreDir = load_official(args.sdist_root)
    out = {"pandas": pd.__version__, "kind": args.kind}
    with tempfile.TemporaryDirectory() as tmp:
        score_dir = Path(tmp)
        subsets = {f"{args.kind}_dev": types.SimpleNamespace(items=types.SimpleNamespace(gold=args.dev[0])),
                   f"{args.kind}_test": types.SimpleNamespace(items=types.SimpleNamespace(gold=test[0]))}
        dataset = types.SimpleNamespace(index=types.SimpleNamespace(subsets=types.SimpleNamespace(**subsets)))
        submission = types.SimpleNamespace(score_dir=score_dir, sets=("dev", "test"), items=types.SimpleNamespace(
            **{f"{args.kind}_dev": args.dev[1], f"{args.kind}_test": test[1]}))
        task = LexicalTask() if args.kind == "lexical" else SyntacticTask()
        task.eval(submission, dataset)  # the official scoring + CSV writing
        for name in sorted(p.name for p in score_dir.glob("*.csv")):
            out[name] = _records(score_dir / name)
        board = ScoreDir(location=score_dir)
        if args.kind == "lexical":
            out["leaderboard"] = _plain(board.lexical_scores())
            out["extras"] = _plain(board.lexical_extras())
        else:
            out["leaderboard"] = _plain(board.syntactic_scores())
            out["extras"] = _plain(board.syntactic_extras())
        if args.repeat:
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                if args.kind == "lexical":
                    task.run_lexical_eval(args.dev[1], args.dev[0])
                else:
                    task.run_syntactic_comparison(args.dev[0], args.dev[1])
                times.append((time.perf_counter() - start) * 1000)
            out["times_ms"] = times
    json.dump(out, sys.stdout, allow_nan=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")  # pandas 2 deprecation warnings about groupby.apply
    sys.exit(main())
