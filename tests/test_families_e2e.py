"""End to end on the bundled mini suite: the offline baseline gives real numbers; precomputed outputs re-score exactly."""

from __future__ import annotations

import json

import pytest
from conftest import MINI_SUITE, read_jsonl, run_cli


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline")
    proc = run_cli("run", "--model", "offline-baseline", "--tasks", "asr,tts,slm", "--output", str(out),
                   "--no-progress", "--batch-size", "4", timeout=900)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads((out / "results.json").read_text()), proc


def test_baseline_gives_numbers_for_every_family(baseline_run):
    out, doc, proc = baseline_run
    res = doc["results"]
    for task in ("asr:librispeech-test-clean", "asr:librispeech-test-other", "tts:librispeech-test-clean"):
        assert 0 <= res[task]["wer"] <= 200 and res[task]["errors"] == 0
    assert -1 <= res["tts:librispeech-test-clean"]["sim"] <= 1
    assert res["tts:librispeech-test-clean"]["judge"] == "offline-baseline"
    assert res["tts:librispeech-test-clean"]["embedder"].startswith("resemblyzer")
    for task in ("slm:swuggy-dev", "slm:sblimp-dev", "slm:sstorycloze", "slm:tstorycloze"):
        assert 0 <= res[task]["accuracy"] <= 100 and res[task]["scored"] == res[task]["listed"]
    assert res["slm:sstorycloze"]["reduction"] == "mean"
    assert (out / "audio" / "tts_librispeech-test-clean").is_dir()
    assert (out / "zerospeech" / "lexical" / "dev.txt").is_file()
    assert "tts:librispeech-test-clean" in proc.stdout


def test_precomputed_transcripts_and_scores_reproduce_the_run(baseline_run, tmp_path):
    out, doc, _ = baseline_run
    pre = tmp_path / "pre"
    pre.mkdir()
    for task in ("asr:librispeech-test-clean", "asr:librispeech-test-other"):
        name = task.replace(":", "_")
        rows = [{"id": r["id"], "text": r["hyp_raw"]} for r in read_jsonl(out / "samples" / f"{name}.jsonl")]
        (pre / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # sLM: the official ZeroSpeech submission layout the run wrote, and a StoryCloze scores JSONL
    (pre / "lexical").mkdir()
    (pre / "lexical" / "dev.txt").write_text((out / "zerospeech" / "lexical" / "dev.txt").read_text())
    cache = next((out / "cache" / "slm_tstorycloze").glob("*/rank0.jsonl"))
    rows = [{"id": r["id"], "score": r["score"] / r["n_tokens"]} for r in read_jsonl(cache)]
    (pre / "slm_tstorycloze.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    tasks = "asr,slm:swuggy-dev,slm:tstorycloze,slm:sblimp-dev"
    proc = run_cli("run", "--model", "precomputed", "--model-args", f"dir={pre},score_reduction=mean", "--tasks", tasks,
                   "--output", str(tmp_path / "o"), "--no-progress", "--task-args", "reduction=mean")
    assert proc.returncode == 0, proc.stderr
    again = json.loads((tmp_path / "o" / "results.json").read_text())["results"]
    for task in ("asr:librispeech-test-clean", "asr:librispeech-test-other"):
        assert again[task]["wer"] == doc["results"][task]["wer"]
        assert again[task]["wer_ci95"] == doc["results"][task]["wer_ci95"]
    assert again["slm:swuggy-dev"]["accuracy"] == doc["results"]["slm:swuggy-dev"]["accuracy"]
    assert again["slm:swuggy-dev"]["accuracy_in_vocab"] == doc["results"]["slm:swuggy-dev"]["accuracy_in_vocab"]
    assert again["slm:tstorycloze"]["accuracy"] == doc["results"]["slm:tstorycloze"]["accuracy"]
    assert again["slm:sblimp-dev"] == {"status": "not supported", "capability": "score_audio"}  # no file given


def test_precomputed_qa_answers_and_missing_ids(tmp_path):
    pre = tmp_path / "pre"
    pre.mkdir()
    answers = {"1": "The capital is Paris.", "2": "It has 8 legs", "3": "mars, the red one"}  # 4 missing
    (pre / "sqa_llama-questions-s2t.jsonl").write_text(
        "".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in answers.items()))
    proc = run_cli("run", "--model", "precomputed", "--model-args", f"dir={pre}", "--tasks",
                   "sqa:llama-questions-s2t", "--output", str(tmp_path / "o"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "o" / "results.json").read_text())["results"]["sqa:llama-questions-s2t"]
    # "8" is not "eight" under the has-answer rule: Paris and Mars are right, 2 of 3 scored
    assert res["accuracy"] == pytest.approx(100 * 2 / 3, abs=1e-3)
    assert (res["scored"], res["listed"], res["errors"]) == (3, 4, 1)
    records = read_jsonl(tmp_path / "o" / "samples" / "sqa_llama-questions-s2t.jsonl")
    missing = [r for r in records if "error" in r]
    assert missing[0]["id"] == "4" and "no entry for id 4" in missing[0]["error"]
    assert all(r["matched"] is not None for r in records if r.get("correct") == 1.0)


def test_qa_record_without_answers_is_an_error_record(tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(MINI_SUITE / "triviaqa", data / "triviaqa")
    lines = (data / "triviaqa" / "test.jsonl").read_text().splitlines()
    broken = json.loads(lines[1])
    broken["answer"] = []
    lines[1] = json.dumps(broken)
    (data / "triviaqa" / "test.jsonl").write_text("\n".join(lines) + "\n")
    proc = run_cli("run", "--model", "dummy", "--model-args", "text=oxygen", "--tasks", "sqa:triviaqa-s2t",
                   "--data-root", str(data), "--output", str(tmp_path / "o"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "o" / "results.json").read_text())["results"]["sqa:triviaqa-s2t"]
    assert (res["scored"], res["listed"], res["accuracy"]) == (2, 3, 50.0)
    err = [r for r in read_jsonl(tmp_path / "o" / "samples" / "sqa_triviaqa-s2t.jsonl") if "error" in r][0]
    assert "test.jsonl:2" in err["error"] and "no reference answers" in err["error"]
