"""A new user's runs on the leaderboard and in comparisons: `leaderboard build --runs runs/*` takes run folders as
they are, and rows and headers name the run (its folder, or --name), not only the model."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

ASR = "asr:librispeech-test-clean"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("user")
    for folder, extra in (("first", ()), ("second", ("--name", "my second"))):
        proc = run_cli("run", "--model", "dummy", "--tasks", ASR, "--output", str(root / "runs" / folder),
                       "--no-progress", *extra)
        assert proc.returncode == 0, proc.stderr
    return root


def test_results_json_records_the_run_name(runs):
    names = [json.loads((runs / "runs" / f / "results.json").read_text())["run_name"] for f in ("first", "second")]
    assert names == ["first", "my second"]


@pytest.mark.parametrize("how", ["expanded", "quoted"])
def test_leaderboard_build_takes_run_folders(runs, tmp_path, how):
    folders = [str(runs / "runs" / "first"), str(runs / "runs" / "second")]
    given = folders if how == "expanded" else [str(runs / "runs" / "*")]  # what `--runs runs/*` gives, unquoted
    proc = run_cli("leaderboard", "build", "--output", str(tmp_path / "board"), "--runs", *given)
    assert proc.returncode == 0, proc.stderr
    table = (tmp_path / "board" / "asr_tts.md").read_text()
    assert "| first (dummy) (run, not comparable) | asr |" in table
    assert "| my second (dummy) (run, not comparable) | asr |" in table
    assert f"run: {folders[0]}" in table


def test_a_runs_glob_that_matches_nothing_is_refused(tmp_path):
    proc = run_cli("leaderboard", "build", "--output", str(tmp_path / "board"), "--runs", str(tmp_path / "no*"))
    assert proc.returncode == 2 and "matches no run folder" in proc.stderr
    assert not (tmp_path / "board").exists() or not any((tmp_path / "board").iterdir())


def test_compare_and_check_headers_name_the_runs(runs):
    a, b = runs / "runs" / "first", runs / "runs" / "second"
    proc = run_cli("compare", str(a), str(b), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.dumps(json.loads(proc.stdout)).count("first (dummy)") and "my second (dummy)" in proc.stdout
    check = run_cli("check", "--baseline", str(a), "--candidate", str(b))
    assert check.returncode == 0, check.stderr
    assert "baseline first (dummy) vs candidate my second (dummy)" in " ".join(check.stdout.split())


def test_counts_name_their_unit_in_the_results_table_and_in_compare(tmp_path):
    """A spoken-LM task lists wav files and scores pairs: both counts say which they count."""
    task = "slm:sblimp-dev"
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        proc = run_cli("run", "--model", "dummy", "--tasks", task, "--output", str(out), "--no-progress")
        assert proc.returncode == 0, proc.stderr
    res = json.loads((outs[0] / "results.json").read_text())["results"][task]
    assert f"{res['scored']} / {res['listed']} files, {res['pairs']} pairs" in proc.stdout
    comp = run_cli("compare", str(outs[0]), str(outs[1]))
    assert comp.returncode == 0, comp.stderr
    assert f"{res['pairs']} pairs" in comp.stdout
