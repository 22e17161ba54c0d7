"""Training manifests for MoST: speech, text and instruction sources read into plain records.

Every speech corpus becomes a list of `Utterance`s (id, audio file, transcript, optional segment), read from the
layout users have on disk (each corpus as its publisher distributes it):

    librispeech   LibriSpeech/<split>/<spk>/<chap>/<spk>-<chap>.trans.txt + .flac
    libriheavy    libriheavy_cuts_<subset>.jsonl.gz (lhotse cuts: start, duration, recording.sources[0].source,
                  supervisions[0].custom.texts = [cased+punctuated, upper-case]); relative sources resolve
                  against `audio_root` (the LibriLight folder)
    common_voice  cv-corpus-<ver>/en/<split>.tsv (path, sentence) + clips/
    voxpopuli     voxpopuli/transcribed_data/en/asr_<split>.tsv (id, normalized_text) + <year>/<id>.ogg
    jsonl         any audio+transcript JSONL: {"audio" | "audio_path" | "audio_filepath" | "path" | "wav",
                  "text" | "sentence" | "transcript" | "transcription" | "normalized_text", optional "id",
                  "start" / "offset", "duration"}; relative audio paths resolve against the file's folder
    seedtts       seedtts_testset/en/meta.lst (prompt wav + prompt text), llama_questions / spoken_qa (question
                  audio + question text): the mini suite's other speech, for the tiny recipe

Text corpora (text-LM share): `txt` (one document per line, .gz allowed), `jsonl` (field `text`), or
`transcripts` (the transcripts of the speech sources). Instructions: JSONL records `{"id", "question_text",
"question_audio", "answer_text", "answer_audio"}` (either question form, either or both answer forms; relative
paths resolve against the file's folder), or the QA layouts `llama_questions` (TSV) and `spoken_qa` (WebQuestions /
TriviaQA JSONL, first answer alias).

Bad data is never fatal: an empty transcript or a missing file is dropped when the manifest is read, an audio file
that does not decode is dropped when it is loaded (unit extraction, training); each is written to the bad-data log
(`BadDataLog`, JSONL: source, id, reason) and the epoch goes on. Files are read through `most_eval.data.files`,
as the harness reads them: a manifest that is not a regular file (a FIFO, a directory) or cannot be read is a
`DatasetError` naming it, never a blocking read; a field of the wrong type (a list as transcript, text as duration,
a bool as answer) is a bad item naming the file and line; the official layouts (LibriSpeech, Common Voice,
VoxPopuli, Seed-TTS, the QA sets) never name a file outside their folder. Manifests you write yourself (`jsonl`,
`libriheavy`, instruction JSONL) are configuration: their absolute audio paths are honoured.

Units of these records: most_reference.units; the task tables and micro-batches built from both: most_reference.data.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from most_eval.data.files import (file_problem, manifest_path, number_field, open_regular, output_name, safe_path,
                                     text_field, text_list)
from most_eval.data.tables import BadLine, read_jsonl, read_lines, read_table
from most_eval.core.errors import DatasetError
from most_eval.data import speech_corpora as asr_readers

logger = logging.getLogger(__name__)


# -----------------------------------------------------------------------------------------------------------------
# Records


@dataclass
class Utterance:
    """One speech segment with its transcript. `start` / `duration` in seconds (None: the whole file)."""

    id: str
    audio: str
    text: str
    start: float = 0.0
    duration: float | None = None


@dataclass
class Instruction:
    """A question (spoken, written or both) with its answer (text, speech or both)."""

    id: str
    question_text: str = ""
    question_audio: str = ""
    answer_text: str = ""
    answer_audio: str = ""


@dataclass
class BadItem:
    """A manifest entry a reader could not use (undecodable line, unreadable cut): reported, never trained on."""

    id: str
    reason: str


class BadDataLog:
    """Where skipped data is reported: a JSONL file (appended, one line per item) and the `logging` warning stream."""

    def __init__(self, path: str | Path | None = None, rank: int = 0):
        self.path = Path(path) if path else None
        self.rank = rank
        self.count = 0

    def __call__(self, source: str, item_id: str, reason: str) -> None:
        self.count += 1
        logger.warning("skipping %s %s: %s", source, item_id, reason)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = json.dumps({"source": source, "id": item_id, "reason": reason, "rank": self.rank,
                               "time": round(time.time(), 3)})
            with open(self.path, "a") as f:
                f.write(line + "\n")


def warn_only(source, item_id, reason):
    """The default place for skipped data when no `BadDataLog` is given: the `logging` warning stream only."""
    logger.warning("skipping %s %s: %s", source, item_id, reason)


# -----------------------------------------------------------------------------------------------------------------
# Speech manifests


def _from_harness(utterances) -> Iterator[Utterance]:
    """The harness's dataset readers (most_eval.data.speech_corpora) as training items: errors become BadItems."""
    for u in utterances:
        yield BadItem(u.id, u.error) if u.error else Utterance(u.id, str(u.audio), u.text)


