"""Malformed-input corpus: broken audio, transcripts, manifests, score files, results files, checkpoints and configs.

Every entry of :data:`CORPUS` is one malformed input. Each must be *answered* by one line that names the file (or the
option) and the reason: an error record in ``OUTPUT/samples/<task>.jsonl`` (the run exits 0, ``--fail-on-error`` 1),
a one-line ``dataset error`` for its task (the other tasks still run), or exit 2 with one line on stderr. Earlier
results stay intact: good samples keep exactly the records a clean run gives them, and a refused command leaves the
output folder of an earlier run byte for byte as it was.

The inputs are generated from the bundled mini suite and batched: one data root and one CLI run answer many
entries, then one parametrized test per entry checks its answer, so pytest's own summary counts them, and a line
``malformed corpus: N inputs, M answered`` is printed in the terminal summary.

The ``hostile-*`` entries are inputs that try to make the tool read outside the dataset folder (ids and paths with
``..`` or ``/``, absolute paths, symlinks out, each pointing at a real file there that must never be scored) or block
it (a FIFO where a manifest or an audio file should be); ``tests/test_hostile_inputs.py`` has the rest.

This file runs the batches (the ``outcomes`` fixture) and checks the answers. The corpus itself
(:data:`malformed_corpus.CORPUS`) and the summary count are in ``malformed_corpus.py``, the file builders in
``malformed_inputs.py``, the CLI helpers and the torch group in ``malformed_cli.py``: plain modules, no tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MINI_SUITE, REPO
from malformed_cli import _cli_args, _collect, _finish, _invoke, _limit_memory, _snapshot, _start
from malformed_corpus import (BY_ID, CLEAN_TASKS, CORPUS, CV, KINDS, LIBRI, LLAMA, SBLIMP, SBLIMP_TEST, SEED, SSC,
                              SUMMARY, SWUGGY, SWUGGY_TEST, TRIVIA, TSC, VOX, WEBQ, Entry)
from malformed_inputs import (_break_records_root, _clean_root, _dataset_error_root, _hostile_sets_root,
                              _precomputed_inputs, _zerospeech_inputs)

TESTS_DIR = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------------------------
# Summary line in pytest's terminal summary (visible without -s)


@pytest.fixture(scope="module", autouse=True)
def _corpus_summary(request):
    manager = request.config.pluginmanager
    if not manager.is_registered(SUMMARY):
        manager.register(SUMMARY, "malformed-corpus-summary")
    yield


# ---------------------------------------------------------------------------------------------------------------
# Running the CLI


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every batch of the corpus, run once: CLI runs in parallel processes, refusals in-process."""
    tmp = tmp_path_factory.mktemp("malformed")
    outside = tmp / "outside"
    outside.mkdir()
    clean = _clean_root(tmp / "clean")
    broken = _clean_root(tmp / "broken")
    _break_records_root(broken, outside)
    bad_sets = _dataset_error_root(tmp / "bad_sets")
    hostile_sets = _hostile_sets_root(tmp / "hostile_sets", outside)
    zs_root, zs_pre, pc_pre = tmp / "zs_root", tmp / "zs_pre", tmp / "pc_pre"
    _zerospeech_inputs(zs_root, zs_pre)
    _precomputed_inputs(pc_pre)

    out = {k: tmp / f"out_{k}" for k in ("clean", "records", "records_fail", "dataset", "hostile-sets", "parquet",
                                         "gold-utf8", "zerospeech", "precomputed")}
    judge = ["--judge", "dummy"]
    launches = {
        "clean": _cli_args(clean, out["clean"], CLEAN_TASKS),
        "records": _cli_args(broken, out["records"], CLEAN_TASKS + [SEED], *judge),
        "records_fail": _cli_args(broken, out["records_fail"], [LIBRI], "--fail-on-error"),
        "dataset": _cli_args(bad_sets, out["dataset"], [LIBRI, CV, VOX, LLAMA, SBLIMP, SEED, TRIVIA, SWUGGY_TEST,
                                                        SBLIMP_TEST], *judge),
        "hostile-sets": _cli_args(hostile_sets, out["hostile-sets"], [LIBRI, CV, VOX, LLAMA, WEBQ]),
        "parquet": _cli_args(bad_sets, out["parquet"], [LIBRI, WEBQ]),
        "gold-utf8": _cli_args(bad_sets, out["gold-utf8"], [LIBRI, SWUGGY]),
        "zerospeech": _cli_args(zs_root, out["zerospeech"], [SWUGGY, SBLIMP, SWUGGY_TEST, SBLIMP_TEST],
                                "--model-args", f"dir={zs_pre}", model="precomputed"),
        "precomputed": _cli_args(MINI_SUITE, out["precomputed"], [SWUGGY, LIBRI, WEBQ, TRIVIA, LLAMA, SSC, TSC],
                                 "--model-args", f"dir={pc_pre}", "--task-args", "reduction=sum",
                                 model="precomputed"),
    }
    procs = {k: _start(args, tmp / f"log_{k}") for k, args in launches.items()}
    runs = {k: _collect(_finish(p), out[k]) for k, p in procs.items()}

    # the torch group (checkpoints, training config) in one memory-capped process, beside the in-process refusals
    earlier_ck = tmp / "earlier_ck"
    shutil.copytree(out["clean"], earlier_ck)
    torch_work = tmp / "torch"
    torch_work.mkdir()
    torch_log = tmp / "log_torch.err"
    with open(torch_log, "w") as log:
        torch_proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import malformed_cli as m; "
             "m._torch_group_main(sys.argv[2], sys.argv[3])", str(TESTS_DIR), str(torch_work), str(earlier_ck)],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_limit_memory, env={**os.environ, "COLUMNS": "200"})

    answers = {}
    answers.update(_results_group(tmp, out["clean"]))
    answers.update(_options_group(tmp, clean, out["clean"], pc_pre))

    torch_proc.wait(timeout=300)
    stderr = torch_log.read_text()
    torch_answers_file = torch_work / "answers.json"
    torch_answers = json.loads(torch_answers_file.read_text()) if torch_answers_file.is_file() else {}
    earlier_ck_intact = _snapshot(earlier_ck) == _snapshot(out["clean"])
    for entry in CORPUS:
        if entry.where == "torch":
            answers[entry.id] = {**torch_answers.get(entry.id, {"driver_failed": f"rc {torch_proc.returncode}: "
                                                                                  f"{stderr[-3000:]}"}),
                                 "intact": earlier_ck_intact, "marker": torch_answers.get("marker", False)}
    return {"runs": runs, "answers": answers}


