"""`most-eval check` / `compare` refuse (exit 2, one line on stderr) runs that are not comparable, on real results.json
files written by `most-eval run` (precomputed transcripts of the bundled mini suite, scored under different set-ups).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import MINI_SUITE, REPO, run_cli

ASR = "asr:librispeech-test-clean"
TRANSCRIPTS = "asr_librispeech-test-clean.jsonl"


def transcripts(drop_every: int) -> list[dict]:
    """Mini-suite test-clean references as a model's transcripts, the last word dropped from every n-th one."""
    rows = []
    for trans in sorted((MINI_SUITE / "LibriSpeech" / "test-clean").rglob("*.trans.txt")):
        for i, line in enumerate(trans.read_text().splitlines()):
            uid, text = line.split(" ", 1)
            words = text.lower().split()
            rows.append({"id": uid, "text": " ".join(words[:-1] if i % drop_every == 0 else words) + "."})
    return rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Results folders of real runs: the same outputs under several set-ups, and a worse model ("worse")."""
    tmp = tmp_path_factory.mktemp("check_refusals")
    pre = {}
    for name, drop_every in (("model", 3), ("worse", 1)):
        pre[name] = tmp / f"pre_{name}"
        pre[name].mkdir()
        (pre[name] / TRANSCRIPTS).write_text("".join(json.dumps(r) + "\n" for r in transcripts(drop_every)))
    setups = {
        "base": ("model", []),
        "again": ("model", []),
        "seed": ("model", ["--task-args", "protocol=seed-tts-eval"]),
        "boot": ("model", ["--task-args", "bootstrap=200"]),
        "limit": ("model", ["--limit", "5"]),
        "worse": ("worse", []),
    }
    out = {}
    for name, (model, extra) in setups.items():
        out[name] = tmp / name
        proc = run_cli("run", "--model", "precomputed", "--model-args", f"dir={pre[model]}", "--tasks", ASR,
                       "--output", str(out[name]), "--no-progress", *extra)
        assert proc.returncode == 0, proc.stderr
    return out


def refusal(*args: str | Path) -> str:
    """Run a CLI command that must refuse; its single stderr line."""
    proc = run_cli(*map(str, args))
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def both_refuse(a: Path, b: Path) -> tuple[str, str]:
    """The refusal lines of `check --baseline a --candidate b` and `compare a b`."""
    return refusal("check", "--baseline", a, "--candidate", b), refusal("compare", a, b)


def copy_run(src: Path, dst: Path, edit=None) -> Path:
    """A copy of a results folder, ``edit(results_dict)`` applied to its results.json."""
    shutil.copytree(src, dst)
    if edit is not None:
        doc = json.loads((dst / "results.json").read_text())
        edit(doc)
        (dst / "results.json").write_text(json.dumps(doc))  # NaN written as NaN, as json.dumps does
    return dst


# ------------------------------------------------------------------------------------------------- legitimate pairs

def test_same_setup_is_compared(runs):
    proc = run_cli("check", "--baseline", str(runs["base"]), "--candidate", str(runs["again"]))
    assert proc.returncode == 0, proc.stderr
    assert "PASS" in proc.stdout and proc.stderr == ""
    proc = run_cli("compare", str(runs["base"]), str(runs["again"]), "--json")
    assert proc.returncode == 0, proc.stderr
    (delta,) = json.loads(proc.stdout)["deltas"]
    assert delta["task"] == ASR and delta["delta"] == 0 and delta["n"] == 12


def test_worse_model_same_setup_is_judged_not_refused(runs):
    proc = run_cli("check", "--baseline", str(runs["base"]), "--candidate", str(runs["worse"]))
    assert proc.returncode == 1, proc.stderr  # a significant regression: judged, not refused
    assert "FAIL" in proc.stdout and "significant regression" in proc.stdout


def test_results_without_limit_key_count_as_no_limit(runs, tmp_path):
    old = copy_run(runs["again"], tmp_path / "old", lambda doc: doc.pop("limit"))
    proc = run_cli("check", "--baseline", str(runs["base"]), "--candidate", str(old))
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------------------------- refusals

def test_different_protocol_is_refused(runs):
    for line in both_refuse(runs["base"], runs["seed"]):
        assert f"{ASR}: protocol differs: whisper vs seed-tts-eval" in line, line
        assert "regression" not in line


def test_different_scoring_only_option_is_refused(runs):
    for line in both_refuse(runs["boot"], runs["base"]):
        assert f"{ASR}: bootstrap differs: 200 vs 1000" in line, line


def test_different_limit_is_named_before_the_sample_ids(runs):
    for line in both_refuse(runs["base"], runs["limit"]):
        assert line.endswith(": limit differs: none vs 5") or ": limit differs: none vs 5; asr:" in line, line
        assert "sample ids" not in line
    check_line, compare_line = both_refuse(runs["limit"], runs["base"])
    assert ": limit differs: 5 vs none" in check_line and compare_line.endswith(": limit differs: 5 vs none")


@pytest.mark.parametrize("value, says", [(float("nan"), "wer is NaN"), (float("inf"), "wer is infinite"),
                                         ("6.9", 'wer is not a number ("6.9")'), (None, "wer is null"),
                                         ("delete", "wer is missing")])
def test_unusable_metric_is_refused(runs, tmp_path, value, says):
    def edit(doc):
        if value == "delete":
            del doc["results"][ASR]["wer"]
        else:
            doc["results"][ASR]["wer"] = value

    bad = copy_run(runs["again"], tmp_path / "bad", edit)
    check_line, compare_line = both_refuse(runs["base"], bad)
    assert f"{ASR}: {says} in the candidate" in check_line, check_line
    assert f"{ASR}: {says} in run B" in compare_line, compare_line
    check_line = refusal("check", "--baseline", bad, "--candidate", runs["base"])
    assert f"{ASR}: {says} in the baseline" in check_line, check_line


def test_nan_in_a_sample_record_is_refused(runs, tmp_path):
    bad = copy_run(runs["again"], tmp_path / "bad")
    samples = bad / "samples" / "asr_librispeech-test-clean.jsonl"
    records = [json.loads(line) for line in samples.read_text().splitlines()]
    records[3]["errors"] = float("nan")
    samples.write_text("".join(json.dumps(r) + "\n" for r in records))
    for line in both_refuse(runs["base"], bad):
        assert f"{ASR}: wer field 'errors' is nan in sample {records[3]['id']!r}" in line, line


def test_refusal_is_recorded_in_the_reports(runs, tmp_path):
    md, junit = tmp_path / "check.md", tmp_path / "check.xml"
    line = refusal("check", "--baseline", runs["base"], "--candidate", runs["seed"], "--markdown", md,
                   "--junit", junit)
    assert "protocol differs" in line
    assert "REFUSED" in md.read_text() and "protocol differs" in md.read_text()
    assert 'type="refused"' in junit.read_text()


# ------------------------------------------------------------------------------------------------------ bad paths

def test_report_paths_that_cannot_be_written_are_refused(runs, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    check = ("check", "--baseline", runs["base"], "--candidate", runs["again"])
    line = refusal(*check, "--junit", folder)
    assert line == f"error: --junit {folder}: is a directory, expected a file path"
    line = refusal(*check, "--markdown", folder)
    assert line == f"error: --markdown {folder}: is a directory, expected a file path"
    line = refusal(*check, "--markdown", a_file / "check.md")
    assert line == f"error: --markdown {a_file / 'check.md'}: {a_file} is not a directory"
    assert [p.name for p in folder.iterdir()] == ["keep.txt"] and a_file.read_text() == "x"
    # the same paths are refused before a refusal (different protocols) is written into them
    line = refusal("check", "--baseline", runs["base"], "--candidate", runs["seed"], "--junit", folder)
    assert "is a directory" in line and [p.name for p in folder.iterdir()] == ["keep.txt"]


# ------------------------------------------------------------------------------------------- impossible numbers

@pytest.mark.parametrize("field, value, says", [("wer", -5.0, "wer is -5, below 0"),
                                                ("scored", -3, "scored is -3, a negative count"),
                                                ("ref_words", 2.5, "ref_words is 2.5, not a whole count")])
def test_an_impossible_number_in_results_json_is_refused_naming_the_file(runs, tmp_path, field, value, says):
    """A WER below 0 or a negative count is no number to compare: every reader of results.json refuses it, with the
    file named (the one results reader: compare, check, the leaderboard)."""
    bad = copy_run(runs["again"], tmp_path / "bad", lambda doc: doc["results"][ASR].__setitem__(field, value))
    for line in both_refuse(runs["base"], bad):
        assert f"{bad / 'results.json'}: results['{ASR}'].{says}" in line, line
    board = tmp_path / "board"
    shutil.copytree(REPO / "leaderboards" / "data" / "paper", board / "paper")
    (board / "runs" / "bad").mkdir(parents=True)
    shutil.copy(bad / "results.json", board / "runs" / "bad" / "results.json")
    line = refusal("leaderboard", "build", "--data", board, "--output", tmp_path / "out")
    assert f"results['{ASR}'].{says}" in line and "runs/bad/results.json" in line, line
    assert not (tmp_path / "out" / "index.html").exists()  # nothing written


@pytest.mark.parametrize("field, value, says", [("errors", -1000, "errors is -1000, a negative count"),
                                                ("ref_words", -4, "ref_words is -4, a negative count")])
def test_an_impossible_count_in_a_samples_file_is_refused_naming_the_file(runs, tmp_path, field, value, says):
    """Negative edit counts in a sample record would give a candidate a WER below the baseline's (even below 0) and
    a pass: check and compare refuse the samples file instead, naming its line."""
    bad = copy_run(runs["again"], tmp_path / "bad")
    samples = bad / "samples" / TRANSCRIPTS
    records = [json.loads(line) for line in samples.read_text().splitlines()]
    records[2][field] = value
    samples.write_text("".join(json.dumps(r) + "\n" for r in records))
    for line in both_refuse(runs["base"], bad):
        assert f"{samples}: line 3: sample {records[2]['id']!r}: {says}" in line, line


@pytest.mark.parametrize("field, delta, says", [
    ("substitutions", 1, "substitutions sum to {new} in the samples, {old} in results.json"),
    ("ref_words", -3, "ref_words sum to {new} in the samples, {old} in results.json"),
])
def test_samples_that_disagree_with_results_json_are_refused(runs, tmp_path, field, delta, says):
    """Plausible numbers that do not add up to what results.json says: which one would the gate believe? Neither."""
    bad = copy_run(runs["again"], tmp_path / "bad")
    samples = bad / "samples" / TRANSCRIPTS
    records = [json.loads(line) for line in samples.read_text().splitlines()]
    old = json.loads((bad / "results.json").read_text())["results"][ASR][field]
    records[1][field] += delta
    samples.write_text("".join(json.dumps(r) + "\n" for r in records))
    for line in both_refuse(runs["base"], bad):
        assert f"{samples}: disagrees with results.json: {says.format(new=old + delta, old=old)}" in line, line


def test_an_error_count_that_disagrees_is_refused(runs, tmp_path):
    bad = copy_run(runs["again"], tmp_path / "bad", lambda doc: doc["results"][ASR].update(errors=2))
    for line in both_refuse(runs["base"], bad):
        assert "disagrees with results.json: 0 error record(s) in the samples, 2 in results.json" in line, line


def test_a_task_name_with_a_newline_is_refused(runs, tmp_path):
    def edit(doc):
        doc["results"]["asr:x\n| injected |"] = doc["results"][ASR]

    bad = copy_run(runs["again"], tmp_path / "bad", edit)
    for line in both_refuse(runs["base"], bad):
        assert "task name 'asr:x\\n| injected |' contains a control character" in line, line