def read_librispeech(path, splits=("train-clean-100",), **_) -> Iterator[Utterance]:
    """`path` = the LibriSpeech folder; one or more splits (the harness's reader, any split)."""
    for split in [splits] if isinstance(splits, str) else splits:
        yield from _from_harness(asr_readers.read_librispeech(Path(path), split))


def _numbered_lines(path: Path, errors: str = "strict") -> Iterator[tuple[int, str] | BadItem]:
    """(1-based line number, line) of the non-blank lines of a text file, gzip-compressed or not; a line that is not
    UTF-8 comes back as a BadItem (with ``errors="strict"``). The file must be a regular file: a FIFO or a directory
    is a DatasetError naming it at once, as is a read error (a damaged gzip stream)."""
    with open_regular(path) as raw:
        stream = gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw
        try:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    yield number, line.decode("utf-8", errors)
                except UnicodeDecodeError as exc:
                    yield BadItem(f"{path.name}:{number}", f"not valid UTF-8 (byte {exc.start})")
        except (OSError, EOFError) as exc:
            raise DatasetError(f"{path}: cannot read ({exc})") from None


def _audio_path(value, base: Path) -> str:
    """A manifest's audio path as text; relative paths resolve against ``base``, absolute ones are kept."""
    audio = text_field(value, "audio path", numbers=False)
    return audio if not audio or os.path.isabs(audio) else str(base / audio)


def read_libriheavy(path, audio_root=None, text_index=0, **_) -> Iterator[Utterance]:
    """lhotse cut manifest (.jsonl or .jsonl.gz). `text_index` 0: cased+punctuated text, 1: upper-case."""
    path = Path(path)
    base = Path(audio_root) if audio_root else path.parent
    for entry in _numbered_lines(path):
        if isinstance(entry, BadItem):
            yield entry
            continue
        number, line = entry
        try:
            cut = json.loads(line)
            sup = cut["supervisions"][0]
            texts = (sup.get("custom") or {}).get("texts") or [sup.get("text", "")]
            text = text_field(texts[min(text_index, len(texts) - 1)] or "", "text")
            uid = text_field(cut.get("id") or f"{path.name}:{number}", "id")
            audio = _audio_path(cut["recording"]["sources"][0]["source"], base)
            yield Utterance(uid, audio, text, number_field(cut.get("start", 0.0), "start"),
                            number_field(cut["duration"], "duration"))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            yield BadItem(f"{path.name}:{number}", f"unreadable cut ({type(exc).__name__}: {exc})")


def read_common_voice(path, split="train", **_) -> Iterator[Utterance]:
    """`path` = cv-corpus-<ver>/en (the harness's reader, any split)."""
    yield from _from_harness(asr_readers.read_common_voice(Path(path), split))


def read_voxpopuli(path, split="train", column="normalized_text", **_) -> Iterator[Utterance]:
    """`path` = the voxpopuli folder (transcribed_data/en inside; the harness's reader, any split)."""
    yield from _from_harness(asr_readers.read_voxpopuli(Path(path), split, column))


AUDIO_KEYS = ("audio", "audio_path", "audio_filepath", "path", "wav")
TEXT_KEYS = ("text", "sentence", "transcript", "transcription", "normalized_text")


