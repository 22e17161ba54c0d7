"""The README's main command gives the same numbers as the committed results file: every metric, count,
comparability verdict, dataset digest and leaderboard slot of ``most-eval run --model most --tasks asr,tts,slm,sqa``
on the bundled mini suite and tiny checkpoint. A refactoring that changes a number fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import run_cli

GOLDEN = Path(__file__).parent / "data" / "golden" / "mini_suite_most.json"
#: timings and cache reuse depend on the machine and the output folder's history, not on the scoring
VOLATILE = {"seconds", "judge_rtf", "reused"}


def _label(key: str, value):
    """A result field as compared: the normaliser's label without its package version (the installed one), so an
    upgrade shows here only where it changes a number."""
    return re.sub(r"^(\S+) [^:]+:", r"\1 <version>:", value) if key == "normalizer" and isinstance(value, str) else value


def _numbers(document: dict) -> dict:
    """The parts of a results document that scoring decides, in the golden file's shape."""
    return {
        "results": {t: {k: _label(k, v) for k, v in r.items() if k not in VOLATILE}
                    for t, r in document["results"].items()},
        "comparability": document["comparability"],
        "tasks": {t: {"dataset_sha256": v["dataset_sha256"], "leaderboard": v["leaderboard"],
                      "options": v["config"].get("options")} for t, v in document["tasks"].items()},
    }


@pytest.mark.slow
def test_main_command_matches_the_committed_results(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", "--model", "most", "--tasks", "asr,tts,slm,sqa", "--no-progress", "--output", str(out),
                   env={"MOST_EVAL_JUDGE_PATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = _numbers(json.loads((out / "results.json").read_text()))
    want = json.loads(GOLDEN.read_text())
    want.pop("about")
    assert sorted(got["results"]) == sorted(want["results"])
    for task in want["results"]:
        assert got["results"][task] == want["results"][task], task
        assert got["comparability"][task] == want["comparability"][task], task
        assert got["tasks"][task] == want["tasks"][task], task
    assert got == want
