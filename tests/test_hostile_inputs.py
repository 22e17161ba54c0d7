"""Hostile inputs the malformed-input corpus cannot hold: FIFOs read in-process (a hang must fail, not stall),
permission errors (simulated: tests run as root), typed QA fields that must be *scored* (a number answer), sample ids
that would write outside the output folder, dataset text that would be an espeak-ng option, and the training data
pipeline's per-line checks. Every file outside a data root here holds a secret that must never reach a sample."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import MINI_SUITE, read_jsonl, run_cli
from test_dataset_files import within

from most_eval.registry import resolve_tasks
from most_eval.core.task import TaskContext
from most_eval.core.errors import DatasetError
from most_eval.data import speech_corpora as readers
from most_eval_tasks.slm import zerospeech as zr

SECRET = "THE SECRET NEVER READ"


def _tone(path: Path, seconds: float = 0.5) -> Path:
    t = np.arange(int(16000 * seconds), dtype=np.float32) / 16000
    sf.write(path, 0.1 * np.sin(2 * np.pi * 220 * t), 16000)
    return path


def _task(name: str, data_root: Path, output: Path | None = None):
    (cls,) = resolve_tasks(name)
    return cls(data_root, context=TaskContext(output_dir=output or data_root / "out"))


def _assert_inside(samples, root: Path) -> None:
    """No sample asks for, or fingerprints, a file outside ``root``."""
    base = root.resolve()
    for s in samples:
        paths = list(s.files) + [getattr(s.request, "audio", None), getattr(s.request, "prompt", None)]
        for p in filter(None, paths):
            assert Path(p).resolve().is_relative_to(base), f"{s.id} reads {p}, outside {root}"


@pytest.fixture()
def outside(tmp_path) -> Path:
    """A folder beside the data root with a secret transcript, wav and table."""
    folder = tmp_path / "outside"
    folder.mkdir()
    _tone(folder / "secret.wav")
    shutil.copy(MINI_SUITE / "LibriSpeech" / "test-clean" / "1089" / "134686" / "1089-134686-0000.flac",
                folder / "secret.flac")
    (folder / "secret.txt").write_text(f"1089-134686-0000 {SECRET}\n")
    return folder


# ---------------------------------------------------------------------------------------------------------------
# FIFOs and permissions, reader by reader


def test_librispeech_fifo_transcript_is_an_error_record_not_a_hang(tmp_path):
    root = tmp_path / "LibriSpeech"
    shutil.copytree(MINI_SUITE / "LibriSpeech" / "test-clean", root / "test-clean")
    chapter = root / "test-clean" / "1089" / "999998"
    chapter.mkdir()
    os.mkfifo(chapter / "1089-999998.trans.txt")
    utts = within(10, lambda: readers.read_librispeech(root, "test-clean"))
    broken = {u.id: u.error for u in utts if u.error}
    assert list(broken) == ["1089-999998.trans.txt"] and "is a FIFO" in broken["1089-999998.trans.txt"]
    assert sum(1 for u in utts if not u.error) == 12


@pytest.mark.parametrize("task, manifest", [
    ("asr:commonvoice-en", "cv-corpus-15.0-2023-09-08/en/test.tsv"),
    ("asr:voxpopuli-en", "voxpopuli/transcribed_data/en/asr_test.tsv"),
    ("tts:seed-tts-eval-en", "seedtts_testset/en/meta.lst"),
    ("sqa:llama-questions-s2t", "llama-questions/llama_questions_300.tsv"),
    ("sqa:webquestions-s2t", "webquestions/test.jsonl"),
    ("sqa:triviaqa-s2t", "triviaqa/test.jsonl"),
    ("slm:swuggy-dev", "sLM21-dataset/lexical/dev/gold.csv"),
])
def test_a_fifo_manifest_is_one_dataset_error_at_once(tmp_path, task, manifest):
    folder = manifest.split("/")[0]
    shutil.copytree(MINI_SUITE / folder, tmp_path / folder)
    (tmp_path / manifest).unlink()
    os.mkfifo(tmp_path / manifest)
    with pytest.raises(DatasetError, match="FIFO") as info:
        within(10, lambda: _task(task, tmp_path).samples())
    assert manifest.split("/")[-1] in str(info.value) and "\n" not in str(info.value)


def test_zerospeech_files_that_are_fifos_are_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "gold.csv")
    os.mkfifo(tmp_path / "dev.txt")
    with pytest.raises(zr.ScoreFileError, match="gold.csv: cannot open gold file: is a FIFO"):
        within(10, lambda: zr.read_gold(tmp_path / "gold.csv", zr.LEXICAL))
    with pytest.raises(zr.ScoreFileError, match="dev.txt: cannot open submission: is a FIFO"):
        within(10, lambda: zr.read_submission(tmp_path / "dev.txt"))


def _deny(monkeypatch, name: str) -> None:
    """Make opening any file called ``name`` fail as an unreadable file does for a non-root user."""
    from most_eval.data import files as dataset_files

    real_open = os.open

    def fake(path, *args, **kwargs):
        if Path(path).name == name:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(dataset_files.os, "open", fake)


def test_an_unreadable_transcript_is_an_error_record_naming_file_and_reason(tmp_path, monkeypatch):
    shutil.copytree(MINI_SUITE / "LibriSpeech" / "test-clean", tmp_path / "LibriSpeech" / "test-clean")
    _deny(monkeypatch, "1089-134686.trans.txt")
    utts = readers.read_librispeech(tmp_path / "LibriSpeech", "test-clean")
    errors = {u.id: u.error for u in utts if u.error}
    assert errors.pop("1089-134686.trans.txt").endswith("1089-134686.trans.txt: cannot read (Permission denied)")
    assert errors and all("no transcript line in 1089-134686.trans.txt" in e for e in errors.values())


@pytest.mark.parametrize("task, folder, name", [
    ("asr:commonvoice-en", "cv-corpus-15.0-2023-09-08", "test.tsv"),
    ("sqa:triviaqa-s2t", "triviaqa", "test.jsonl"),
    ("slm:sblimp-dev", "sLM21-dataset", "gold.csv"),
])
def test_an_unreadable_manifest_is_one_dataset_error_naming_it(tmp_path, monkeypatch, task, folder, name):
    shutil.copytree(MINI_SUITE / folder, tmp_path / folder)
    _deny(monkeypatch, name)
    with pytest.raises(DatasetError, match=rf"{name}: .*Permission denied") as info:
        _task(task, tmp_path).samples()
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# Nothing outside the root reaches a sample


def test_librispeech_ids_and_symlinks_never_reach_a_file_outside(tmp_path, outside):
    root = tmp_path / "data" / "LibriSpeech"
    chapter = root / "test-clean" / "1089" / "134686"
    chapter.mkdir(parents=True)
    _tone(chapter / "1089-134686-0001.flac")
    (chapter / "1089-134686-0002.flac").symlink_to(outside / "secret.flac")
    (chapter / "1089-134686.trans.txt").write_text(
        "1089-134686-0001 A GOOD LINE\n"
        "1089-134686-0002 A SYMLINK OUT\n"
        f"{outside}/secret AN ABSOLUTE PATH\n"
        "../../../../outside/secret A PATH UP AND OUT\n"
        ".. DOTS\n")
    chapter2 = root / "test-clean" / "121" / "100"
    chapter2.mkdir(parents=True)
    (chapter2 / "121-100.trans.txt").symlink_to(outside / "secret.txt")
    (chapter2 / "1089-134686-0000.flac").symlink_to(outside / "secret.flac")
    utts = readers.read_librispeech(root, "test-clean")
    assert [u.id for u in utts if not u.error] == ["1089-134686-0001"]
    assert all(SECRET not in u.text for u in utts)  # the secret transcript was never read
    for u in utts:
        assert u.audio is None or u.audio.resolve().is_relative_to(root.resolve())
        assert all(f.resolve().is_relative_to(root.resolve()) for f in u.files), (u.id, u.files)


def test_every_reader_keeps_its_samples_inside_the_root(tmp_path, outside):
    """The mini suite with one symlink out per dataset: the samples name no file outside the data root."""
    data = tmp_path / "data"
    shutil.copytree(MINI_SUITE, data, symlinks=True)
    (data / "spoken-storycloze" / "sSC" / "9_correct.wav").symlink_to(outside / "secret.wav")
    shutil.copy(outside / "secret.wav", data / "spoken-storycloze" / "sSC" / "9_incorrect.wav")
    (data / "sLM21-dataset" / "lexical" / "dev" / "strayOut.wav").symlink_to(outside / "secret.wav")
    (data / "webquestions" / "audio" / "0.wav").unlink()
    (data / "webquestions" / "audio" / "0.wav").symlink_to(outside / "secret.wav")
    names = ["asr:librispeech-test-clean", "asr:commonvoice-en", "asr:voxpopuli-en", "tts:seed-tts-eval-en",
             "sqa:llama-questions-s2t", "sqa:webquestions-s2t", "sqa:triviaqa-s2t", "slm:swuggy-dev",
             "slm:sblimp-dev", "slm:sstorycloze", "slm:tstorycloze"]
    for name in names:
        samples = _task(name, data).samples()
        _assert_inside(samples, data)
    errors = {s.id: s.error for s in _task("slm:sstorycloze", data).samples() if s.error}
    assert list(errors) == ["9_correct"] and "escapes the dataset root" in errors["9_correct"]
    errors = {s.id: s.error for s in _task("sqa:webquestions-s2t", data).samples() if s.error}
    assert list(errors) == ["0"] and "escapes the dataset root" in errors["0"]


# ---------------------------------------------------------------------------------------------------------------
# Typed QA fields


def _qa_root(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    for folder in ("webquestions", "triviaqa", "llama-questions"):
        shutil.copytree(MINI_SUITE / folder, data / folder)
    return data


def test_a_number_answer_is_scored_as_its_text(tmp_path):
    data = _qa_root(tmp_path)
    rows = [{"question": "when?", "answers": 1984, "audio": "audio/0.wav"},
            {"question": "which year?", "answers": [1984.0, "nineteen eighty-four"], "audio": "audio/1.wav"},
            {"question": 42, "answers": ["x"], "audio": "audio/2.wav"}]  # a number as question: its text
    (data / "webquestions" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tsv = data / "llama-questions" / "llama_questions_300.tsv"
    lines = tsv.read_text().splitlines()
    lines[1:3] = [lines[1].rsplit("\t", 2)[0] + "\t1984\t1.wav", lines[2].rsplit("\t", 2)[0] + "\t[1984, 8]\t2.wav"]
    tsv.write_text("\n".join(lines) + "\n")
    web = {s.id: s.reference for s in _task("sqa:webquestions-s2t", data).samples()}
    assert web["0"]["answers"] == ["1984"] and web["1"]["answers"] == ["1984", "nineteen eighty-four"]
    assert web["2"]["question"] == "42"
    llama = {s.id: s.reference for s in _task("sqa:llama-questions-s2t", data).samples()}
    assert llama["1"]["answers"] == ["1984"] and llama["2"]["answers"] == ["1984", "8"]
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "dummy", "--model-args", "text=It was 1984.", "--tasks", "sqa:webquestions-s2t",
                   "--data-root", str(data), "--output", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    records = {r["id"]: r for r in read_jsonl(out / "samples" / "sqa_webquestions-s2t.jsonl")}
    assert records["0"]["correct"] == 1.0 and records["1"]["matched"] == "1984" and "error" not in records["2"]


def test_parquet_cells_are_typed_as_json_ones(tmp_path):
    import pandas as pd

    data = _qa_root(tmp_path)
    audio = [{"path": f"audio/{i}.wav"} for i in range(3)]
    (data / "triviaqa" / "test.jsonl").unlink()  # list<int64> aliases (numpy arrays in pandas), one null
    pd.DataFrame({"question": ["q0", "q1", "q2"], "answer": [[1984, 8], [6], None], "audio": audio}
                 ).to_parquet(data / "triviaqa" / "test.parquet")
    (data / "webquestions" / "test.jsonl").unlink()  # a float64 column: integral values and a NaN
    pd.DataFrame({"question": ["q0", "q1", "q2"], "answers": [1984.0, 2.5, float("nan")], "audio": audio}
                 ).to_parquet(data / "webquestions" / "test.parquet")
    trivia = {s.id: s for s in _task("sqa:triviaqa-s2t", data).samples()}
    assert trivia["0"].reference["answers"] == ["1984", "8"] and trivia["1"].reference["answers"] == ["6"]
    assert trivia["2"].error.endswith("test.parquet:row 3: answer is null, not text or a number")
    web = {s.id: s for s in _task("sqa:webquestions-s2t", data).samples()}
    assert web["0"].reference["answers"] == ["1984"] and web["1"].reference["answers"] == ["2.5"]
    assert web["2"].error.endswith("test.parquet:row 3: answer is null, not text or a number")


# ---------------------------------------------------------------------------------------------------------------
# Output names: hostile ids write inside OUTPUT only


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


def test_seed_tts_ids_never_write_outside_the_output_folder(tmp_path):
    sandbox = tmp_path / "sandbox"
    data, out = sandbox / "data", sandbox / "out"
    shutil.copytree(MINI_SUITE / "seedtts_testset", data / "seedtts_testset")
    meta = data / "seedtts_testset" / "en" / "meta.lst"
    prompt = "prompt-wavs/common_voice_en_20010001.wav"
    hostile = ["../../../../escaped", f"{sandbox}/absolute", "..", ".", "a/b", "ok.id", "-f", "x" * 300]
    meta.write_text(meta.read_text() + "".join(f"{i}|hi|{prompt}|Hello number {n}.\n"
                                               for n, i in enumerate(hostile)))
    before = _files(sandbox)
    proc = run_cli("run", "--model", "dummy", "--judge", "dummy", "--tasks", "tts:seed-tts-eval-en",
                   "--data-root", str(data), "--output", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    new = _files(sandbox) - before
    assert new and all(f.startswith("out/") for f in new), sorted(f for f in new if not f.startswith("out/"))
    records = {r["id"]: r for r in read_jsonl(out / "samples" / "tts_seed-tts-eval-en.jsonl")}
    assert set(hostile) <= set(records)
    written = set()
    key = records["ok.id"]["audio"].split("/")[2]  # audio/<task>/<cache key of this model and task config>/
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    for sid in hostile:
        audio = records[sid]["audio"]
        folder, name = audio.rsplit("/", 1)
        assert folder == f"audio/tts_seed-tts-eval-en/{key}" and name not in (".wav", "..wav")
        assert (out / audio).is_file()
        written.add(name)
    assert len(written) == len(hostile)  # one file per id
    assert records["ok.id"]["audio"] == f"audio/tts_seed-tts-eval-en/{key}/ok.id.wav"


def test_spoken_answers_are_written_under_safe_names(tmp_path):
    data = _qa_root(tmp_path)
    shutil.copy(data / "webquestions" / "audio" / "0.wav", data / "webquestions" / "audio" / "...wav")
    (data / "webquestions" / "test.jsonl").write_text(
        json.dumps({"question": "q", "answers": ["beep"], "audio": "audio/...wav"}) + "\n")
    out = tmp_path / "out"
    proc = run_cli("run", "--model", "dummy", "--judge", "dummy", "--model-args", "text=beep", "--tasks",
                   "sqa:webquestions-s2s", "--data-root", str(data), "--output", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    (record,) = read_jsonl(out / "samples" / "sqa_webquestions-s2s.jsonl")
    assert record["id"] == ".." and record["audio"].startswith("audio/sqa_webquestions-s2s/")
    assert record["audio"].rsplit("/", 1)[1] != "...wav" and (out / record["audio"]).is_file()


# ---------------------------------------------------------------------------------------------------------------
# espeak-ng: dataset text never becomes a command-line option


def _espeak_file(tmp_path: Path) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required for the tests (apt-get install espeak-ng); install.sh installs it")
    long_text = tmp_path / "speak-me.txt"
    long_text.write_text("this file must never be spoken " * 40)
    return long_text


def test_offline_baseline_speaks_option_like_text_literally(tmp_path):
    from most_eval.models.offline_baseline import OfflineBaseline

    long_text = _espeak_file(tmp_path)
    model = OfflineBaseline()
    as_option, literal, whole_file = model.synthesize([f"-f{long_text}", f"dash f {long_text}",
                                                       long_text.read_text()])
    assert whole_file.duration > 60  # what "-f FILE" as an option would have produced
    # the text is spoken, path and all (its length varies with pytest's tmp folder), never the file behind it
    assert as_option.duration < whole_file.duration / 3 and abs(as_option.duration - literal.duration) < 5
    assert model.synthesize(["--version"])[0].duration < 3  # an option name is just words
    assert model.synthesize(["nul\0byte"])[0].duration > 0  # cannot be an argv entry; stdin takes it


def test_training_spoken_answers_speak_option_like_text_literally(tmp_path):
    from most_reference import manifests as M

    long_text = _espeak_file(tmp_path)
    records = [M.Instruction("q/1", question_text="say it", answer_text=f"-f{long_text}"),
               M.Instruction("../../evil", question_text="say it", answer_text="hello")]
    assert M.speak_answers(records, tmp_path / "answers") == 2
    info = sf.info(records[0].answer_audio)
    from most_eval.models.offline_baseline import OfflineBaseline

    whole_file = OfflineBaseline().synthesize([long_text.read_text()])[0]
    assert info.duration < whole_file.duration / 3  # the option-like text (path and all), not the 40-line file
    assert all(Path(r.answer_audio).parent == tmp_path / "answers" for r in records)


# ---------------------------------------------------------------------------------------------------------------
# The training data pipeline: per-line typed checks, layouts confined to their folder


def test_training_jsonl_lines_of_the_wrong_type_are_bad_items(tmp_path):
    from most_reference import manifests as M

    _tone(tmp_path / "a.wav")
    lines = [{"audio": "a.wav", "text": "good"},
             {"audio": "a.wav", "text": ["a", "list"]},
             {"audio": 5, "text": "number path"},
             {"audio": "a.wav", "text": "bad duration", "duration": "long"},
             {"audio": "a.wav", "text": "bool start", "start": True},
             [1, 2]]
    manifest = tmp_path / "speech.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines) + "\n{broken\n")
    bad = []
    utts = M.speech_manifest([{"format": "jsonl", "path": manifest}], lambda *a: bad.append(a))
    assert [u.text for u in utts] == ["good"]
    reasons = {b[1]: b[2] for b in bad}
    assert set(reasons) == {f"speech.jsonl:{n}" for n in (2, 3, 4, 5, 6, 8)}
    assert "text is a list" in reasons["speech.jsonl:2"] and "audio path is a number" in reasons["speech.jsonl:3"]
    assert "duration is text" in reasons["speech.jsonl:4"] and "start is a bool" in reasons["speech.jsonl:5"]
    assert "not a JSON object" in reasons["speech.jsonl:6"]


def test_training_qa_and_seedtts_layouts_stay_in_their_folder(tmp_path, outside):
    from most_reference import manifests as M

    data = _qa_root(tmp_path)
    shutil.copytree(MINI_SUITE / "seedtts_testset", data / "seedtts_testset")
    trivia = data / "triviaqa" / "test.jsonl"
    trivia.write_text(trivia.read_text() + "".join(json.dumps(r) + "\n" for r in [
        {"question": "year?", "answer": [1984], "audio": "audio/0.wav"},
        {"question": "bool?", "answer": [True], "audio": "audio/0.wav"},
        {"question": "escape?", "answer": ["x"], "audio": "../../outside/secret.wav"}]))
    llama = data / "llama-questions" / "llama_questions_300.tsv"
    llama.write_text(llama.read_text() + f"Escape?\tx\t{outside}/secret.wav\n")
    (data / "seedtts_testset" / "en" / "prompt-wavs" / "out.wav").symlink_to(outside / "secret.wav")
    meta = data / "seedtts_testset" / "en" / "meta.lst"
    meta.write_text(meta.read_text() + "utt-out|secret|prompt-wavs/out.wav|text\n")
    bad = []
    log = lambda *a: bad.append(a)  # noqa: E731
    ins = M.instructions([{"format": "spoken_qa", "name": "trivia", "path": data / "triviaqa"},
                          {"format": "llama_questions", "path": data / "llama-questions"}], log)
    utts = M.speech_manifest([{"format": "seedtts", "path": data / "seedtts_testset" / "en"}], log)
    assert [i.answer_text for i in ins if i.id.startswith("trivia/")][-1] == "1984"
    reasons = {(b[0], b[1]): b[2] for b in bad}
    assert reasons[("trivia", "test.jsonl:5")].startswith("answer is a bool")
    assert "escapes the dataset root" in reasons[("trivia", "test.jsonl:6")]
    assert "escapes the dataset root" in reasons[("llama_questions", "llama_questions_300.tsv:6")]
    assert "escapes the dataset root" in reasons[("seedtts", "meta.lst:5")]
    for path in [i.question_audio for i in ins] + [u.audio for u in utts]:
        assert Path(path).resolve().is_relative_to(data.resolve()), path
