"""The cache keeps what the model said and nothing derived from it; every run scores the outputs again.

Each test runs the real CLI twice on the bundled mini suite, tampers with the cache in between the way a hostile
file (or a stale one) would, and checks that the second run gives the numbers of a clean run, with a warning.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import MINI_SUITE, read_jsonl, run_cli

ASR = "asr:librispeech-test-clean"
QA = "sqa:llama-questions-s2t"
TTS = "tts:seed-tts-eval-en"


def _run(out: Path, task: str, *extra: str):
    proc = run_cli("run", "--model", "dummy", "--model-args", "text=the cat sat on the mat", "--tasks", task,
                   "--data-root", str(MINI_SUITE), "--output", str(out), "--no-progress", *extra)
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads((out / "results.json").read_text())["results"][task]


def _cache(out: Path, task: str) -> Path:
    (path,) = (out / "cache" / task.replace(":", "_")).glob("*/rank0.jsonl")
    return path


def _rewrite(path: Path, change) -> None:
    records = read_jsonl(path)
    path.write_text("".join(json.dumps(change(i, r)) + "\n" for i, r in enumerate(records)))


def _numbers(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k not in ("seconds", "reused", "warnings")}


def test_a_cache_record_holds_the_output_and_its_stamp_only(tmp_path):
    _run(tmp_path / "asr", ASR)
    records = read_jsonl(_cache(tmp_path / "asr", ASR))
    assert records and all(set(r) == {"id", "text", "cache"} for r in records)
    assert all(r["text"] == "the cat sat on the mat" for r in records)
    _run(tmp_path / "qa", QA)
    assert all(set(r) == {"id", "text", "cache"} for r in read_jsonl(_cache(tmp_path / "qa", QA)))
    _run(tmp_path / "cloze", "slm:sstorycloze")
    cloze = read_jsonl(_cache(tmp_path / "cloze", "slm:sstorycloze"))
    assert cloze and all(set(r) == {"id", "score", "n_tokens", "cache"} for r in cloze)


def test_derived_fields_negative_counts_and_wrong_types_are_run_again_with_a_warning(tmp_path):
    clean = _run(tmp_path / "clean", ASR)[1]
    out = tmp_path / "out"
    _run(out, ASR)
    forged = {0: {"substitutions": -1000, "errors": -1000}, 1: {"text": 5}, 2: {"text": None}, 3: {"text": ["a"]}}
    _rewrite(_cache(out, ASR), lambda i, r: {**r, **forged.get(i, {})})
    proc, again = _run(out, ASR)
    assert _numbers(again) == _numbers(clean) and again["reused"] == clean["scored"] - 4
    warning = "cache: 4 record(s) with an unusable output run again (first: "
    assert any(w.startswith(warning) for w in again["warnings"]) and warning in proc.stderr
    assert "unexpected field 'errors' in a text record" in next(w for w in again["warnings"] if w.startswith(warning))
    # the records run again were appended; a third run reuses every sample and warns about the forged lines still
    # in the file, without counting them
    third = _run(out, ASR)[1]
    assert third["reused"] == clean["scored"] and _numbers(third) == _numbers(clean)


def test_a_qa_record_claiming_correct_five_gives_the_honest_accuracy(tmp_path):
    clean = _run(tmp_path / "clean", QA)[1]
    out = tmp_path / "out"
    _run(out, QA)
    _rewrite(_cache(out, QA), lambda i, r: {**r, "correct": 5.0, "matched": "x"})
    again = _run(out, QA)[1]
    assert again["accuracy"] == clean["accuracy"] <= 100 and again["reused"] == 0
    assert any("unexpected field 'correct'" in w for w in again["warnings"])


def test_an_edited_output_is_scored_again_with_the_current_code(tmp_path):
    """What the cache holds is what gets scored: an output changed in place is re-scored, never a stale number."""
    out = tmp_path / "out"
    first = _run(out, ASR)[1]
    refs = {r["id"]: r["ref"] for r in read_jsonl(out / "samples" / "asr_librispeech-test-clean.jsonl")}
    _rewrite(_cache(out, ASR), lambda i, r: {**r, "text": refs[r["id"]]})  # every output now the reference
    again = _run(out, ASR)[1]
    assert first["wer"] > 0 and again["wer"] == 0 and again["reused"] == again["scored"] == first["scored"]
    assert "warnings" not in again


def test_a_conflicting_duplicate_is_counted_and_never_wins(tmp_path):
    clean = _run(tmp_path / "clean", ASR)[1]
    out = tmp_path / "out"
    _run(out, ASR)
    cache = _cache(out, ASR)
    records = read_jsonl(cache)
    refs = {r["id"]: r["ref"] for r in read_jsonl(out / "samples" / "asr_librispeech-test-clean.jsonl")}
    with open(cache, "a") as fh:  # later lines saying something else for two ids, and one identical line
        for r in records[:2]:
            fh.write(json.dumps({**r, "text": refs[r["id"]]}) + "\n")
        fh.write(json.dumps(records[2]) + "\n")
    proc, again = _run(out, ASR)
    assert _numbers(again) == _numbers(clean)
    assert "cache: 2 conflicting record(s) ignored" in again["warnings"]
    assert "cache: 2 conflicting record(s) ignored" in proc.stderr


def test_generated_speech_changed_on_disk_is_made_again_and_judge_transcripts_are_cached(tmp_path):
    out = tmp_path / "out"
    first = _run(out, TTS)[1]
    records = read_jsonl(_cache(out, TTS))
    assert len(records) == first["scored"] > 0
    assert all(set(r) == {"id", "audio", "sha256", "cache"} for r in records)
    (judge_cache,) = (out / "cache" / "judge").glob("*/rank0.jsonl")
    judged = len(judge_cache.read_text().splitlines())
    assert judged == len({r["sha256"] for r in records})  # each distinct audio transcribed once
    # a second run scores again from the files, asking the judge nothing new
    again = _run(out, TTS)[1]
    assert _numbers(again) == _numbers(first) and again["reused"] == first["scored"]
    assert len(judge_cache.read_text().splitlines()) == judged
    # one file overwritten, one removed: both are synthesised again, with a warning; the numbers stay honest
    (out / records[0]["audio"]).write_bytes(b"RIFF not audio")
    (out / records[1]["audio"]).unlink()
    third = _run(out, TTS)[1]
    assert third["reused"] == first["scored"] - 2 and _numbers(third) == _numbers(first)
    warning = next(w for w in third["warnings"] if "unusable output" in w)
    assert "cache: 2 record(s) with an unusable output run again" in warning and "sha256 differs" in warning
