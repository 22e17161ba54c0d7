"""sLM and Seed-TTS tasks in Hugging Face form (--task-args source=PATH): parquet shards or a save_to_disk folder
built from the bundled mini suite's own files give the same ids, records and numbers as its folder layout; a broken
row is an error record naming the row.

Columns (documented in tasks/slm/task.py and on SeedTTSEvalEN):
* sWUGGY / sBLIMP: the gold.csv columns + ``audio``, one row per wav;
* StoryCloze: ``id`` (or ``idx``), ``correct``, ``incorrect`` (two audio columns), one row per story;
* Seed-TTS-eval: ``utt``, ``prompt_text``, ``prompt_audio`` (or ``prompt_wav``), ``infer_text``.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import MINI_SUITE, read_jsonl, run_cli

AUDIO = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SWUGGY, SBLIMP, SSC, SEED = "slm:swuggy-dev", "slm:sblimp-dev", "slm:sstorycloze", "tts:seed-tts-eval-en"
INTS = {"id", "frequency", "length", "correct"}


def _embedded(path: Path) -> dict:
    return {"bytes": path.read_bytes(), "path": path.name}


def _table(rows: list[dict]) -> pa.Table:
    audio = {k for k, v in rows[0].items() if isinstance(v, dict)}
    return pa.table({k: pa.array([r[k] for r in rows], type=AUDIO if k in audio else None) for k in rows[0]})


def _write_shards(rows: list[dict], folder: Path, n: int = 2) -> Path:
    """``rows`` as ``n`` parquet shards named as the hub names them."""
    folder.mkdir(parents=True)
    size = -(-len(rows) // n)
    for i in range(n):
        pq.write_table(_table(rows[i * size:(i + 1) * size]), folder / f"test-{i:05d}-of-{n:05d}.parquet")
    return folder


def _gold_rows(kind: str) -> list[dict]:
    """One row per wav of the mini suite's sLM21 dev split: gold.csv's columns (integers typed) + embedded audio."""
    folder = MINI_SUITE / "sLM21-dataset" / kind / "dev"
    with open(folder / "gold.csv", newline="") as handle:
        gold = list(csv.DictReader(handle))
    return [{**{k: int(v) if k in INTS else v for k, v in row.items()},
             "audio": _embedded(folder / f"{row['filename']}.wav")} for row in gold]


def _cloze_rows(subset: str = "sSC") -> list[dict]:
    folder = MINI_SUITE / "spoken-storycloze" / subset
    ids = sorted({p.stem.split("_")[0] for p in folder.glob("*.wav")}, key=int)
    return [{"id": int(i), "correct": _embedded(folder / f"{i}_correct.wav"),
             "incorrect": _embedded(folder / f"{i}_incorrect.wav")} for i in ids]


def _seed_rows() -> list[dict]:
    en = MINI_SUITE / "seedtts_testset" / "en"
    rows = []
    for line in (en / "meta.lst").read_text().splitlines():
        utt, prompt_text, prompt_wav, infer_text = line.split("|")[:4]
        rows.append({"utt": utt, "prompt_text": prompt_text, "prompt_audio": _embedded(en / prompt_wav),
                     "infer_text": infer_text})
    return rows


def _run(out: Path, task: str, *extra: str) -> tuple[dict, list[dict]]:
    judge = ("--judge", "dummy") if task.startswith("tts:") else ()
    proc = run_cli("run", "--model", "dummy", *judge, "--tasks", task, "--output", str(out), "--no-progress", *extra)
    assert proc.returncode == 0, proc.stderr
    return _outcome(out, task)


def _outcome(out: Path, task: str) -> tuple[dict, list[dict]]:
    doc = json.loads((out / "results.json").read_text())
    return doc, read_jsonl(out / "samples" / f"{task.replace(':', '_')}.jsonl")


def _per_wav(out: Path, task: str) -> dict[str, dict]:
    """The cached per-request records (id -> record, without the cache keys: the source path is a task option)."""
    return {r["id"]: {k: v for k, v in r.items() if k != "cache"}
            for f in (out / "cache" / task.replace(":", "_")).glob("*/rank*.jsonl") for r in read_jsonl(f)}


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> Path:
    """The folder layouts of the mini suite, scored once by the dummy model."""
    out = tmp_path_factory.mktemp("folder")
    proc = run_cli("run", "--model", "dummy", "--tasks", f"{SWUGGY},{SBLIMP},{SSC}", "--output", str(out),
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return out


def _same_run(folder: Path, source: Path, task: str, metrics: tuple[str, ...]):
    (doc_f, items_f), (doc_s, items_s) = _outcome(folder, task), _outcome(source, task)
    assert items_s == items_f and items_s  # the same pairs, scores and outcomes
    wavs_f, wavs_s = _per_wav(folder, task), _per_wav(source, task)
    assert wavs_s == wavs_f and wavs_s  # the same sample ids and per-wav scores
    res_f, res_s = doc_f["results"][task], doc_s["results"][task]
    for key in metrics:
        assert res_s[key] == res_f[key], key
    assert (res_s["listed"], res_s["errors"]) == (res_f["listed"], 0)
    return doc_s


@pytest.mark.parametrize("task, kind, form", [(SWUGGY, "lexical", "parquet"), (SBLIMP, "syntactic", "save_to_disk")])
def test_slm21_source_equals_the_folder_layout(folder_run, tmp_path, task, kind, form):
    rows = _gold_rows(kind)
    if form == "parquet":
        source = _write_shards(rows, tmp_path / "sLM21" / kind / "dev")
    else:
        import datasets

        source = tmp_path / "disk"
        datasets.Dataset(_table(rows)).save_to_disk(str(source))
    out = tmp_path / "out"
    _run(out, task, "--task-args", f"source={source}")
    metrics = ("accuracy", "accuracy_exact", "pairs", "items", "reduction", "scored")
    metrics += ("accuracy_in_vocab", "by_frequency_percent") if kind == "lexical" else ("by_type_percent",)
    _same_run(folder_run, out, task, metrics)
    # the official submission file holds the same lines; embedded audio was written once under the output folder
    name = f"zerospeech/{kind}/dev.txt"
    assert sorted((out / name).read_text().splitlines()) == sorted((folder_run / name).read_text().splitlines())
    assert len(list((out / "data" / task.replace(":", "_")).glob("*.wav"))) == len(rows)


def test_storycloze_source_equals_the_folder_layout_and_hashes_its_shards(folder_run, tmp_path):
    source = _write_shards(_cloze_rows("sSC"), tmp_path / "spoken_storycloze" / "sSC")
    out = tmp_path / "out"
    _run(out, SSC, "--task-args", f"source={source}")
    doc = _same_run(folder_run, out, SSC, ("accuracy", "pairs", "reduction", "scored"))
    assert sorted(_per_wav(out, SSC)) == [f"{i}_{w}" for i in range(3) for w in ("correct", "incorrect")]
    moved = tmp_path / "elsewhere"
    source.rename(moved)
    again, _ = _run(tmp_path / "again", SSC, "--task-args", f"source={moved}")
    assert again["tasks"][SSC]["dataset_sha256"] == doc["tasks"][SSC]["dataset_sha256"]


@pytest.mark.slow
def test_seed_tts_source_equals_meta_lst(tmp_path):
    rows = _seed_rows()
    source = _write_shards(rows, tmp_path / "seedtts" / "en", n=1)
    (doc_f, recs_f), (doc_s, recs_s) = _run(tmp_path / "folder", SEED), _run(
        tmp_path / "source", SEED, "--task-args", f"source={source}")
    assert [r["id"] for r in recs_s] == [r["id"] for r in recs_f] == [r["utt"] for r in rows]
    keep = ("ref", "hyp", "errors", "sim")
    assert [{k: r.get(k) for k in keep} for r in recs_s] == [{k: r.get(k) for k in keep} for r in recs_f]
    # the same file names, each form's audio in the folder of its own task config (source= is part of it)
    assert [r["audio"].rsplit("/", 1)[1] for r in recs_s] == [r["audio"].rsplit("/", 1)[1] for r in recs_f]
    res_f, res_s = doc_f["results"][SEED], doc_s["results"][SEED]
    for key in ("wer", "sim", "scored", "errors", "judge", "embedder"):
        assert res_s[key] == res_f[key], key
    assert res_s["scored"] == len(rows) and res_s["sim"] is not None


def test_broken_slm21_rows_are_error_records_naming_the_row(tmp_path):
    rows = _gold_rows("lexical")
    rows[1]["audio"] = {"bytes": None, "path": "../../../etc/passwd"}  # a path out of the source folder
    rows[2]["audio"] = None  # a null audio cell
    source = tmp_path / "swuggy.parquet"
    pq.write_table(_table(rows), source)
    doc, items = _run(tmp_path / "out", SWUGGY, "--task-args", f"source={source}")
    errors = {r["id"]: r["error"] for r in items if "error" in r}
    assert set(errors) == {rows[1]["filename"], rows[2]["filename"]}
    assert "escapes the dataset root" in errors[rows[1]["filename"]] and "row 2" in errors[rows[1]["filename"]]
    assert "no audio" in errors[rows[2]["filename"]] and "row 3" in errors[rows[2]["filename"]]
    assert doc["results"][SWUGGY]["errors"] == 2
    # a gold cell the scorer needs is validated as gold.csv is: the task stops, naming the row
    rows[2] = {**_gold_rows("lexical")[2], "correct": None}
    pq.write_table(_table(rows), source)
    proc = run_cli("run", "--model", "dummy", "--tasks", SWUGGY, "--task-args", f"source={source}", "--output",
                   str(tmp_path / "gold"), "--no-progress")
    assert "swuggy.parquet:row 3: 'correct' is null" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_broken_storycloze_and_seed_tts_rows(tmp_path):
    rows = _cloze_rows("tSC")
    rows[0]["id"] = None  # a null story id: one error record naming the row
    rows[1]["incorrect"] = {"bytes": None, "path": "../outside.wav"}  # out of the source folder
    (tmp_path / "outside.wav").write_bytes(rows[2]["correct"]["bytes"])
    folder = tmp_path / "cloze"
    folder.mkdir()
    pq.write_table(_table(rows), folder / "test.parquet")
    doc, items = _run(tmp_path / "o1", "slm:tstorycloze", "--task-args", f"source={folder}")
    errors = {r["id"]: r["error"] for r in items if "error" in r}
    assert set(errors) == {"cloze:row 1", "1_incorrect"}  # rows numbered over the source
    assert "id is null" in errors["cloze:row 1"]
    assert "row 2" in errors["1_incorrect"] and "escapes the dataset root" in errors["1_incorrect"]
    assert doc["results"]["slm:tstorycloze"]["pairs"] == 1  # story 2 only; story 1 lost its false ending

    seed = _seed_rows()
    seed[1]["infer_text"] = None
    seed[2]["prompt_audio"] = {"bytes": None, "path": "../../x.wav"}
    source = tmp_path / "seed.parquet"
    pq.write_table(_table(seed), source)
    doc, recs = _run(tmp_path / "o2", SEED, "--task-args", f"source={source}")
    errors = {r["id"]: r["error"] for r in recs if "error" in r}
    assert set(errors) == {seed[1]["utt"], seed[2]["utt"]}
    assert "row 2" in errors[seed[1]["utt"]] and "infer_text is null" in errors[seed[1]["utt"]]
    assert "row 3" in errors[seed[2]["utt"]] and "escapes the dataset root" in errors[seed[2]["utt"]]
    assert (doc["results"][SEED]["scored"], doc["results"][SEED]["errors"]) == (2, 2)
    # prompt_wav as meta.lst gives it: a path inside the source folder, hashed with the shard
    en = tmp_path / "en"
    shutil.copytree(MINI_SUITE / "seedtts_testset" / "en" / "prompt-wavs", en / "prompt-wavs")
    by_path = [{"utt": r["utt"], "prompt_text": r["prompt_text"], "infer_text": r["infer_text"],
                "prompt_wav": f"prompt-wavs/{r['prompt_audio']['path']}"} for r in _seed_rows()]
    pq.write_table(_table(by_path), en / "test.parquet")
    doc, recs = _run(tmp_path / "o3", SEED, "--task-args", f"source={en}")
    assert doc["results"][SEED]["scored"] == len(by_path) and not any("error" in r for r in recs)
