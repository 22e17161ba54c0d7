#!/usr/bin/env python3
"""Generate the bundled mini evaluation suite (``most_eval/mini_suite/``).

The mini suite is a tiny, fully synthetic stand-in for every dataset the harness reads.  Each dataset sits
in its *official* on-disk layout, directly under the suite root, so the suite root can be passed as
``--data-root``.  All speech is synthesised with espeak-ng (several English voices act as "speakers"),
resampled with soxr, trimmed, peak-normalised and written in the format the real distribution uses.

Regenerate (deterministic; same tool versions give byte-identical files, see ``MANIFEST.sha256``)::

    python scripts/make_mini_suite.py                 # rewrites most_eval/mini_suite/
    python scripts/make_mini_suite.py --out /tmp/ms   # anywhere else

Requirements: the ``espeak-ng`` binary on PATH, numpy, soxr, soundfile with libsndfile >= 1.1 (MP3 writing).

Layouts produced (folder names are the official ones):

* ``LibriSpeech/{SPEAKERS.TXT,CHAPTERS.TXT}``, ``LibriSpeech/test-{clean,other}/<spk>/<chap>/<spk>-<chap>-<utt4>.flac``
  and ``<spk>-<chap>.trans.txt`` (16 kHz FLAC; upper-case transcripts, apostrophes only).
* ``voxpopuli/transcribed_data/en/<year>/<id>.ogg`` + ``voxpopuli/transcribed_data/en/asr_test.tsv``
  (16 kHz Ogg Vorbis).  Real VoxPopuli ids contain colons (``..._20180612-16:55:23_3``); ours drop them
  (``..._20180612-165523_3``) so the files are portable.
* ``cv-corpus-15.0-2023-09-08/en/test.tsv`` + ``clips/common_voice_en_<n>.mp3`` (48 kHz MP3).
* ``seedtts_testset/en/meta.lst`` (``utt|prompt_text|prompt_wav|infer_text``) + ``prompt-wavs/*.wav`` (16 kHz).
* ``sLM21-dataset/{lexical,syntactic}/dev/<stem>.wav`` + ``gold.csv`` (ZeroSpeech 2021 sLM21; 16 kHz PCM16).
* ``spoken-storycloze/{sSC,tSC}/<idx>_{correct,incorrect}.{wav,txt}`` (16 kHz PCM16).
* ``llama-questions/llama_questions_300.tsv`` (CRLF) + ``llama-questions/<n>.wav``.
* ``webquestions/test.jsonl`` and ``triviaqa/test.jsonl`` + ``audio/<i>.wav``.  The real spoken WebQuestions /
  TriviaQA are HF parquet datasets; the harness's reader also accepts JSONL records with the same fields
  (``question``, ``answers`` / ``answer`` as lists of aliases, ``audio`` as a path relative to the JSONL file),
  which is what the mini suite ships.

Determinism: every sentence, voice, speed, id and file stem is fixed in this file (stems come from a seeded
``random.Random``).  libsndfile gives each Ogg stream a random serial number; we overwrite it with a value
derived from the file name and recompute the page CRCs, so OGG output is reproducible too.  MP3 (LAME via
libsndfile), FLAC and WAV output is deterministic as written.  Byte equality across machines still requires the
same espeak-ng, libsndfile and soxr versions; they are recorded in the generated README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import string
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "most_eval" / "mini_suite"
SIZE_LIMIT_BYTES = 4 * 1024 * 1024

PEAK = 0.89  # about -1 dBFS
LEAD_S, TAIL_S = 0.03, 0.04  # silence kept around the speech after trimming
MAX_PAUSE_S = 0.10  # longer pauses inside an utterance (espeak-ng's sentence breaks) are shortened to this
TRIM_REL_THRESHOLD = 0.02  # samples below 2 % of the peak count as silence for trimming

# the mini suite's contents (speakers, sentences, questions): mini_suite_contents.py, next to this script
sys.path.insert(0, str(Path(__file__).resolve().parent))
from mini_suite_contents import (  # noqa: E402
    SPEAKERS,
    LIBRISPEECH,
    VOXPOPULI,
    VOXPOPULI_TSV_HEADER,
    CV_VERSION_DIR,
    COMMONVOICE,
    CV_TSV_HEADER,
    SEEDTTS,
    LEXICAL,
    SLM_VOICES,
    LEXICAL_HEADER,
    SYNTACTIC,
    SYNTACTIC_HEADER,
    SSC_STORIES,
    TSC_STORIES,
    LLAMA_QUESTIONS,
    WEBQUESTIONS,
    TRIVIAQA,
    STEM_SEED,
    STEM_LEN,
)


# --------------------------------------------------------------------------------------------------------------
# Audio helpers
# --------------------------------------------------------------------------------------------------------------
def tool_versions() -> dict[str, str]:
    out = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True, text=True).stdout
    m = re.search(r"text-to-speech:\s*(\S+)", out)
    return {
        "espeak-ng": m.group(1) if m else out.strip().split("\n")[0],
        "libsndfile": sf.__libsndfile_version__,
        "soxr": soxr.__version__,
    }


def synth(text: str, speaker: str, rate: int) -> np.ndarray:
    """espeak-ng -> resample to `rate` mono -> trim silence -> peak-normalise -> int16."""
    voice, speed, _ = SPEAKERS[speaker]
    with tempfile.TemporaryDirectory() as td:
        wav = Path(td) / "tts.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text],
                       check=True, capture_output=True)
        data, sr = sf.read(str(wav), dtype="int16", always_2d=True)
    x = data.astype(np.float64).mean(axis=1) / 32768.0
    y = np.asarray(soxr.resample(x, sr, rate), dtype=np.float64)
    mag = np.abs(y)
    peak = float(mag.max())
    if peak <= 0.0:
        raise RuntimeError(f"espeak-ng produced silence for {text!r} ({voice})")
    loud = np.flatnonzero(mag > TRIM_REL_THRESHOLD * peak)
    start = max(0, int(loud[0]) - int(LEAD_S * rate))
    end = min(len(y), int(loud[-1]) + 1 + int(TAIL_S * rate))
    y = shorten_pauses(y[start:end], rate, TRIM_REL_THRESHOLD * peak)
    y = y * (PEAK / float(np.abs(y).max()))
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)


def shorten_pauses(y: np.ndarray, rate: int, threshold: float) -> np.ndarray:
    """Cut every run of silent 10 ms frames longer than MAX_PAUSE_S down to MAX_PAUSE_S (keeping its edges)."""
    hop = rate // 100
    n = len(y) // hop
    silent = np.abs(y[:n * hop]).reshape(n, hop).max(axis=1) <= threshold
    keep_frames = int(round(MAX_PAUSE_S * 100))
    pieces, cursor, i = [], 0, 0
    while i < n:
        if not silent[i]:
            i += 1
            continue
        j = i
        while j < n and silent[j]:
            j += 1
        if i > 0 and j < n and j - i > keep_frames:  # internal pause only; the ends are handled by trimming
            head = keep_frames // 2
            cut_from, cut_to = (i + head) * hop, (j - (keep_frames - head)) * hop
            pieces.append(y[cursor:cut_from])
            cursor = cut_to
        i = j
    pieces.append(y[cursor:])
    return np.concatenate(pieces)


_CRC_TABLE: list[int] = []


def _ogg_crc(data: bytes) -> int:
    if not _CRC_TABLE:
        for i in range(256):
            r = i << 24
            for _ in range(8):
                r = ((r << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if r & 0x80000000 else (r << 1) & 0xFFFFFFFF
            _CRC_TABLE.append(r)
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[((crc >> 24) & 0xFF) ^ byte]
    return crc


def fix_ogg_serial(data: bytes, serial: int) -> bytes:
    """Replace the (random) Ogg bitstream serial number in every page and recompute the page CRCs."""
    out = bytearray(data)
    pos = 0
    while pos < len(out):
        if out[pos:pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        nseg = out[pos + 26]
        length = 27 + nseg + sum(out[pos + 27:pos + 27 + nseg])
        page = bytearray(out[pos:pos + length])
        page[14:18] = serial.to_bytes(4, "little")
        page[22:26] = b"\0\0\0\0"
        page[22:26] = _ogg_crc(bytes(page)).to_bytes(4, "little")
        out[pos:pos + length] = page
        pos += length
    return bytes(out)


def write_audio(path: Path, pcm: np.ndarray, rate: int, kind: str) -> None:
    fmt = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
           "mp3": ("MP3", "MPEG_LAYER_III")}[kind]
    buf = io.BytesIO()
    sf.write(buf, pcm, rate, format=fmt[0], subtype=fmt[1])
    data = buf.getvalue()
    if kind == "ogg":
        data = fix_ogg_serial(data, zlib.crc32(path.name.encode()) & 0x7FFFFFFF)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_text(path: Path, text: str, newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline=newline) as f:
        f.write(text)


def tsv(rows: list[list[str]], eol: str = "\n") -> str:
    for row in rows:
        for cell in row:
            if "\t" in cell or "\n" in cell or "\r" in cell:
                raise ValueError(f"cell {cell!r} would break the TSV")
    return "".join("\t".join(row) + eol for row in rows)


def csv_text(rows: list[list[object]]) -> str:
    for row in rows:
        for cell in row:
            if any(c in str(cell) for c in ',"\n'):
                raise ValueError(f"cell {cell!r} would need CSV quoting; keep gold.csv plain")
    return "".join(",".join(str(c) for c in row) + "\n" for row in rows)


# --------------------------------------------------------------------------------------------------------------
# Dataset builders; each returns a short summary for the README
# --------------------------------------------------------------------------------------------------------------
def build_librispeech(root: Path) -> str:  # long: every file of the official layout, in one place
    """LibriSpeech test-clean / test-other: FLAC + trans.txt per chapter, SPEAKERS.TXT and CHAPTERS.TXT."""
    base = root / "LibriSpeech"
    spk_rows, chap_rows = [], []
    lines = []
    for subset, speakers in LIBRISPEECH.items():
        n_utts = 0
        for spk, label, chapters in speakers:
            spk_seconds = 0.0
            for chap, sentences in chapters:
                cdir = base / subset / spk / chap
                trans = []
                chap_seconds = 0.0
                for k, text in enumerate(sentences):
                    if not re.fullmatch(r"[A-Z']+( [A-Z']+)*", text):
                        raise ValueError(f"LibriSpeech text must be upper case with apostrophes only: {text!r}")
                    utt = f"{spk}-{chap}-{k:04d}"
                    pcm = synth(text.lower(), label, 16000)
                    chap_seconds += len(pcm) / 16000
                    write_audio(cdir / f"{utt}.flac", pcm, 16000, "flac")
                    trans.append(f"{utt} {text}\n")
                    n_utts += 1
                write_text(cdir / f"{spk}-{chap}.trans.txt", "".join(trans))
                chap_rows.append((chap, spk, chap_seconds / 60, subset))
                spk_seconds += chap_seconds
            spk_rows.append((spk, SPEAKERS[label][2], subset, spk_seconds / 60, label))
        lines.append(f"  - {subset}: {len(speakers)} speakers, {n_utts} utterances")
    speakers_txt = [
        "; Some pipe(|) separated metadata about all LibriVox readers, whose work was used",
        "; in the corpus. (most-eval mini suite: synthetic espeak-ng speakers, not LibriVox readers)",
        ";",
        "; The meaning of the fields in left-to-right order is as follows:",
        ";",
        "; reader_id: the ID of the reader in the LibriVox's database",
        "; gender: 'F' for female, 'M' for male",
        "; subset: the corpus subset to which the reader's audio is assigned",
        "; duration: total number of minutes of speech by the reader, included in the corpus",
        "; name: the name under which the reader is registered in LibriVox",
        ";",
        ";ID  |SEX| SUBSET           |MINUTES| NAME",
    ]
    for spk, sex, subset, minutes, label in sorted(spk_rows, key=lambda r: int(r[0])):
        speakers_txt.append(f"{spk:<5}| {sex} | {subset:<17}| {minutes:5.2f} | espeak-ng {SPEAKERS[label][0]}")
    write_text(base / "SPEAKERS.TXT", "\n".join(speakers_txt) + "\n")
    chapters_txt = [
        "; Some pipe(|) separated metadata about all LibriVox chapters, used in the corpus",
        "; (most-eval mini suite: synthetic chapters)",
        ";",
        "; The meaning of the fields in left-to-right order is as follows:",
        ";",
        "; chapter_id: the ID of the chapter in the LibriVox's database",
        "; reader_id: the ID of the reader who recorded the chapter",
        "; duration: the duration of the chapter in minutes",
        "; subset: the corpus subset to which the chapter is assigned",
        "; project_id: the LibriVox ID for the project of which the chapter is part",
        "; book_id: the Project Gutenberg ID of the book on which the LibriVox project is based",
        "; chapter_title: the title of the chapter",
        "; project_title: the title of the LibriVox project",
        ";",
        ";ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE            | PROJECT TITLE",
    ]
    for chap, spk, minutes, subset in sorted(chap_rows, key=lambda r: int(r[0])):
        chapters_txt.append(f"{chap:<6}| {spk:<6}| {minutes:5.2f} | {subset:<17}| 0    | 0     "
                            f"| Synthetic chapter    | most-eval mini suite")
    write_text(base / "CHAPTERS.TXT", "\n".join(chapters_txt) + "\n")
    voices = ", ".join(f"{spk}={SPEAKERS[label][0]}" for subset in LIBRISPEECH.values() for spk, label, _ in subset)
    return "\n".join(["- `LibriSpeech/` (FLAC 16 kHz; speakers " + voices + ")"] + lines)


def build_voxpopuli(root: Path) -> str:
    base = root / "voxpopuli" / "transcribed_data" / "en"
    rows = [VOXPOPULI_TSV_HEADER]
    for uid, raw, norm, spk_id, gender, label in VOXPOPULI:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", uid):
            raise ValueError(f"unsafe VoxPopuli id {uid!r}")
        pcm = synth(raw, label, 16000)
        write_audio(base / uid[:4] / f"{uid}.ogg", pcm, 16000, "ogg")
        rows.append([uid, raw, norm, spk_id, "test", gender, "True", "None"])
    write_text(base / "asr_test.tsv", tsv(rows))
    voices = ", ".join(SPEAKERS[r[5]][0] for r in VOXPOPULI)
    return (f"- `voxpopuli/transcribed_data/en/`: asr_test.tsv + {len(VOXPOPULI)} Ogg Vorbis 16 kHz clips under "
            f"`<year>/` (voices {voices}); ids without the colons of the real ids")


def build_commonvoice(root: Path) -> str:
    base = root / CV_VERSION_DIR / "en"
    rows = [CV_TSV_HEADER]
    for num, sentence, gender, age, accents, label in COMMONVOICE:
        name = f"common_voice_en_{num}.mp3"
        pcm = synth(sentence, label, 48000)
        write_audio(base / "clips" / name, pcm, 48000, "mp3")
        client = hashlib.sha512(f"most-eval-mini-suite/{label}".encode()).hexdigest()
        rows.append([client, name, sentence, "2", "0", age, gender, accents, "", "en", ""])
    write_text(base / "test.tsv", tsv(rows))
    voices = ", ".join(SPEAKERS[r[5]][0] for r in COMMONVOICE)
    return f"- `{CV_VERSION_DIR}/en/`: test.tsv + {len(COMMONVOICE)} MP3 48 kHz clips (voices {voices})"


def build_seedtts(root: Path) -> str:
    base = root / "seedtts_testset" / "en"
    lines = []
    for prompt_id, target_id, prompt_text, infer_text, label in SEEDTTS:
        rel = f"prompt-wavs/{prompt_id}.wav"
        write_audio(base / rel, synth(prompt_text, label, 16000), 16000, "wav")
        for field in (prompt_text, infer_text):
            if "|" in field:
                raise ValueError(field)
        lines.append(f"{prompt_id}-{target_id}|{prompt_text}|{rel}|{infer_text}\n")
    write_text(base / "meta.lst", "".join(lines))
    voices = ", ".join(SPEAKERS[r[4]][0] for r in SEEDTTS)
    return f"- `seedtts_testset/en/`: meta.lst with {len(SEEDTTS)} lines + prompt-wavs/ (16 kHz wav; voices {voices})"


def _stems(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    out = []
    while len(out) < n:
        stem = "".join(rng.choice(string.ascii_letters) for _ in range(STEM_LEN))
        if stem.lower() in taken:  # unique even on case-insensitive file systems
            continue
        taken.add(stem.lower())
        out.append(stem)
    return out


def build_slm21(root: Path) -> str:
    base = root / "sLM21-dataset"
    rng = random.Random(STEM_SEED)
    taken: set[str] = set()
    voice_names = [SPEAKERS[v][0] for v in SLM_VOICES]

    rows: list[list[object]] = [LEXICAL_HEADER]
    for wid, (word, wph, nonword, nph, freq) in enumerate(LEXICAL):
        for label, vname in zip(SLM_VOICES, voice_names):
            s_word, s_non = _stems(rng, 2, taken)
            write_audio(base / "lexical" / "dev" / f"{s_word}.wav", synth(word, label, 16000), 16000, "wav")
            write_audio(base / "lexical" / "dev" / f"{s_non}.wav", synth(nonword, label, 16000), 16000, "wav")
            rows.append([s_word, wid, vname, freq, word, wph, len(wph.split()), 1])
            rows.append([s_non, wid, vname, 0, nonword, nph, len(nph.split()), 0])
    write_text(base / "lexical" / "dev" / "gold.csv", csv_text(rows))

    rows = [SYNTACTIC_HEADER]
    counters: dict[tuple[str, str], int] = {}
    for k, (typ, sub, good, bad) in enumerate(SYNTACTIC):
        pid = counters.get((typ, sub), 0)
        counters[(typ, sub)] = pid + 1
        label = SLM_VOICES[k % len(SLM_VOICES)]
        s_good, s_bad = _stems(rng, 2, taken)
        write_audio(base / "syntactic" / "dev" / f"{s_good}.wav", synth(good, label, 16000), 16000, "wav")
        write_audio(base / "syntactic" / "dev" / f"{s_bad}.wav", synth(bad, label, 16000), 16000, "wav")
        # correct row then incorrect row: the k-th correct and the k-th incorrect row form pair k
        rows.append([s_good, pid, SPEAKERS[label][0], typ, sub, good, 1])
        rows.append([s_bad, pid, SPEAKERS[label][0], typ, sub, bad, 0])
    write_text(base / "syntactic" / "dev" / "gold.csv", csv_text(rows))
    types = sorted({t for t, *_ in SYNTACTIC})
    return (f"- `sLM21-dataset/lexical/dev/`: {len(LEXICAL)} ids x {len(SLM_VOICES)} voices "
            f"({', '.join(voice_names)}) x (word, non-word) = {len(LEXICAL) * len(SLM_VOICES) * 2} wavs + gold.csv; "
            f"frequencies {sorted({r[4] for r in LEXICAL})}\n"
            f"- `sLM21-dataset/syntactic/dev/`: {len(SYNTACTIC)} pairs = {2 * len(SYNTACTIC)} wavs + gold.csv; "
            f"types {', '.join(types)}")


def build_storycloze(root: Path) -> str:
    base = root / "spoken-storycloze"
    for idx, (ctx, good, bad, label) in enumerate(SSC_STORIES):
        for suffix, ending in (("correct", good), ("incorrect", bad)):
            text = f"{ctx} {ending}"
            write_audio(base / "sSC" / f"{idx}_{suffix}.wav", synth(text, label, 16000), 16000, "wav")
            write_text(base / "sSC" / f"{idx}_{suffix}.txt", text + "\n")
    n = len(TSC_STORIES)
    for idx, (ctx, good, label) in enumerate(TSC_STORIES):
        other = TSC_STORIES[(idx + 1) % n][1]  # the correct ending of the next story
        for suffix, ending in (("correct", good), ("incorrect", other)):
            text = f"{ctx} {ending}"
            write_audio(base / "tSC" / f"{idx}_{suffix}.wav", synth(text, label, 16000), 16000, "wav")
            write_text(base / "tSC" / f"{idx}_{suffix}.txt", text + "\n")
    voices = ", ".join(SPEAKERS[s[-1]][0] for s in SSC_STORIES + TSC_STORIES)
    return (f"- `spoken-storycloze/`: sSC/ and tSC/, {len(SSC_STORIES)} + {len(TSC_STORIES)} stories, "
            f"`<idx>_correct|incorrect.wav` + `.txt` (16 kHz wav; voices {voices})")


def build_llama(root: Path) -> str:
    base = root / "llama-questions"
    rows = [["Questions", "Answer", "Wav Filename"]]
    for n, (q, a, label) in enumerate(LLAMA_QUESTIONS, start=1):
        write_audio(base / f"{n}.wav", synth(q, label, 16000), 16000, "wav")
        rows.append([q, a, f"{n}.wav"])
    write_text(base / "llama_questions_300.tsv", tsv(rows, eol="\r\n"), newline="")
    voices = ", ".join(SPEAKERS[r[2]][0] for r in LLAMA_QUESTIONS)
    return (f"- `llama-questions/`: llama_questions_300.tsv (CRLF) + 1.wav..{len(LLAMA_QUESTIONS)}.wav "
            f"(16 kHz PCM16; voices {voices})")


def build_qa_jsonl(root: Path, folder: str, answer_key: str, items: list[dict], labels: list[str]) -> str:
    base = root / folder
    lines = []
    for i, (item, label) in enumerate(zip(items, labels)):
        rel = f"audio/{i}.wav"
        write_audio(base / rel, synth(item["question"], label, 16000), 16000, "wav")
        lines.append(json.dumps({**item, "audio": rel}, ensure_ascii=False) + "\n")
    write_text(base / "test.jsonl", "".join(lines))
    voices = ", ".join(SPEAKERS[v][0] for v in labels)
    return (f"- `{folder}/`: test.jsonl ({len(items)} records, answer field `{answer_key}`) + audio/0.wav.. "
            f"(16 kHz PCM16; voices {voices})")


# --------------------------------------------------------------------------------------------------------------
def write_manifest(root: Path) -> None:
    lines = []
    for p in sorted(root.rglob("*"), key=lambda q: q.relative_to(root).as_posix()):
        if p.is_file() and p.name != "MANIFEST.sha256":
            lines.append(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}\n")
    write_text(root / "MANIFEST.sha256", "".join(lines))


def build(out: Path) -> None:
    if "MP3" not in sf.available_formats():
        raise SystemExit(f"libsndfile {sf.__libsndfile_version__} cannot write MP3 (need >= 1.1.0); "
                         "upgrade soundfile to a wheel bundling libsndfile >= 1.1")
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng not found on PATH (apt-get install espeak-ng)")
    versions = tool_versions()
    sections = [
        build_librispeech(out),
        build_voxpopuli(out),
        build_commonvoice(out),
        build_seedtts(out),
        build_slm21(out),
        build_storycloze(out),
        build_llama(out),
        build_qa_jsonl(out, "webquestions", "answers",
                       [{"url": u, "question": q, "answers": a} for u, q, a, _ in WEBQUESTIONS],
                       [w[3] for w in WEBQUESTIONS]),
        build_qa_jsonl(out, "triviaqa", "answer",
                       [{"question": q, "answer": a} for q, a, _ in TRIVIAQA], [t[2] for t in TRIVIAQA]),
    ]
    speaker_lines = "\n".join(f"| `{label}` | `{v}` | {s} | {sex} |" for label, (v, s, sex) in SPEAKERS.items())
    readme = f"""# most-eval mini suite