def _first(record: dict, keys):
    for key in keys:
        if record.get(key):
            return record[key]
    return ""


def read_speech_jsonl(path, audio_root=None, **_) -> Iterator[Utterance]:
    """Generic audio+transcript JSONL (.gz allowed); key names in AUDIO_KEYS / TEXT_KEYS."""
    path = Path(path)
    base = Path(audio_root) if audio_root else path.parent
    for entry in _numbered_lines(path):
        if isinstance(entry, BadItem):
            yield entry
            continue
        number, line = entry
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            yield BadItem(f"{path.name}:{number}", f"bad JSON ({exc})")
            continue
        try:
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            duration = rec.get("duration")
            yield Utterance(text_field(rec.get("id") or f"{path.stem}:{number}", "id"),
                            _audio_path(_first(rec, AUDIO_KEYS), base), text_field(_first(rec, TEXT_KEYS), "text"),
                            number_field(rec.get("start", rec.get("offset", 0.0)) or 0.0, "start"),
                            number_field(duration, "duration") if duration is not None else None)
        except ValueError as exc:  # a field of the wrong type
            yield BadItem(f"{path.name}:{number}", str(exc))


def read_seedtts(path, **_) -> Iterator[Utterance]:
    """seedtts_testset/en: meta.lst `utt|prompt_text|prompt_wav|infer_text` -> (prompt wav, prompt text)."""
    meta = manifest_path(path, "meta.lst", "Seed-TTS-eval test list")
    for entry in read_lines(meta):
        if isinstance(entry, BadLine):
            yield BadItem(f"meta.lst:{entry.line}", entry.reason)
            continue
        number, line = entry
        fields = line.split("|")
        if len(fields) >= 3:
            try:
                yield Utterance(Path(fields[2]).stem, str(safe_path(meta.parent, fields[2])), fields[1])
            except ValueError as exc:  # a prompt wav path out of the folder
                yield BadItem(f"meta.lst:{number}", str(exc))


def read_llama_questions_speech(path, **_) -> Iterator[Utterance]:
    """llama-questions: the spoken questions with their text (ASR / TTS pairs)."""
    for ins in read_llama_questions(path):
        yield ins if isinstance(ins, BadItem) else Utterance(ins.id, ins.question_audio, ins.question_text)


def read_spoken_qa_speech(path, **_) -> Iterator[Utterance]:
    """WebQuestions / TriviaQA test.jsonl + audio/: the spoken questions with their text."""
    for ins in read_spoken_qa(path):
        yield ins if isinstance(ins, BadItem) else Utterance(ins.id, ins.question_audio, ins.question_text)


SPEECH_READERS: dict[str, Callable[..., Iterable[Utterance]]] = {
    "librispeech": read_librispeech,
    "libriheavy": read_libriheavy,
    "common_voice": read_common_voice,
    "voxpopuli": read_voxpopuli,
    "jsonl": read_speech_jsonl,
    "seedtts": read_seedtts,
    "llama_questions": read_llama_questions_speech,
    "spoken_qa": read_spoken_qa_speech,
}


def speech_manifest(sources: list[dict], bad=warn_only) -> list[Utterance]:
    """Utterances of every source (`{format, path, name?, ...reader options}`), ids prefixed `<name>/`.

    Dropped (and reported to `bad`): empty transcripts, missing audio files, repeated ids.
    """
    out, seen = [], set()
    for spec in sources:
        spec = dict(spec)
        fmt = spec.pop("format")
        name = spec.pop("name", None) or fmt
        if fmt not in SPEECH_READERS:
            raise ValueError(f"unknown speech format {fmt!r} (known: {', '.join(SPEECH_READERS)})")
        for utt in SPEECH_READERS[fmt](**spec):
            if isinstance(utt, BadItem):
                bad(name, utt.id, utt.reason)
                continue
            uid = f"{name}/{utt.id}"
            if not utt.text.strip():
                bad(name, utt.id, "empty transcript")
            elif not utt.audio or file_problem(utt.audio):
                bad(name, utt.id, f"audio file {file_problem(utt.audio) if utt.audio else 'not found'}: "
                                  f"{utt.audio or '(none listed)'}")
            elif uid in seen:
                bad(name, utt.id, "id listed twice")
            else:
                seen.add(uid)
                out.append(Utterance(uid, utt.audio, utt.text.strip(), utt.start, utt.duration))
    return out


