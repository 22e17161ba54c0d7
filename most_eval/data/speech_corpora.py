"""Readers of the ASR test sets in their official on-disk layouts -> utterances with stable ids.

* LibriSpeech (SLR12): ``LibriSpeech/<split>/<spk>/<chap>/<spk>-<chap>.trans.txt`` + ``<utt-id>.flac``.
* VoxPopuli English ASR: ``voxpopuli/transcribed_data/en/asr_test.tsv`` + ``<year>/<id>.ogg``.
* Common Voice English: ``cv-corpus-<version>/en/test.tsv`` (``path``, ``sentence``) + ``clips/<path>``.

Nothing is dropped: a transcript line whose audio is missing, an audio file without a transcript line, an undecodable
line or a path that escapes the dataset root all come back as utterances with ``error`` set. Paths and manifests go
through :mod:`most_eval.data.files`: an id with ``/`` or ``..``, an absolute path, a symlink out of the dataset
folder, a FIFO or a directory where a file should be are error records, never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from most_eval.core.audio import audio_duration
from most_eval.data.files import file_problem, manifest_path, plain_name, safe_path, text_field
from most_eval.data.hf_source import audio_file, read_source
from most_eval.data.tables import BadLine, read_lines, read_table
from most_eval.core.errors import DatasetError


@dataclass
class Utterance:
    """One listed utterance: id, audio file, reference text, and the reader's error if it is unusable."""

    id: str
    audio: Path | None
    text: str
    error: str | None = None
    files: tuple[Path, ...] = ()
    duration: float = 0.0


def _with_audio(uid: str, audio: Path, text: str, manifest: Path) -> Utterance:
    problem = file_problem(audio)
    if problem:
        return Utterance(uid, None, text, f"{audio}: audio file listed in {manifest.name} {problem}", (manifest,))
    return Utterance(uid, audio, text, None, (manifest, audio), audio_duration(audio))


def read_librispeech(root: Path, split: str) -> list[Utterance]:
    """Utterances of ``root/<split>`` (``root`` = the ``LibriSpeech`` folder), sorted by id."""
    split_dir = root / split
    if not split_dir.is_dir():
        raise DatasetError(f"{split_dir}: LibriSpeech split folder not found")
    utts: dict[str, Utterance] = {}
    for trans in sorted(split_dir.glob("*/*/*.trans.txt")):
        chapter = trans.parent.relative_to(split_dir).as_posix()
        problem = file_problem(trans, split_dir)  # a symlink out of the split, a FIFO, a directory ...
        try:
            lines = [] if problem else list(read_lines(trans))
        except DatasetError as exc:
            problem = str(exc).removeprefix(f"{trans}: ")
        if problem:  # one error record for the transcript file; the other chapters go on
            utts[trans.name] = Utterance(trans.name, None, "", f"{trans}: {problem}")
            continue
        for entry in lines:
            if isinstance(entry, BadLine):
                uid = entry.raw.split(b" ", 1)[0].decode("ascii", "replace") or f"{trans.name}:{entry.line}"
                utts[uid] = Utterance(uid, None, "", str(entry), (trans,))
                continue
            number, line = entry
            uid, _, text = line.partition(" ")
            if uid in utts:
                utts[uid] = Utterance(uid, None, text, f"{trans}: utterance id {uid} listed twice", (trans,))
                continue
            try:
                audio = safe_path(split_dir, f"{chapter}/{plain_name(uid, 'utterance id')}.flac")
            except ValueError as exc:  # "..", "/", an absolute path, a symlink out of the split
                uid = uid or f"{trans.name}:{number}"
                utts[uid] = Utterance(uid, None, text, f"{trans}:{number}: {exc}", (trans,))
                continue
            utts[uid] = _with_audio(uid, audio, text.strip(), trans)
    for audio in sorted(split_dir.glob("*/*/*.flac")):
        if audio.stem not in utts:
            readable = not file_problem(audio, split_dir)  # never hash a FIFO or a file outside the split
            utts[audio.stem] = Utterance(audio.stem, None, "", f"{audio}: no transcript line in "
                                         f"{audio.stem.rsplit('-', 1)[0]}.trans.txt", (audio,) if readable else ())
    if not utts:
        raise DatasetError(f"{split_dir}: no *.trans.txt transcripts found")
    return [utts[k] for k in sorted(utts)]