def _results_group(tmp: Path, good: Path) -> dict:
    """compare / check / leaderboard build on malformed results files; the good run and a built board stay."""
    doc = json.loads((good / "results.json").read_text())
    raw = (good / "results.json").read_bytes()

    def run_dir(name: str, content: bytes) -> Path:
        folder = tmp / "results_files" / name
        folder.mkdir(parents=True)
        (folder / "results.json").write_bytes(content)
        return folder

    def board_data(name: str, file_name: str, content: bytes) -> Path:
        data = tmp / "boards" / name
        shutil.copytree(REPO / "leaderboards" / "data" / "paper", data / "paper")
        (data / "runs" / "mine").mkdir(parents=True)
        (data / "runs" / "mine" / file_name).write_bytes(content)
        return data

    samples_cut = tmp / "results_files" / "samples_cut"
    shutil.copytree(good, samples_cut)
    samples = samples_cut / "samples" / "asr_librispeech-test-clean.jsonl"
    samples.write_bytes(samples.read_bytes()[: samples.stat().st_size - 40])

    board_out = tmp / "board_out"
    good_board = board_data("good", "results.json", raw)
    built = _invoke("leaderboard", "build", "--data", good_board, "--output", board_out)
    setup = None if built.exit_code == 0 else f"the good leaderboard build failed: {built.output[-2000:]}"
    before_good, before_board = _snapshot(good), _snapshot(board_out)

    commands = {
        "results-truncated": ("compare", good, run_dir("truncated", raw[: len(raw) // 2])),
        "results-not-json": ("check", "--baseline", good, "--candidate",
                             run_dir("html", b"<html><body>502 Bad Gateway</body></html>\n")),
        "results-json-list": ("leaderboard", "build", "--data", board_data("list", "results.json", b"[1, 2, 3]\n"),
                              "--output", board_out),
        "results-from-another-tool": ("compare", run_dir("other", json.dumps(
            {"model": "whisper-large-v3", "results": {"librispeech": {"wer": 2.1}}}).encode()), good),
        "results-wrong-format-version": ("check", "--baseline", run_dir("v99", json.dumps(
            {**doc, "format_version": 99}).encode()), "--candidate", good),
        "results-empty-file": ("leaderboard", "build", "--data", board_data("empty", "empty.json", b""),
                               "--output", board_out),
        "results-binary-file": ("compare", good, run_dir("binary", b"\x89PNG\r\n\x1a\n\xff\xfe" + bytes(range(256)))),
        "results-no-model-name": ("check", "--baseline", good, "--candidate",
                                  run_dir("noname", json.dumps({**doc, "model": {}}).encode())),
        "results-truncated-samples-file": ("compare", good, samples_cut),
    }
    answers = {}
    for key, args in commands.items():
        res = _invoke(*args)
        answers[key] = {"exit_code": res.exit_code, "stderr": res.stderr, "stdout": res.stdout,
                        "intact": _snapshot(good) == before_good and _snapshot(board_out) == before_board}
        if setup and args[0] == "leaderboard":
            answers[key]["driver_failed"] = setup
    return answers


def _options_group(tmp: Path, clean: Path, good: Path, pre: Path) -> dict:
    """Bad --model-args / --task-args into the output folder of an earlier run: refused, the folder untouched."""
    earlier = tmp / "earlier_options"
    shutil.copytree(good, earlier)
    before = _snapshot(earlier)
    base = _cli_args(clean, earlier, [LIBRI])
    commands = {
        "option-model-args-unknown-key": base + ["--model-args", "tone=300"],
        "option-model-args-bad-number": base + ["--model-args", "tone_hz=loud"],
        "option-model-args-bad-json": base + ["--model-args", '{"text": "hello"'],
        "option-model-args-not-key-value": base + ["--model-args", "text"],
        "option-model-args-bad-choice": _cli_args(clean, earlier, [LIBRI], "--model-args",
                                                  f"dir={pre},score_reduction=median", model="precomputed"),
        "option-task-args-unknown-key": base + ["--task-args", "protcol=seed-tts-eval"],
        "option-task-args-bad-int": base + ["--task-args", "bootstrap=many"],
    }
    answers = {}
    for key, args in commands.items():
        res = _invoke(*args)
        answers[key] = {"exit_code": res.exit_code, "stderr": res.stderr, "stdout": res.stdout,
                        "intact": _snapshot(earlier) == before}
    return answers


# ---------------------------------------------------------------------------------------------------------------
# Checks


def _one_line(text: str) -> bool:
    return bool(text.strip()) and "\n" not in text.strip()


def _assert_named(answer: str, entry: Entry) -> None:
    assert _one_line(answer), f"{entry.id}: answer is not one line: {answer!r}"
    assert entry.file in answer, f"{entry.id}: answer does not name {entry.file!r}: {answer!r}"
    assert re.search(entry.reason, answer), f"{entry.id}: answer gives no reason /{entry.reason}/: {answer!r}"


def _assert_exit_code(entry: Entry, run: dict) -> None:
    """Exit 1 exactly when a task of the run measured nothing (a dataset or scoring error, or no sample scored),
    each such task named on the "measured nothing" line; exit 0 otherwise (partial errors)."""
    proc = run["proc"]
    nothing = sorted(t for t, r in run["results"].items() if r.get("status") in ("dataset error", "scoring error")
                     or (not r.get("status") and not r.get("scored")))
    assert proc.returncode == (1 if nothing else 0), \
        f"{entry.where} run: rc {proc.returncode}, tasks that measured nothing {nothing}: {proc.stderr[-3000:]}"
    if nothing:
        (line,) = [line for line in proc.stderr.splitlines() if "task(s) measured nothing" in line]
        assert line.startswith(f"{len(nothing)} task(s) measured nothing") and all(t in line for t in nothing)


def _check_record(entry: Entry, run: dict, clean: dict | None) -> None:
    _assert_exit_code(entry, run)
    records = run["records"].get(entry.task)
    assert records is not None, f"no samples file for {entry.task}: {run['results'].get(entry.task)}"
    record = records.get(entry.sample)
    assert record is not None, f"{entry.sample} dropped from {entry.task}: ids {sorted(records)}"
    assert "error" in record, f"{entry.sample} was scored, not refused: {record}"
    _assert_named(record["error"], entry)
    if clean is not None and entry.task in clean["records"]:  # the good samples keep their records of a clean run
        for sid, good in clean["records"][entry.task].items():
            assert records.get(sid) == good, f"{entry.task}: record of {sid} changed by malformed neighbours"
    if clean is None:  # one malformed line per score file: every other sample of the task is scored
        failed = sorted(sid for sid, r in records.items() if "error" in r)
        assert failed == [entry.sample], f"{entry.task}: error records {failed}, expected only {entry.sample}"


def _check_dataset(entry: Entry, run: dict, clean: dict) -> None:
    proc = run["proc"]
    _assert_exit_code(entry, run)
    result = run["results"].get(entry.task, {})
    assert result.get("status") == "dataset error", f"{entry.task}: {result}"
    _assert_named(result.get("detail", ""), entry)
    lines = [line for line in proc.stderr.splitlines() if line.startswith(f"{entry.task}: dataset error")]
    assert len(lines) == 1, f"{entry.task}: no one-line report on stderr: {proc.stderr!r}"
    assert entry.file in lines[0] and re.search(entry.reason, lines[0])
    good = run["records"].get(LIBRI)  # the other tasks still run, with their clean records
    assert good == clean["records"][LIBRI], f"{LIBRI} not scored as in the clean run: {run['results'].get(LIBRI)}"


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [s for v in value for s in _strings(v)] if isinstance(value, list) else []


def _check_any(entry: Entry, run: dict) -> None:
    """The answer may be an error record of the task or a one-line task status (dataset / scoring error)."""
    proc = run["proc"]
    _assert_exit_code(entry, run)
    candidates = [r["error"] for r in run["records"].get(entry.task, {}).values() if "error" in r]
    candidates += [v for v in _strings(run["results"].get(entry.task, {})) if v]  # a status detail, a warning
    candidates += [line for line in proc.stderr.splitlines() if entry.file in line]
    hits = [c for c in candidates if entry.file in c and re.search(entry.reason, c)]
    assert hits, (f"{entry.id}: nothing names {entry.file} with /{entry.reason}/ ({entry.sample}); "
                  f"results {run['results'].get(entry.task)}; errors {candidates[:5]}")
    _assert_named(hits[0], entry)


def _check_exit2(entry: Entry, answer: dict) -> None:
    assert "driver_failed" not in answer, answer.get("driver_failed")
    assert answer["exit_code"] == 2, f"{entry.id}: exit {answer['exit_code']}, stderr {answer['stderr'][-2000:]!r}"
    _assert_named(answer["stderr"], entry)
    assert answer["intact"], f"{entry.id}: the earlier results were modified"
    assert not answer.get("marker"), "a pickle payload was executed"


def _check_raise(entry: Entry, answer: dict) -> None:
    assert "driver_failed" not in answer, answer.get("driver_failed")
    assert answer["raised"], f"{entry.id}: not refused: {answer['message']}"
    _assert_named(answer["message"], entry)
    assert not answer.get("marker"), "a YAML python tag was executed"


def test_corpus_is_big_and_covers_every_kind():
    assert len(CORPUS) >= 30 and len(BY_ID) == len(CORPUS)
    assert {e.kind for e in CORPUS} == set(KINDS)
    assert all(e.how in ("record", "dataset", "any", "exit2", "raise") for e in CORPUS)


@pytest.mark.parametrize("entry_id", [e.id for e in CORPUS])
@pytest.mark.slow
def test_malformed_input_is_answered(entry_id, outcomes):
    entry = BY_ID[entry_id]
    runs, answers = outcomes["runs"], outcomes["answers"]
    if entry.how == "record":  # the run "records" (dummy model) has a clean twin to compare the good samples with
        _check_record(entry, runs[entry.where], runs["clean"] if entry.where == "records" else None)
    elif entry.how == "dataset":
        _check_dataset(entry, runs[entry.where], runs["clean"])
    elif entry.how == "any":
        _check_any(entry, runs[entry.where])
    elif entry.how == "exit2":
        _check_exit2(entry, answers[entry.id])
    else:
        _check_raise(entry, answers[entry.id])
    SUMMARY.answered.add(entry.id)


@pytest.mark.slow
def test_clean_run_is_clean_and_fail_on_error_exits_1(outcomes):
    clean, broken, failing = (outcomes["runs"][k] for k in ("clean", "records", "records_fail"))
    assert clean["proc"].returncode == 0, clean["proc"].stderr[-3000:]
    for task in CLEAN_TASKS:  # the baseline the malformed runs are compared with has no error at all
        res = clean["results"][task]
        assert res["errors"] == 0 and res["scored"] == res["listed"] > 0, (task, res)
    # every listed Seed-TTS-eval line of the records run is malformed: that task measured nothing, so the run exits 1
    assert broken["results"][SEED]["scored"] == 0 and broken["proc"].returncode == 1
    assert f"1 task(s) measured nothing: {SEED}: no sample was scored" in broken["proc"].stderr
    expected = {(e.task, e.sample) for e in CORPUS if e.where == "records"} | {(SWUGGY, "missingWavB")}  # A's twin
    found = {(task, sid) for task, records in broken["records"].items() for sid, r in records.items() if "error" in r}
    assert found == expected  # every malformed sample has its error record, and no good sample has one
    errors = sum(r.get("errors", 0) for r in broken["results"].values())
    assert errors == len(expected)
    assert f"{errors} error record(s)" in broken["proc"].stdout
    libri_errors = broken["results"][LIBRI]["errors"]
    assert failing["proc"].returncode == 1, failing["proc"].stderr[-3000:]
    assert f"{libri_errors} sample(s) had errors" in failing["proc"].stderr