def write_manifest(records: Iterable, path: str | Path) -> Path:
    """JSONL, one dataclass per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for rec in records:
            f.write(json.dumps(asdict(rec), ensure_ascii=False) + "\n")
    return path


# -----------------------------------------------------------------------------------------------------------------
# Text corpora and instructions


def text_corpus(sources: list[dict], speech: list[Utterance], bad=warn_only) -> list[tuple[str, str]]:
    """(id, document) pairs of every text source; empty documents are reported and dropped."""
    docs = []
    for spec in sources:
        spec = dict(spec)
        fmt = spec.pop("format")
        name = spec.pop("name", None) or fmt
        if fmt == "transcripts":
            items = [(u.id, u.text) for u in speech]
        elif fmt in ("txt", "jsonl"):
            path = Path(spec["path"])
            items = []
            for number, line in _numbered_lines(path, errors="replace"):  # blank lines separate, never bad data
                if fmt == "txt":
                    items.append((f"{name}/{number}", line.strip()))
                    continue
                try:
                    rec = json.loads(line)
                    if not isinstance(rec, dict):
                        raise ValueError("not a JSON object")
                    items.append((f"{name}/{number}", text_field(rec.get(spec.get("field", "text"), ""), "text")))
                except json.JSONDecodeError as exc:
                    bad(name, str(number), f"bad JSON ({exc})")
                except ValueError as exc:  # not an object, or the field is not text
                    bad(name, str(number), str(exc))
        else:
            raise ValueError(f"unknown text format {fmt!r} (txt, jsonl, transcripts)")
        for doc_id, text in items:
            if text.strip():
                docs.append((doc_id, text.strip()))
            elif fmt != "txt":  # blank lines of a .txt are separators, not bad data
                bad(name, doc_id, "empty document")
    return docs


def read_instruction_jsonl(path, **_) -> Iterator[Instruction]:
    """Instruction records (module docstring); relative audio paths resolve against the file's folder."""
    path = Path(path)
    for entry in read_jsonl(path):
        if isinstance(entry, BadLine):
            yield BadItem(f"{path.name}:{entry.line}", entry.reason)
            continue
        number, rec = entry
        answer = rec.get("answer") if isinstance(rec.get("answer"), str) else ""
        try:
            yield Instruction(text_field(rec.get("id") or f"{path.stem}:{number}", "id"),
                              text_field(rec.get("question_text") or rec.get("question") or "", "question_text"),
                              _audio_path(rec.get("question_audio") or "", path.parent),
                              text_field(rec.get("answer_text") or answer or "", "answer_text"),
                              _audio_path(rec.get("answer_audio") or "", path.parent))
        except ValueError as exc:
            yield BadItem(f"{path.name}:{number}", str(exc))


def read_llama_questions(path, **_) -> Iterator[Instruction]:
    """llama_questions_300.tsv (Questions, Answer, Wav Filename) + wavs."""
    root = Path(path)
    tsv = manifest_path(root, "llama_questions_300.tsv", "Llama Questions table")
    for entry in read_table(tsv, "\t", required=("Questions", "Answer", "Wav Filename")):
        if isinstance(entry, BadLine):
            yield BadItem(f"llama_questions_300.tsv:{entry.line}", entry.reason)
            continue
        number, row = entry
        try:
            wav = str(safe_path(root, row["Wav Filename"]))
        except ValueError as exc:  # a wav path out of the folder
            yield BadItem(f"llama_questions_300.tsv:{number}", str(exc))
            continue
        yield Instruction(Path(row["Wav Filename"]).stem, row["Questions"], wav, row["Answer"])