A tiny synthetic copy of every evaluation dataset, each in its official on-disk layout directly under this
folder, so this folder works as `--data-root`. All speech is espeak-ng TTS (not real recordings); numbers
computed on it test plumbing and scoring only and mean nothing about model quality.

Regenerate (deterministic; compare `MANIFEST.sha256`):

    python scripts/make_mini_suite.py [--out most_eval/mini_suite]

Generated with: espeak-ng {versions['espeak-ng']}, libsndfile {versions['libsndfile']}, soxr {versions['soxr']}

## Datasets

{chr(10).join(sections)}

## Deviations from the official distributions

- Audio is espeak-ng speech resampled with soxr, trimmed and peak-normalised; counts are tiny.
- VoxPopuli ids drop the colons of the real time stamps (`..._20180612-165523_3`, not `..._16:55:23_3`).
- Spoken WebQuestions / TriviaQA ship as `test.jsonl` + `audio/<i>.wav` (the real ones are HF parquet).
- LibriSpeech has only `SPEAKERS.TXT` / `CHAPTERS.TXT` (no BOOKS.TXT, LICENSE.TXT, README.TXT).
- sLM21 phones are ARPAbet without stress; word frequencies are synthetic (chosen to cover every band edge);
  non-word rows carry frequency 0. Only the `dev` splits exist.

## Voices ("speakers")

| label | espeak-ng voice | words/min | sex |
|---|---|---|---|
{speaker_lines}
"""
    write_text(out / "README.md", readme)
    write_manifest(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (replaced entirely)")
    args = ap.parse_args(argv)
    out: Path = args.out.resolve()
    if out.exists() and any(out.iterdir()) and not (out / "MANIFEST.sha256").exists():
        raise SystemExit(f"refusing to replace {out}: not empty and not a mini suite (no MANIFEST.sha256)")
    tmp = out.with_name(out.name + ".build-tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
        total = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        if total > SIZE_LIMIT_BYTES:
            raise SystemExit(f"mini suite is {total} bytes, over the {SIZE_LIMIT_BYTES}-byte limit")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    n_files = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"wrote {n_files} files, {total} bytes to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
