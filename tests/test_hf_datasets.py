"""Datasets in Hugging Face form (--task-args source=PATH): parquet shards or a save_to_disk folder with embedded
audio give the same ids, texts and numbers as the official folder layouts of the same audio."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import MINI_SUITE, read_jsonl, run_cli

LIBRI = "asr:librispeech-test-clean"
AUDIO = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _librispeech_rows(root: Path) -> list[dict]:
    """openslr/librispeech_asr's columns, audio embedded, for every utterance of a LibriSpeech folder."""
    rows = []
    for trans in sorted(root.rglob("*.trans.txt")):
        for line in trans.read_text().splitlines():
            uid, text = line.split(" ", 1)
            flac = trans.parent / f"{uid}.flac"
            speaker, chapter, _ = uid.split("-")
            rows.append({"file": flac.name, "audio": {"bytes": flac.read_bytes(), "path": flac.name},
                         "text": text, "speaker_id": int(speaker), "chapter_id": int(chapter), "id": uid})
    return rows


def _table(rows: list[dict]) -> pa.Table:
    return pa.table({k: pa.array([r[k] for r in rows], type=AUDIO if k == "audio" else None) for k in rows[0]})


def _result(out: Path, task: str = LIBRI) -> tuple[dict, list[dict]]:
    doc = json.loads((out / "results.json").read_text())
    return doc, read_jsonl(out / "samples" / f"{task.replace(':', '_')}.jsonl")


@pytest.mark.slow
def test_librispeech_as_parquet_shards_equals_the_folder_layout(libri_root, tmp_path):
    rows = _librispeech_rows(libri_root / "LibriSpeech" / "test-clean")
    shards = tmp_path / "librispeech_asr" / "clean" / "test"
    shards.mkdir(parents=True)
    pq.write_table(_table(rows[:7]), shards / "test-00000-of-00002.parquet")
    pq.write_table(_table(rows[7:]), shards / "test-00001-of-00002.parquet")
    args = ("--model", "offline-baseline", "--tasks", LIBRI, "--no-progress")
    folder_out, parquet_out = tmp_path / "folder", tmp_path / "parquet"
    assert run_cli("run", *args, "--data-root", str(libri_root), "--output", str(folder_out)).returncode == 0
    proc = run_cli("run", *args, "--task-args", f"source={shards}", "--output", str(parquet_out))
    assert proc.returncode == 0, proc.stderr
    (doc_f, recs_f), (doc_p, recs_p) = _result(folder_out), _result(parquet_out)
    assert [r["id"] for r in recs_p] == [r["id"] for r in recs_f] and len(recs_p) == 12
    assert [(r["ref"], r["hyp"], r["errors"]) for r in recs_p] == [(r["ref"], r["hyp"], r["errors"]) for r in recs_f]
    for key in ("wer", "substitutions", "deletions", "insertions", "ref_words", "scored", "errors"):
        assert doc_p["results"][LIBRI][key] == doc_f["results"][LIBRI][key], key
    # the audio was written once under the output folder, and the digest covers the shards wherever they sit
    assert len(list((parquet_out / "data" / "asr_librispeech-test-clean").glob("*.flac"))) == 12
    moved = tmp_path / "elsewhere"
    shards.rename(moved)
    again = tmp_path / "again"
    assert run_cli("run", *args, "--task-args", f"source={moved}", "--output", str(again)).returncode == 0
    assert _result(again)[0]["tasks"][LIBRI]["dataset_sha256"] == doc_p["tasks"][LIBRI]["dataset_sha256"]


def test_a_save_to_disk_folder_and_broken_rows(libri_root, tmp_path):
    import datasets

    rows = _librispeech_rows(libri_root / "LibriSpeech" / "test-clean")[:4]
    rows[1]["audio"] = {"bytes": None, "path": "../../../etc/passwd"}  # a path out of the source folder
    rows[2]["text"] = None  # a null transcript
    ds = datasets.Dataset(_table(rows))
    folder = tmp_path / "disk"
    ds.save_to_disk(str(folder))
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "dummy", "--tasks", LIBRI, "--task-args", f"source={folder}", "--output",
                   str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    doc, records = _result(out)
    assert (doc["results"][LIBRI]["scored"], doc["results"][LIBRI]["errors"]) == (2, 2)
    errors = {r["id"]: r["error"] for r in records if "error" in r}
    assert "escapes the dataset root" in errors[rows[1]["id"]] and "row 2" in errors[rows[1]["id"]]
    assert "text is null" in errors[rows[2]["id"]] and "row 3" in errors[rows[2]["id"]]
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "dict"))
    refused = run_cli("run", "--model", "dummy", "--tasks", LIBRI, "--task-args", f"source={tmp_path / 'dict'}",
                      "--output", str(tmp_path / "o2"), "--no-progress")
    assert "a DatasetDict; pass one split folder: test" in refused.stderr


def test_qa_parquet_with_embedded_audio(tmp_path):
    folder = tmp_path / "data" / "webquestions"
    folder.mkdir(parents=True)
    source = [json.loads(line) for line in (MINI_SUITE / "webquestions" / "test.jsonl").read_text().splitlines()]
    rows = [{"question": r["question"], "answers": r["answers"],
             "audio": {"bytes": (MINI_SUITE / "webquestions" / r["audio"]).read_bytes(), "path": Path(r["audio"]).name}}
            for r in source]
    pq.write_table(pa.table({"question": [r["question"] for r in rows], "answers": [r["answers"] for r in rows],
                             "audio": pa.array([r["audio"] for r in rows], type=AUDIO)}), folder / "test.parquet")
    out_jsonl, out_parquet = tmp_path / "a", tmp_path / "b"
    args = ("--model", "dummy", "--model-args", "text=paris", "--tasks", "sqa:webquestions-s2t", "--no-progress")
    assert run_cli("run", *args, "--output", str(out_jsonl)).returncode == 0
    proc = run_cli("run", *args, "--data-root", str(tmp_path / "data"), "--output", str(out_parquet))
    assert proc.returncode == 0, proc.stderr
    a, b = (_result(o, "sqa:webquestions-s2t") for o in (out_jsonl, out_parquet))
    assert b[0]["results"]["sqa:webquestions-s2t"]["scored"] == len(source) > 0
    assert [r["id"] for r in b[1]] == [r["id"] for r in a[1]]
    assert [r["correct"] for r in b[1]] == [r["correct"] for r in a[1]]