def read_spoken_qa(path, **_) -> Iterator[Instruction]:
    """WebQuestions / TriviaQA as test.jsonl (question, answers | answer, audio); the first answer alias."""
    root = Path(path)
    jsonl = manifest_path(root, "test.jsonl", "question list")
    for entry in read_jsonl(jsonl):
        if isinstance(entry, BadLine):
            yield BadItem(f"test.jsonl:{entry.line}", entry.reason)
            continue
        number, rec = entry
        try:
            answers = text_list(rec.get("answers", rec.get("answer", "")), "answer")
            audio = text_field(rec.get("audio") or "", "audio path", numbers=False)
            yield Instruction(str(number - 1), text_field(rec.get("question", ""), "question"),
                              str(safe_path(root, audio)) if audio else "", answers[0] if answers else "")
        except ValueError as exc:  # a field of the wrong type, an audio path out of the folder
            yield BadItem(f"test.jsonl:{number}", str(exc))


INSTRUCTION_READERS = {"jsonl": read_instruction_jsonl, "llama_questions": read_llama_questions,
                       "spoken_qa": read_spoken_qa}


def speak_answers(records: list[Instruction], out_dir: str | Path, voice: str = "en-us", bad=warn_only) -> int:
    """Spoken answers for records that only have a text answer, synthesised with espeak-ng into `out_dir` (kept
    between runs). MoST's stage-2 spoken instructions are TTS output too (Parler-TTS in the release); this is the
    offline stand-in the tiny recipe uses. Without espeak-ng the records keep their text answers only (reported).
    Returns how many records gained a spoken answer."""
    import shutil
    import subprocess

    todo = [r for r in records if r.answer_text.strip() and not r.answer_audio]
    if not todo:
        return 0
    if shutil.which("espeak-ng") is None:
        bad("speak_answers", f"{len(todo)} records", "espeak-ng not on PATH: no spoken answers synthesised")
        return 0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = 0
    for rec in todo:
        wav = out_dir / output_name(rec.id.replace("/", "__"), ".wav")  # ids are data: one safe file name
        if not wav.is_file():
            tmp = wav.with_suffix(".tmp.wav")
            # the answer goes on stdin: on the command line, text such as "-f/etc/passwd" would be an option
            result = subprocess.run(["espeak-ng", "-v", voice, "-w", str(tmp), "--stdin"], input=rec.answer_text,
                                    capture_output=True, text=True)
            if result.returncode != 0 or not tmp.is_file():
                bad("speak_answers", rec.id, f"espeak-ng failed: {result.stderr.strip()[:200]}")
                continue
            tmp.replace(wav)
        rec.answer_audio = str(wav)
        done += 1
    return done


def instructions(sources: list[dict], bad=warn_only, spoken_answers_dir: str | Path | None = None) -> list[Instruction]:
    """Instruction records of every source; records without a question or an answer are reported and dropped.

    A source with `speak_answers: {voice: en-us}` gets spoken answers synthesised (`speak_answers`) into
    `spoken_answers_dir/<name>/`.
    """
    out = []
    for spec in sources:
        spec = dict(spec)
        fmt = spec.pop("format")
        name = spec.pop("name", None) or fmt
        speak = spec.pop("speak_answers", None)
        first = len(out)
        if fmt not in INSTRUCTION_READERS:
            raise ValueError(f"unknown instruction format {fmt!r} (known: {', '.join(INSTRUCTION_READERS)})")
        for ins in INSTRUCTION_READERS[fmt](**spec):
            if isinstance(ins, BadItem):
                bad(name, ins.id, ins.reason)
                continue
            ins.id = f"{name}/{ins.id}"
            for field_name in ("question_audio", "answer_audio"):
                value = getattr(ins, field_name)
                if value and not Path(value).is_file():
                    bad(name, ins.id, f"{field_name} not found: {value}")
                    setattr(ins, field_name, "")
            if not (ins.question_text.strip() or ins.question_audio):
                bad(name, ins.id, "no question")
            elif not (ins.answer_text.strip() or ins.answer_audio):
                bad(name, ins.id, "no answer")
            else:
                out.append(ins)
        if speak:
            if spoken_answers_dir is None:
                raise ValueError("speak_answers needs a folder for the synthesised answers")
            speak_answers(out[first:], Path(spoken_answers_dir) / name, dict(speak).get("voice", "en-us"), bad)
    return out