def read_voxpopuli(root: Path, split: str = "test", column: str = "normalized_text") -> list[Utterance]:
    """Utterances of ``root/transcribed_data/en/asr_<split>.tsv`` (``root`` = the ``voxpopuli`` folder)."""
    base = root / "transcribed_data" / "en"
    tsv = manifest_path(base, f"asr_{split}.tsv", "VoxPopuli transcript table")
    utts = []
    for entry in read_table(tsv, "\t", required=("id", column)):
        if isinstance(entry, BadLine):
            utts.append(Utterance(f"{tsv.name}:{entry.line}", None, "", str(entry), (tsv,)))
            continue
        number, row = entry
        uid = row["id"] or f"{tsv.name}:{number}"
        try:
            audio = safe_path(base, f"{uid[:4]}/{plain_name(row['id'])}.ogg")
        except ValueError as exc:
            utts.append(Utterance(uid, None, row[column], f"{tsv}:{number}: {exc}", (tsv,)))
            continue
        utts.append(_with_audio(uid, audio, row[column], tsv))
    return utts


def find_common_voice(data_root: Path, version: str | None = None) -> Path:
    """The ``cv-corpus-*/en`` folder under ``data_root`` (the newest version unless one is named)."""
    pattern = f"cv-corpus-{version}*/en" if version else "cv-corpus-*/en"
    found = sorted(p for p in data_root.glob(pattern) if p.is_dir())
    if not found:
        raise DatasetError(f"{data_root}/{pattern}: Common Voice English folder not found")
    return found[-1]


def common_voice_corpus(data_root: Path, version: str | None = None) -> str | None:
    """The ``cv-corpus-<version>`` folder name a Common Voice task reads (for its config), None when absent."""
    try:
        return find_common_voice(data_root, version).parent.name
    except DatasetError:
        return None


def read_common_voice(root: Path, split: str = "test") -> list[Utterance]:
    """Utterances of ``root/<split>.tsv`` (``root`` = ``cv-corpus-<ver>/en``); audio under ``clips/``."""
    tsv = manifest_path(root, f"{split}.tsv", "Common Voice table")
    utts = []
    for entry in read_table(tsv, "\t", required=("path", "sentence")):
        if isinstance(entry, BadLine):
            utts.append(Utterance(f"{tsv.name}:{entry.line}", None, "", str(entry), (tsv,)))
            continue
        number, row = entry
        uid = Path(row["path"]).stem or f"{tsv.name}:{number}"
        try:
            audio = safe_path(root / "clips", row["path"])
        except ValueError as exc:
            utts.append(Utterance(uid, None, row["sentence"], f"{tsv}:{number}: {exc}", (tsv,)))
            continue
        utts.append(_with_audio(uid, audio, row["sentence"], tsv))
    return utts


def read_hf_utterances(source: Path, id_column: str, text_column: str, extract_dir: Path,
                       id_from_path: bool = False) -> list[Utterance]:
    """Utterances of one split in Hugging Face form (``--task-args source=PATH``; see :mod:`most_eval.data.hf_source`):
    the same ids, texts and error records as the folder layouts. ``id_from_path``: the id is the stem of the id
    column (Common Voice's ``path``)."""
    data = read_source(source, (id_column, text_column, "audio"))
    utts = []
    for row in data.rows:
        raw_id = row.cells[id_column]
        try:
            uid = text_field(raw_id, id_column)
            uid = Path(uid).stem if id_from_path else uid
            plain_name(uid, id_column)
        except ValueError as exc:
            utts.append(Utterance(f"{Path(row.where).name}", None, "", f"{row.where}: {exc}", data.files))
            continue
        try:
            text = text_field(row.cells[text_column], text_column)
            audio = audio_file(row.cells["audio"], data.root, uid, extract_dir)
        except ValueError as exc:
            utts.append(Utterance(uid, None, "", f"{row.where}: {exc}", data.files))
            continue
        problem = file_problem(audio)
        if problem:
            utts.append(Utterance(uid, None, text, f"{audio}: audio of {row.where} {problem}", data.files))
            continue
        embedded = isinstance(row.cells["audio"], dict) and row.cells["audio"].get("bytes")
        files = data.files if embedded else (*data.files, audio)  # embedded audio is hashed with its shard
        utts.append(Utterance(uid, audio, text, None, files, audio_duration(audio)))
    return utts
