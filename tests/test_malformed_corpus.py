"""Malformed-input corpus: broken audio, transcripts, manifests, score files, results files, checkpoints and configs.

Every entry of :data:`CORPUS` is one malformed input. Each must be *answered* by one line that names the file (or the
option) and the reason: an error record in ``OUTPUT/samples/<task>.jsonl`` (the run exits 0, ``--fail-on-error`` 1),
a one-line ``dataset error`` for its task (the other tasks still run), or exit 2 with one line on stderr. Earlier
results stay intact: good samples keep exactly the records a clean run gives them, and a refused command leaves the
output folder of an earlier run byte for byte as it was.

The inputs are generated here (from the bundled mini suite) and batched: one data root and one CLI run answer many
entries, then one parametrized test per entry checks its answer, so pytest's own summary counts them, and a line
``malformed corpus: N inputs, M answered`` is printed in the terminal summary.

The ``hostile-*`` entries are inputs that try to make the tool read outside the dataset folder (ids and paths with
``..`` or ``/``, absolute paths, symlinks out, each pointing at a real file there that must never be scored) or block
it (a FIFO where a manifest or an audio file should be); ``tests/test_hostile_inputs.py`` has the rest.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import MINI_SUITE, REPO, read_jsonl

TESTS_DIR = Path(__file__).resolve().parent

LIBRI = "asr:librispeech-test-clean"
CV = "asr:commonvoice-en"
VOX = "asr:voxpopuli-en"
SEED = "tts:seed-tts-eval-en"
WEBQ = "sqa:webquestions-s2t"
TRIVIA = "sqa:triviaqa-s2t"
LLAMA = "sqa:llama-questions-s2t"
SWUGGY = "slm:swuggy-dev"
SBLIMP = "slm:sblimp-dev"
SWUGGY_TEST = "slm:swuggy-test"
SBLIMP_TEST = "slm:sblimp-test"
SSC = "slm:sstorycloze"
TSC = "slm:tstorycloze"
CLEAN_TASKS = [LIBRI, CV, VOX, WEBQ, TRIVIA, LLAMA, SWUGGY, SSC]

CV_DIR = "cv-corpus-15.0-2023-09-08"
CHAPTER = "1089/999999"  # the LibriSpeech chapter that holds the broken utterances
UTT = "1089-999999-"
TRANS = "1089-999999.trans.txt"
#: real files outside the data root that hostile entries point at (they exist: scoring them would be a leak)
MINI_FLAC = f"{MINI_SUITE}/LibriSpeech/test-clean/1089/134686/1089-134686-0000"
MINI_WAV = f"{MINI_SUITE}/seedtts_testset/en/prompt-wavs/common_voice_en_20010001.wav"
MINI_LEX = f"{MINI_SUITE}/sLM21-dataset/lexical/dev/rEtbHwBxCTU"
OUT_OF_ROOT = r"escapes the dataset root|not a plain file name"


# ---------------------------------------------------------------------------------------------------------------
# The corpus


@dataclass(frozen=True)
class Entry:
    """One malformed input and where its answer must be."""

    id: str
    kind: str  # audio | transcript | manifest | score | results | checkpoint | config
    how: str  # record: error record of `sample`; dataset: `dataset error` of `task`; any: either, for `task`;
    #           exit2: refused command (exit 2, one stderr line); raise: a function raises one line
    where: str  # which batch answers it (a run key, or a group of commands)
    file: str  # what the answer must name: a file name (or path tail), or an option key
    reason: str  # regex the answer must match
    task: str = ""
    sample: str = ""


CORPUS: list[Entry] = [
    # --- audio: error records of run "records" ------------------------------------------------------------------
    Entry("audio-corrupt-bytes", "audio", "record", "records", f"{UTT}0000.flac", r"cannot decode", LIBRI,
          f"{UTT}0000"),
    Entry("audio-truncated-flac", "audio", "record", "records", f"{UTT}0001.flac", r"cannot decode", LIBRI,
          f"{UTT}0001"),
    Entry("audio-flac-header-only", "audio", "record", "records", f"{UTT}0002.flac", r"cannot decode|empty", LIBRI,
          f"{UTT}0002"),
    Entry("audio-truncated-wav-header", "audio", "record", "records", f"{UTT}0003.flac", r"cannot decode", LIBRI,
          f"{UTT}0003"),
    Entry("audio-zero-byte-file", "audio", "record", "records", f"{UTT}0004.flac", r"cannot decode|empty", LIBRI,
          f"{UTT}0004"),
    Entry("audio-infinite-samples", "audio", "record", "records", f"{UTT}0005.flac", r"infinite", LIBRI, f"{UTT}0005"),
    Entry("audio-directory-named-flac", "audio", "record", "records", f"{UTT}0006.flac",
          r"not found|not a (regular )?file|directory", LIBRI, f"{UTT}0006"),
    Entry("audio-dangling-symlink", "audio", "record", "records", f"{UTT}0007.flac",
          r"not found|dangling|broken", LIBRI, f"{UTT}0007"),
    Entry("audio-mp3-garbage", "audio", "record", "records", "common_voice_en_garbage.mp3", r"cannot decode", CV,
          "common_voice_en_garbage"),
    Entry("audio-ogg-garbage", "audio", "record", "records", "en_garbage_0.ogg", r"cannot decode", VOX,
          "20990101-0900-PLENARY-1-en_garbage_0"),
    Entry("audio-html-page-as-wav", "audio", "record", "records", "8.wav", r"cannot decode", WEBQ, "8"),
    Entry("audio-nan-wav", "audio", "record", "records", "6.wav", r"NaN", WEBQ, "6"),
    Entry("audio-zero-samples-wav", "audio", "record", "records", "9.wav", r"empty", TRIVIA, "9"),
    Entry("audio-slm-wav-corrupt", "audio", "record", "records", "corruptWavA.wav", r"cannot decode", SWUGGY,
          "corruptWavA"),
    # --- transcripts and manifests: error records of run "records" ----------------------------------------------
    Entry("transcript-duplicate-utterance-id", "transcript", "record", "records", "1089-999999.trans.txt",
          r"listed twice|duplicate", LIBRI, f"{UTT}0008"),
    Entry("transcript-latin1-line", "transcript", "record", "records", "1089-999999.trans.txt:10", r"UTF-8", LIBRI,
          f"{UTT}0009"),
    Entry("manifest-cv-wrong-field-count", "manifest", "record", "records", "test.tsv:6", r"3 fields, header has 11",
          CV, "test.tsv:6"),
    Entry("manifest-cv-absolute-path", "manifest", "record", "records", "test.tsv:7", r"escapes the dataset root", CV,
          "secret"),
    Entry("manifest-cv-non-utf8-row", "manifest", "record", "records", "test.tsv:8", r"UTF-8", CV, "test.tsv:8"),
    Entry("manifest-voxpopuli-wrong-field-count", "manifest", "record", "records", "asr_test.tsv:6",
          r"2 fields, header has 8", VOX, "asr_test.tsv:6"),
    Entry("manifest-seedtts-too-few-fields", "manifest", "record", "records", "meta.lst:1", r"2 field\(s\)", SEED,
          "utt-few"),
    Entry("manifest-seedtts-prompt-escapes", "manifest", "record", "records", "meta.lst:2",
          r"escapes the dataset root", SEED, "utt-escape"),
    Entry("manifest-seedtts-prompt-missing", "manifest", "record", "records", "nowhere.wav", r"not found", SEED,
          "utt-missing"),
    Entry("manifest-qa-invalid-json-line", "manifest", "record", "records", "test.jsonl:4", r"invalid JSON", WEBQ,
          "line-4"),
    Entry("manifest-qa-empty-answers", "manifest", "record", "records", "test.jsonl:5", r"no reference answers", WEBQ,
          "7"),
    Entry("manifest-qa-line-not-an-object", "manifest", "record", "records", "test.jsonl:4", r"not a JSON object",
          TRIVIA, "line-4"),
    Entry("manifest-qa-audio-path-escapes", "manifest", "record", "records", "test.jsonl:5",
          r"escapes the dataset root", TRIVIA, "q"),
    Entry("manifest-qa-no-answer-field", "manifest", "record", "records", "test.jsonl:7", r"no reference answers",
          TRIVIA, "8"),
    Entry("manifest-gold-lists-missing-wav", "manifest", "record", "records", "missingWavA.wav",
          r"listed in gold.csv but not found", SWUGGY, "missingWavA"),
    Entry("manifest-wav-not-in-gold", "manifest", "record", "records", "strayWav.wav", r"not listed in gold.csv",
          SWUGGY, "strayWav"),
    Entry("manifest-storycloze-unpaired-wav", "manifest", "record", "records", "3_correct.wav",
          r"3_incorrect.wav is missing", SSC, "3_correct"),
    Entry("manifest-storycloze-bad-wav-name", "manifest", "record", "records", "story_4.wav",
          r"not <idx>_correct", SSC, "story_4"),
    # --- hostile paths, ids and fields: error records of run "records" (the targets outside exist) ---------------
    Entry("hostile-librispeech-id-dotdot", "transcript", "record", "records", f"{TRANS}:12", OUT_OF_ROOT, LIBRI,
          "../../../../../outside/secret-libri"),
    Entry("hostile-librispeech-id-absolute", "transcript", "record", "records", f"{TRANS}:13", OUT_OF_ROOT, LIBRI,
          MINI_FLAC),
    Entry("hostile-librispeech-id-with-slash", "transcript", "record", "records", f"{TRANS}:14", OUT_OF_ROOT, LIBRI,
          f"sub/{UTT}0012"),
    Entry("hostile-librispeech-flac-symlink-out", "audio", "record", "records", f"{TRANS}:15",
          r"escapes the dataset root.*symlink", LIBRI, f"{UTT}0010"),
    Entry("hostile-librispeech-flac-fifo", "audio", "record", "records", f"{UTT}0011.flac", r"FIFO", LIBRI,
          f"{UTT}0011"),
    Entry("hostile-librispeech-trans-fifo", "transcript", "record", "records", "1089-999998.trans.txt", r"FIFO",
          LIBRI, "1089-999998.trans.txt"),
    Entry("hostile-librispeech-trans-symlink-out", "transcript", "record", "records", "1089-999997.trans.txt",
          r"escapes the dataset root", LIBRI, "1089-999997.trans.txt"),
    Entry("hostile-voxpopuli-id-dotdot", "manifest", "record", "records", "asr_test.tsv:8", OUT_OF_ROOT, VOX,
          "../../../../../outside/secret-vox"),
    Entry("hostile-voxpopuli-ogg-symlink-out", "audio", "record", "records", "asr_test.tsv:9",
          r"escapes the dataset root", VOX, "20990101-0900-PLENARY-1-en_secret_0"),
    Entry("hostile-cv-path-dotdot", "manifest", "record", "records", "test.tsv:10", r"escapes the dataset root", CV,
          "secret2"),
    Entry("hostile-cv-clip-symlink-out", "audio", "record", "records", "test.tsv:11", r"escapes the dataset root", CV,
          "common_voice_en_symlink"),
    Entry("hostile-cv-clip-fifo", "audio", "record", "records", "common_voice_en_fifo.mp3", r"FIFO", CV,
          "common_voice_en_fifo"),
    Entry("hostile-seedtts-prompt-symlink-out", "manifest", "record", "records", "meta.lst:4",
          r"escapes the dataset root", SEED, "utt-symlink"),
    Entry("hostile-seedtts-prompt-fifo", "audio", "record", "records", "fifo.wav", r"FIFO", SEED, "utt-fifo"),
    Entry("hostile-seedtts-empty-id", "manifest", "record", "records", "meta.lst:6", r"empty utterance id", SEED,
          "meta.lst:6"),
    Entry("hostile-webq-answer-bool", "manifest", "record", "records", "test.jsonl:8", r"answer is a bool", WEBQ,
          "10"),
    Entry("hostile-webq-answer-null", "manifest", "record", "records", "test.jsonl:9", r"answer is null", WEBQ, "11"),
    Entry("hostile-webq-answer-list-with-null", "manifest", "record", "records", "test.jsonl:10",
          r"answer\[1\] is null", WEBQ, "12"),
    Entry("hostile-webq-audio-path-number", "manifest", "record", "records", "test.jsonl:11",
          r"audio path is a number", WEBQ, "test.jsonl:11"),
    Entry("hostile-webq-audio-symlink-out", "audio", "record", "records", "test.jsonl:12",
          r"escapes the dataset root", WEBQ, "secret-link"),
    Entry("hostile-webq-question-null", "manifest", "record", "records", "test.jsonl:13", r"question is null", WEBQ,
          "14"),
    Entry("hostile-triviaqa-answer-bool", "manifest", "record", "records", "test.jsonl:8", r"answer is a bool",
          TRIVIA, "10"),
    Entry("hostile-triviaqa-audio-absolute", "manifest", "record", "records", "test.jsonl:9",
          r"escapes the dataset root", TRIVIA, "common_voice_en_20010001"),
    Entry("hostile-triviaqa-audio-fifo", "audio", "record", "records", "fifo.wav", r"FIFO", TRIVIA, "fifo"),
    Entry("hostile-llama-wav-dotdot", "manifest", "record", "records", "llama_questions_300.tsv:6",
          r"escapes the dataset root", LLAMA, "secret-q"),
    Entry("hostile-llama-answer-bool-in-json-list", "manifest", "record", "records", "llama_questions_300.tsv:7",
          r"answer is a bool", LLAMA, "5"),
    Entry("hostile-llama-wav-symlink-out", "audio", "record", "records", "llama_questions_300.tsv:8",
          r"escapes the dataset root", LLAMA, "secret-link"),
    Entry("hostile-gold-filename-dotdot", "manifest", "record", "records", "gold.csv", OUT_OF_ROOT, SWUGGY,
          "../../../../outside/secretWav"),
    Entry("hostile-gold-filename-absolute", "manifest", "record", "records", "gold.csv", OUT_OF_ROOT, SWUGGY,
          MINI_LEX),
    Entry("hostile-gold-wav-symlink-out", "audio", "record", "records", "gold.csv", r"escapes the dataset root",
          SWUGGY, "symlinkWav"),
    Entry("hostile-gold-wav-fifo", "audio", "record", "records", "fifoWav.wav", r"FIFO", SWUGGY, "fifoWav"),
    Entry("hostile-storycloze-wav-symlink-out", "audio", "record", "records", "5_correct.wav",
          r"escapes the dataset root", SSC, "5_correct"),
    Entry("hostile-storycloze-wav-fifo", "audio", "record", "records", "5_incorrect.wav", r"FIFO", SSC,
          "5_incorrect"),
    # --- whole manifests: one `dataset error` line per task ------------------------------------------------------
    Entry("manifest-cv-missing-sentence-column", "manifest", "dataset", "dataset", "test.tsv",
          r"missing column\(s\) sentence", CV),
    Entry("manifest-voxpopuli-empty-tsv", "manifest", "dataset", "dataset", "asr_test.tsv", r"empty", VOX),
    Entry("manifest-llama-questions-no-header", "manifest", "dataset", "dataset", "llama_questions_300.tsv",
          r"missing column\(s\) Questions, Answer, Wav Filename", LLAMA),
    Entry("manifest-gold-missing-column", "manifest", "dataset", "dataset", "gold.csv", r"lacks column\(s\) subtype",
          SBLIMP),
    Entry("manifest-qa-corrupt-parquet", "manifest", "dataset", "parquet", "test.parquet",
          r"parquet|cannot read|corrupt|not a", WEBQ),
    Entry("manifest-gold-not-utf8", "manifest", "dataset", "gold-utf8", "gold.csv", r"UTF-8|utf-8", SWUGGY),
    Entry("hostile-seedtts-meta-fifo", "manifest", "dataset", "dataset", "meta.lst", r"FIFO", SEED),
    Entry("hostile-triviaqa-jsonl-fifo", "manifest", "dataset", "dataset", "test.jsonl", r"FIFO", TRIVIA),
    Entry("hostile-gold-fifo", "manifest", "dataset", "dataset", "gold.csv", r"FIFO", SWUGGY_TEST),
    Entry("hostile-gold-directory", "manifest", "dataset", "dataset", "gold.csv", r"directory", SBLIMP_TEST),
    Entry("hostile-cv-table-symlink-out", "manifest", "dataset", "hostile-sets", "test.tsv",
          r"escapes the dataset root", CV),
    Entry("hostile-voxpopuli-table-fifo", "manifest", "dataset", "hostile-sets", "asr_test.tsv", r"FIFO", VOX),
    Entry("hostile-llama-table-directory", "manifest", "dataset", "hostile-sets", "llama_questions_300.tsv",
          r"directory", LLAMA),
    Entry("hostile-webq-jsonl-symlink-out", "manifest", "dataset", "hostile-sets", "test.jsonl",
          r"escapes the dataset root", WEBQ),
    # --- score files: ZeroSpeech submissions and precomputed JSONL served by --model precomputed -----------------
    Entry("score-zerospeech-nan", "score", "record", "zerospeech", "lexical/dev.txt", r"NaN|not finite", SWUGGY,
          "rEtbHwBxCTU"),
    Entry("score-zerospeech-missing-line", "score", "record", "zerospeech", "syntactic/dev.txt",
          r"no entry|missing", SBLIMP, "hEWFkMYAYbV"),
    Entry("score-zerospeech-duplicate-stem", "score", "any", "zerospeech", "lexical/test.txt",
          r"duplicate|twice|already", SWUGGY_TEST, "rEtbHwBxCTU"),
    Entry("score-zerospeech-unknown-stem", "score", "any", "zerospeech", "syntactic/test.txt",
          r"unknown|not listed|not in gold", SBLIMP_TEST, "unknownStem"),
    Entry("score-zerospeech-not-a-number", "score", "record", "precomputed", "lexical/dev.txt",
          r"expected '<stem> <score>'|not a number", SWUGGY, "RceaTFtSnYB"),
    Entry("score-precomputed-bad-json-line", "score", "record", "precomputed", "asr_librispeech-test-clean.jsonl",
          r"invalid JSON", LIBRI, "1089-134686-0001"),
    Entry("score-precomputed-missing-id", "score", "record", "precomputed", "sqa_webquestions-s2t.jsonl",
          r"no 'id' field", WEBQ, "1"),
    Entry("score-precomputed-missing-text", "score", "record", "precomputed", "sqa_triviaqa-s2t.jsonl",
          r"no 'text' field", TRIVIA, "1"),
    Entry("score-precomputed-missing-score", "score", "record", "precomputed", "slm_sstorycloze.jsonl",
          r"no 'score' field", SSC, "1_correct"),
    Entry("score-precomputed-duplicate-id", "score", "any", "precomputed", "sqa_llama-questions-s2t.jsonl",
          r"duplicate|twice|already", LLAMA, "2"),
    Entry("score-precomputed-score-not-a-number", "score", "record", "precomputed", "slm_tstorycloze.jsonl",
          r"not a number", TSC, "1_correct"),
    # --- results files: compare / check / leaderboard build refuse with exit 2 -----------------------------------
    Entry("results-truncated", "results", "exit2", "results", "results.json", r"truncated JSON"),
    Entry("results-not-json", "results", "exit2", "results", "results.json", r"invalid JSON"),
    Entry("results-json-list", "results", "exit2", "results", "results.json", r"not a most-eval results file.*list"),
    Entry("results-from-another-tool", "results", "exit2", "results", "results.json",
          r"not a most-eval results file"),
    Entry("results-wrong-format-version", "results", "exit2", "results", "results.json",
          r"unsupported format_version 99"),
    Entry("results-empty-file", "results", "exit2", "results", "empty.json", r"empty file"),
    Entry("results-binary-file", "results", "exit2", "results", "results.json", r"cannot read|UTF-8|utf-8"),
    Entry("results-no-model-name", "results", "exit2", "results", "results.json", r"missing model.name"),
    Entry("results-truncated-samples-file", "results", "exit2", "results", "asr_librispeech-test-clean.jsonl",
          r"invalid JSON.*truncated"),
    # --- checkpoints: --model most refuses with exit 2, no pickle executed ----------------------------------------
    Entry("checkpoint-missing-dir", "checkpoint", "exit2", "torch", "no-such-checkpoint",
          r"no trained MoST checkpoint"),
    Entry("checkpoint-no-most-json", "checkpoint", "exit2", "torch", "most.json", r"most.json is missing"),
    Entry("checkpoint-most-json-invalid", "checkpoint", "exit2", "torch", "most.json", r"JSON"),
    Entry("checkpoint-pickle-as-safetensors", "checkpoint", "exit2", "torch", "model.safetensors",
          r"pickle|not a safetensors|expected safetensors"),
    Entry("checkpoint-torch-save-as-safetensors", "checkpoint", "exit2", "torch", "model.safetensors",
          r"zip|pickle|not a safetensors|expected safetensors"),
    Entry("checkpoint-truncated-safetensors", "checkpoint", "exit2", "torch", "model.safetensors",
          r"truncated|incomplete|unreadable|not a safetensors"),
    Entry("checkpoint-index-names-missing-shard", "checkpoint", "exit2", "torch", "model-00002-of-00010.safetensors",
          r"missing|No such file"),
    Entry("checkpoint-no-config-json", "checkpoint", "exit2", "torch", "config.json", r"missing|not found|No such"),
    # --- options and configs ------------------------------------------------------------------------------------
    Entry("option-model-args-unknown-key", "config", "exit2", "options", "'tone'",
          r"unknown --model-args key.*tone_hz"),
    Entry("option-model-args-bad-number", "config", "exit2", "options", "tone_hz", r"expected float"),
    Entry("option-model-args-bad-json", "config", "exit2", "options", '{"text": "hello"', r"not valid JSON"),
    Entry("option-model-args-not-key-value", "config", "exit2", "options", "'text'", r"not key=value"),
    Entry("option-model-args-bad-choice", "config", "exit2", "options", "score_reduction", r"sum or mean"),
    Entry("option-task-args-unknown-key", "config", "exit2", "options", "protcol", r"not used by any selected task"),
    Entry("option-task-args-bad-int", "config", "exit2", "options", "bootstrap", r"expected int"),
    Entry("config-train-yaml-python-tag", "config", "raise", "torch", "python_tag.yaml",
          r"python/object|tag|constructor"),
    Entry("config-train-yaml-unknown-key", "config", "raise", "torch", "unknown_key.yaml",
          r"unknown config key trainig"),
    Entry("config-train-yaml-syntax-error", "config", "raise", "torch", "syntax_error.yaml", r"YAML|yaml"),
    Entry("config-train-yaml-not-a-mapping", "config", "raise", "torch", "list.yaml", r"mapping"),
    # --- training manifests (most_reference.manifests): a manifest that is no regular file is one raised line -----
    Entry("hostile-train-speech-jsonl-fifo", "manifest", "raise", "torch", "speech_fifo.jsonl", r"FIFO"),
    Entry("hostile-train-libriheavy-directory", "manifest", "raise", "torch", "cuts.jsonl.gz", r"directory"),
    Entry("hostile-train-text-fifo", "manifest", "raise", "torch", "text_fifo.txt", r"FIFO"),
    Entry("hostile-train-instructions-fifo", "manifest", "raise", "torch", "instructions_fifo.jsonl", r"FIFO"),
    Entry("hostile-train-seedtts-meta-symlink-out", "manifest", "raise", "torch", "meta.lst",
          r"escapes the dataset root"),
]
BY_ID = {e.id: e for e in CORPUS}
KINDS = ("audio", "transcript", "manifest", "score", "results", "checkpoint", "config")


# ---------------------------------------------------------------------------------------------------------------
# Summary line in pytest's terminal summary (visible without -s)


class _CorpusSummary:
    def __init__(self):
        self.answered: set[str] = set()

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.write_line(f"malformed corpus: {len(CORPUS)} inputs, {len(self.answered)} answered")


SUMMARY = _CorpusSummary()


@pytest.fixture(scope="module", autouse=True)
def _corpus_summary(request):
    manager = request.config.pluginmanager
    if not manager.is_registered(SUMMARY):
        manager.register(SUMMARY, "malformed-corpus-summary")
    yield


# ---------------------------------------------------------------------------------------------------------------
# Small file builders


def _wav_bytes(samples, subtype: str = "PCM_16", rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.asarray(samples, dtype=np.float32), rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def _tone(n: int = 8000) -> np.ndarray:
    return (0.1 * np.sin(np.arange(n) / 10.0)).astype(np.float32)


def _append_lines(path: Path, lines: list[bytes]) -> None:
    data = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join(data + lines) + b"\n")


def _copy_suite(root: Path, *folders: str) -> Path:
    for folder in folders:
        shutil.copytree(MINI_SUITE / folder, root / folder, symlinks=True)
    return root


def _clean_root(root: Path) -> Path:
    """The datasets of CLEAN_TASKS, copied from the mini suite (LibriSpeech test-clean and sSC only)."""
    _copy_suite(root, CV_DIR, "voxpopuli", "webquestions", "triviaqa", "llama-questions")
    shutil.copytree(MINI_SUITE / "LibriSpeech" / "test-clean", root / "LibriSpeech" / "test-clean")
    shutil.copytree(MINI_SUITE / "sLM21-dataset" / "lexical" / "dev", root / "sLM21-dataset" / "lexical" / "dev")
    shutil.copytree(MINI_SUITE / "spoken-storycloze" / "sSC", root / "spoken-storycloze" / "sSC")
    return root


def _break_records_root(root: Path, outside: Path) -> None:
    """Add every per-sample malformation (error records) to a clean root; the clean samples stay as they are."""
    flac = next((MINI_SUITE / "LibriSpeech" / "test-clean").rglob("*.flac")).read_bytes()
    good_wav = _wav_bytes(_tone())
    # LibriSpeech: a chapter of broken utterances
    ch = root / "LibriSpeech" / "test-clean" / CHAPTER
    ch.mkdir(parents=True)
    (ch / f"{UTT}0000.flac").write_bytes(bytes(range(256)) * 16)  # corrupt bytes
    (ch / f"{UTT}0001.flac").write_bytes(flac[: len(flac) // 3])  # FLAC cut short
    (ch / f"{UTT}0002.flac").write_bytes(flac[:42])  # "fLaC" + STREAMINFO, no frames
    (ch / f"{UTT}0003.flac").write_bytes(good_wav[:30])  # WAV header cut short
    (ch / f"{UTT}0004.flac").write_bytes(b"")  # 0 bytes
    inf = _tone()
    inf[10], inf[20] = np.inf, -np.inf
    (ch / f"{UTT}0005.flac").write_bytes(_wav_bytes(inf, "FLOAT"))
    (ch / f"{UTT}0006.flac").mkdir()  # a directory with an audio name
    (ch / f"{UTT}0007.flac").symlink_to(outside / "no-such-target.flac")  # dangling symlink
    (ch / f"{UTT}0008.flac").write_bytes(flac)
    lines = [f"{UTT}{i:04d} THE OLD MAN SAT DOWN".encode() for i in range(9)]  # lines 1-9: 0000 ... 0008
    lines.append(f"{UTT}0009 THE CAF\xc9 WAS CLOSED".encode("latin-1"))  # line 10: Latin-1, not UTF-8
    lines.append(f"{UTT}0008 HE SAID NOTHING AT ALL".encode())  # line 11: 0008 listed a second time
    # hostile ids and files (lines 12-16): each target exists, outside the data root or in a subfolder
    shutil.copy(MINI_FLAC + ".flac", outside / "secret-libri.flac")
    (ch / "sub").mkdir()
    (ch / "sub" / f"{UTT}0012.flac").write_bytes(flac)
    (ch / f"{UTT}0010.flac").symlink_to(outside / "secret-libri.flac")
    os.mkfifo(ch / f"{UTT}0011.flac")
    lines += [b"../../../../../outside/secret-libri THE SECRET WORDS",  # line 12: resolves to outside/
              f"{MINI_FLAC} THE OLD MAN SAT DOWN".encode(),  # line 13: an absolute path
              f"sub/{UTT}0012 THE SUB FOLDER".encode(),  # line 14: a path, not an id
              f"{UTT}0010 THE SECRET LINK".encode(),  # line 15: a symlink out of the root
              f"{UTT}0011 THE NAMED PIPE".encode()]  # line 16: a FIFO where the flac should be
    (ch / TRANS).write_bytes(b"\n".join(lines) + b"\n")
    (root / "LibriSpeech" / "test-clean" / "1089" / "999998").mkdir()
    os.mkfifo(root / "LibriSpeech" / "test-clean" / "1089" / "999998" / "1089-999998.trans.txt")
    (outside / "secret.trans.txt").write_text("1089-999997-0000 THE SECRET TRANSCRIPT\n")
    (root / "LibriSpeech" / "test-clean" / "1089" / "999997").mkdir()
    (root / "LibriSpeech" / "test-clean" / "1089" / "999997" / "1089-999997.trans.txt").symlink_to(
        outside / "secret.trans.txt")

    # Common Voice: lines 6.. of test.tsv
    cv = root / CV_DIR / "en"
    tsv = cv / "test.tsv"
    header = tsv.read_bytes().splitlines()[0].split(b"\t")
    template = tsv.read_bytes().splitlines()[1].split(b"\t")
    path_col, sent_col = header.index(b"path"), header.index(b"sentence")

    def row(path: bytes, sentence: bytes) -> bytes:
        fields = list(template)
        fields[path_col], fields[sent_col] = path, sentence
        return b"\t".join(fields)

    garbage_mp3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8  # an ID3 tag, then no MPEG frame
    (cv / "clips" / "common_voice_en_garbage.mp3").write_bytes(garbage_mp3)
    secret = outside / "secret.mp3"
    shutil.copy(next((cv / "clips").glob("common_voice_en_1*.mp3")), secret)
    shutil.copy(secret, outside / "secret2.mp3")
    (cv / "clips" / "common_voice_en_symlink.mp3").symlink_to(secret)
    os.mkfifo(cv / "clips" / "common_voice_en_fifo.mp3")
    _append_lines(tsv, [b"only\tthree\tfields",  # line 6
                        row(str(secret).encode(), b"An absolute path."),  # line 7
                        row(b"common_voice_en_19000101.mp3", b"The caf\xe9 opens at nine."),  # line 8
                        row(b"common_voice_en_garbage.mp3", b"Garbage in."),  # line 9
                        row(b"../../../../outside/secret2.mp3", b"Up and out."),  # line 10
                        row(b"common_voice_en_symlink.mp3", b"A symlink out."),  # line 11
                        row(b"common_voice_en_fifo.mp3", b"A named pipe.")])  # line 12

    # VoxPopuli: line 6 has two fields; line 7 points to a garbage ogg
    vox = root / "voxpopuli" / "transcribed_data" / "en"
    vtsv = vox / "asr_test.tsv"
    vtemplate = vtsv.read_bytes().splitlines()[1].split(b"\t")
    vtemplate[0] = b"20990101-0900-PLENARY-1-en_garbage_0"
    (vox / "2099").mkdir()
    (vox / "2099" / "20990101-0900-PLENARY-1-en_garbage_0.ogg").write_bytes(b"OggS" + bytes(200))
    good_ogg = next((MINI_SUITE / "voxpopuli").rglob("*.ogg"))
    shutil.copy(good_ogg, outside / "secret-vox.ogg")
    (vox / "2099" / "20990101-0900-PLENARY-1-en_secret_0.ogg").symlink_to(outside / "secret-vox.ogg")
    dotdot, link = list(vtemplate), list(vtemplate)
    dotdot[0], link[0] = b"../../../../../outside/secret-vox", b"20990101-0900-PLENARY-1-en_secret_0"
    _append_lines(vtsv, [b"20990101-0900-PLENARY-1-en_x_1\tonly two", b"\t".join(vtemplate),  # lines 6, 7
                         b"\t".join(dotdot), b"\t".join(link)])  # line 8: an id with "..", line 9: a symlink out

    # Seed-TTS: every line broken (no judge or speaker embedder is needed then)
    seed = root / "seedtts_testset" / "en"
    seed.mkdir(parents=True)
    (seed / "prompt-wavs").mkdir()
    (outside / "secret.wav").write_bytes(good_wav)
    (seed / "prompt-wavs" / "secret-link.wav").symlink_to(outside / "secret.wav")
    os.mkfifo(seed / "prompt-wavs" / "fifo.wav")
    (seed / "meta.lst").write_text("utt-few|only two fields\n"
                                   "utt-escape|hi|../../../secret.wav|Hello there.\n"
                                   "utt-missing|hi|prompt-wavs/nowhere.wav|Hello again.\n"
                                   "utt-symlink|hi|prompt-wavs/secret-link.wav|A symlink out.\n"
                                   "utt-fifo|hi|prompt-wavs/fifo.wav|A named pipe.\n"
                                   "|hi|prompt-wavs/nowhere.wav|No id.\n")

    # WebQuestions: lines 4.. of test.jsonl
    webq = root / "webquestions"
    (webq / "audio" / "6.wav").write_bytes(_wav_bytes(np.full(4000, np.nan, dtype=np.float32), "FLOAT"))
    (webq / "audio" / "7.wav").write_bytes(good_wav)
    (webq / "audio" / "8.wav").write_bytes(b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n")
    _append_lines(webq / "test.jsonl", [
        b'{"question": "where is it?", "answers": ["here"], "audio": "audio/9.wav"',  # line 4: cut short
        json.dumps({"question": "no answers?", "answers": [], "audio": "audio/7.wav"}).encode(),  # line 5
        json.dumps({"question": "nan?", "answers": ["x"], "audio": "audio/6.wav"}).encode(),  # line 6
        json.dumps({"question": "html?", "answers": ["y"], "audio": "audio/8.wav"}).encode(),  # line 7
        # typed fields and a symlink out (lines 8-13); the wavs exist, so only the check refuses them
        json.dumps({"question": "bool?", "answers": True, "audio": "audio/10.wav"}).encode(),
        json.dumps({"question": "null?", "answers": None, "audio": "audio/11.wav"}).encode(),
        json.dumps({"question": "null alias?", "answers": ["x", None], "audio": "audio/12.wav"}).encode(),
        json.dumps({"question": "number path?", "answers": ["x"], "audio": 13}).encode(),
        json.dumps({"question": "symlink?", "answers": ["x"], "audio": "audio/secret-link.wav"}).encode(),
        json.dumps({"question": None, "answers": ["x"], "audio": "audio/14.wav"}).encode()])
    for name in ("10", "11", "12", "13", "14"):
        (webq / "audio" / f"{name}.wav").write_bytes(good_wav)
    (outside / "secret-q.wav").write_bytes(good_wav)
    (webq / "audio" / "secret-link.wav").symlink_to(outside / "secret-q.wav")

    # TriviaQA: lines 4.. of test.jsonl
    trivia = root / "triviaqa"
    (trivia / "audio" / "8.wav").write_bytes(good_wav)
    (trivia / "audio" / "9.wav").write_bytes(_wav_bytes(np.zeros(0, dtype=np.float32)))
    _append_lines(trivia / "test.jsonl", [
        b'["Which element has the symbol O?", ["Oxygen"]]',  # line 4: not an object
        json.dumps({"question": "escape?", "answer": ["a"], "audio": "../secret/q.wav"}).encode(),  # line 5
        json.dumps({"question": "silence?", "answer": ["b"], "audio": "audio/9.wav"}).encode(),  # line 6
        json.dumps({"question": "no answer field?", "audio": "audio/8.wav"}).encode(),  # line 7
        json.dumps({"question": "bool?", "answer": False, "audio": "audio/10.wav"}).encode(),  # line 8
        json.dumps({"question": "absolute?", "answer": ["a"], "audio": MINI_WAV}).encode(),  # line 9
        json.dumps({"question": "fifo?", "answer": ["a"], "audio": "audio/fifo.wav"}).encode()])  # line 10
    (trivia / "audio" / "10.wav").write_bytes(good_wav)
    os.mkfifo(trivia / "audio" / "fifo.wav")

    # Llama Questions: lines 6.. of the TSV
    llama = root / "llama-questions"
    (llama / "5.wav").write_bytes(good_wav)
    (llama / "secret-link.wav").symlink_to(outside / "secret-q.wav")
    _append_lines(llama / "llama_questions_300.tsv", [b"Escape?\tx\t../../outside/secret-q.wav",  # line 6
                                                      b"Bool?\t[true]\t5.wav",  # line 7: a bool in a JSON list
                                                      b"Symlink?\tx\tsecret-link.wav"])  # line 8

    # sLM21 lexical dev: gold rows for missing / corrupt wavs, and a wav gold.csv does not list
    lex = root / "sLM21-dataset" / "lexical" / "dev"
    _append_lines(lex / "gold.csv", [b"missingWavA,99,en-us,5,zebra,Z IY B R AH,5,1",
                                     b"missingWavB,99,en-us,0,zebro,Z IY B R OW,5,0",
                                     b"corruptWavA,98,en-us,5,tiger,T AY G ER,5,1",
                                     b"corruptWavB,98,en-us,0,tigel,T AY G AH L,5,0"])
    _append_lines(lex / "gold.csv", [b"../../../../outside/secretWav,97,en-us,5,lion,L AY AH N,4,1",
                                     f"{MINI_LEX},97,en-us,0,liom,L AY AH M,4,0".encode(),
                                     b"symlinkWav,96,en-us,5,bear,B EH R,4,1",
                                     b"fifoWav,96,en-us,0,beal,B IY L,4,0"])
    (outside / "secretWav.wav").write_bytes(good_wav)
    (lex / "symlinkWav.wav").symlink_to(outside / "secretWav.wav")
    os.mkfifo(lex / "fifoWav.wav")
    (lex / "corruptWavA.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    (lex / "corruptWavB.wav").write_bytes(good_wav)
    (lex / "strayWav.wav").write_bytes(good_wav)

    # spoken StoryCloze: an unpaired ending and a wav named outside the convention
    ssc = root / "spoken-storycloze" / "sSC"
    shutil.copy(ssc / "0_correct.wav", ssc / "3_correct.wav")
    shutil.copy(ssc / "0_correct.wav", ssc / "story_4.wav")
    shutil.copy(ssc / "0_correct.wav", outside / "secret-story.wav")
    (ssc / "5_correct.wav").symlink_to(outside / "secret-story.wav")
    os.mkfifo(ssc / "5_incorrect.wav")


def _dataset_error_root(root: Path) -> Path:
    """Whole manifests that cannot be read, plus a clean LibriSpeech (it must still be scored)."""
    _copy_suite(root, CV_DIR, "voxpopuli", "llama-questions", "webquestions")
    shutil.copytree(MINI_SUITE / "LibriSpeech" / "test-clean", root / "LibriSpeech" / "test-clean")
    shutil.copytree(MINI_SUITE / "sLM21-dataset", root / "sLM21-dataset")
    tsv = root / CV_DIR / "en" / "test.tsv"
    lines = tsv.read_bytes().splitlines()
    tsv.write_bytes(b"\n".join([lines[0].replace(b"\tsentence\t", b"\ttext\t")] + lines[1:]) + b"\n")
    (root / "voxpopuli" / "transcribed_data" / "en" / "asr_test.tsv").write_bytes(b"")
    llama = root / "llama-questions" / "llama_questions_300.tsv"
    llama.write_bytes(b"\n".join(llama.read_bytes().splitlines()[1:]) + b"\n")
    gold = root / "sLM21-dataset" / "syntactic" / "dev" / "gold.csv"
    rows = [line.split(b",") for line in gold.read_bytes().splitlines()]
    drop = rows[0].index(b"subtype")
    gold.write_bytes(b"\n".join(b",".join(r[:drop] + r[drop + 1:]) for r in rows) + b"\n")
    lex = root / "sLM21-dataset" / "lexical" / "dev" / "gold.csv"
    lex.write_bytes(lex.read_bytes().replace(b",water,", b",wat\xe9r,", 1))  # Latin-1, not UTF-8
    webq = root / "webquestions"
    (webq / "test.jsonl").unlink()
    (webq / "test.parquet").write_bytes(b"PAR1" + b"this is not a parquet file" * 4)
    # manifests that are no regular file: each must be refused at once (a blocking open would hang the run)
    _copy_suite(root, "seedtts_testset", "triviaqa")
    for fifo in (root / "seedtts_testset" / "en" / "meta.lst", root / "triviaqa" / "test.jsonl"):
        fifo.unlink()
        os.mkfifo(fifo)
    (root / "sLM21-dataset" / "lexical" / "test").mkdir()
    os.mkfifo(root / "sLM21-dataset" / "lexical" / "test" / "gold.csv")
    (root / "sLM21-dataset" / "syntactic" / "test" / "gold.csv").mkdir(parents=True)
    return root


def _hostile_sets_root(root: Path, outside: Path) -> Path:
    """Whole manifests that are symlinks out of the root, a FIFO or a directory; a clean LibriSpeech beside them."""
    _copy_suite(root, CV_DIR, "voxpopuli", "llama-questions", "webquestions")
    shutil.copytree(MINI_SUITE / "LibriSpeech" / "test-clean", root / "LibriSpeech" / "test-clean")
    for manifest, secret in ((root / CV_DIR / "en" / "test.tsv", "secret-test.tsv"),
                             (root / "webquestions" / "test.jsonl", "secret-test.jsonl")):
        shutil.copy(manifest, outside / secret)  # a readable table: only the containment check refuses it
        manifest.unlink()
        manifest.symlink_to(outside / secret)
    vox = root / "voxpopuli" / "transcribed_data" / "en" / "asr_test.tsv"
    vox.unlink()
    os.mkfifo(vox)
    llama = root / "llama-questions" / "llama_questions_300.tsv"
    llama.unlink()
    llama.mkdir()
    return root


def _stems(kind: str) -> list[str]:
    gold = (MINI_SUITE / "sLM21-dataset" / kind / "dev" / "gold.csv").read_text().splitlines()
    return [line.split(",")[0] for line in gold[1:] if line.strip()]


def _submission(stems, **special) -> str:
    return "".join(f"{s} {special.get(s, f'{-1.0 - i / 8:.4f}')}\n" for i, s in enumerate(stems))


def _zerospeech_inputs(root: Path, pre: Path) -> None:
    """sLM21 with dev and test splits (the mini suite's dev twice) and four malformed submissions."""
    for kind in ("lexical", "syntactic"):
        for split in ("dev", "test"):
            (root / "sLM21-dataset" / kind).mkdir(parents=True, exist_ok=True)
            (root / "sLM21-dataset" / kind / split).symlink_to(MINI_SUITE / "sLM21-dataset" / kind / "dev")
    lex, syn = _stems("lexical"), _stems("syntactic")
    assert "rEtbHwBxCTU" in lex and syn[0] == "hEWFkMYAYbV"
    (pre / "lexical").mkdir(parents=True)
    (pre / "syntactic").mkdir()
    (pre / "lexical" / "dev.txt").write_text(_submission(lex, rEtbHwBxCTU="nan"))
    (pre / "syntactic" / "dev.txt").write_text(_submission(syn[1:]))  # the first stem's line is missing
    (pre / "lexical" / "test.txt").write_text(_submission(lex) + "rEtbHwBxCTU -0.5\n")  # listed twice
    (pre / "syntactic" / "test.txt").write_text(_submission(syn) + "unknownStem -1.0\n")


def _precomputed_inputs(pre: Path) -> None:
    """Precomputed outputs for the mini suite, one malformed line per file."""
    (pre / "lexical").mkdir(parents=True)
    (pre / "lexical" / "dev.txt").write_text(_submission(_stems("lexical"), RceaTFtSnYB="abc"))
    libri = sorted(line.split(" ", 1)[0] for t in (MINI_SUITE / "LibriSpeech" / "test-clean").rglob("*.trans.txt")
                   for line in t.read_text().splitlines() if line.strip())
    assert "1089-134686-0001" in libri
    lines = [json.dumps({"id": u, "text": "the old man sat down"}) for u in libri]
    lines[libri.index("1089-134686-0001")] = '{"id": "1089-134686-0001", "text": "he said noth'
    (pre / "asr_librispeech-test-clean.jsonl").write_text("\n".join(lines) + "\n")
    (pre / "sqa_webquestions-s2t.jsonl").write_text(
        '{"id": "0", "text": "France"}\n{"text": "Portuguese"}\n{"id": "2", "text": "Shakespeare"}\n')
    (pre / "sqa_llama-questions-s2t.jsonl").write_text(  # id 2 answered twice, differently
        '{"id": "1", "text": "Paris"}\n{"id": "2", "text": "eight"}\n{"id": "3", "text": "Mars"}\n'
        '{"id": "4", "text": "blue"}\n{"id": "2", "text": "six"}\n')
    (pre / "sqa_triviaqa-s2t.jsonl").write_text(
        '{"id": "0", "text": "oxygen"}\n{"id": "1", "answer": "six"}\n{"id": "2", "text": "da vinci"}\n')
    stories = [f"{i}_{w}" for i in range(3) for w in ("correct", "incorrect")]
    (pre / "slm_sstorycloze.jsonl").write_text("".join(
        json.dumps({"id": s, "logprob": -3.0} if s == "1_correct" else {"id": s, "score": -3.0}) + "\n"
        for s in stories))
    (pre / "slm_tstorycloze.jsonl").write_text("".join(
        json.dumps({"id": s, "score": "high" if s == "1_correct" else -3.0}) + "\n" for s in stories))


# ---------------------------------------------------------------------------------------------------------------
# Running the CLI


def _cli_args(data_root: Path, out: Path, tasks: list[str], *extra: str, model: str = "dummy") -> list[str]:
    return ["run", "--model", model, "--tasks", ",".join(tasks), "--data-root", str(data_root), "--output", str(out),
            "--no-progress", *extra]


def _start(args: list[str], log: Path) -> tuple[subprocess.Popen, Path]:
    """Start ``python -m most_eval ARGS`` with stdout/stderr in files (no pipe can fill up while others run)."""
    env = {**os.environ, "COLUMNS": "200"}
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "most_eval", *args], stdout=out, stderr=err, text=True, env=env)
    return proc, log


def _finish(started: tuple[subprocess.Popen, Path], timeout: int = 300) -> subprocess.CompletedProcess:
    proc, log = started
    proc.wait(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, log.with_suffix(".out").read_text(),
                                       log.with_suffix(".err").read_text())


def _invoke(*args: str):
    """The CLI in-process (typer's runner): for the refusals, which never reach the evaluation."""
    from typer.testing import CliRunner

    from most_eval.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _collect(proc: subprocess.CompletedProcess, out: Path) -> dict:
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    records = {}
    for task in results.get("results", {}):
        path = out / "samples" / f"{task.replace(':', '_')}.jsonl"
        if path.is_file():
            by_id: dict[str, dict] = {}
            for r in read_jsonl(path):
                by_id.setdefault(str(r["id"]), r)
            records[task] = by_id
    return {"proc": proc, "out": out, "results": results.get("results", {}), "records": records}


def _limit_memory():  # the torch group builds models: never let a bad checkpoint take the machine's memory
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


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
            [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import test_malformed_corpus as m; "
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
# The torch group: runs in its own memory-capped process (python -c ... _torch_group_main)


class _Payload:
    """A pickle that creates a file when unpickled: proof that nothing unpickled it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def _torch_group_main(workdir: str, earlier: str) -> None:
    """Build tiny MoST checkpoints, break them, run `most-eval run --model most` on each; load bad training YAMLs.
    Writes ``answers.json`` in ``workdir``: per entry id, the exit code and stderr (or the raised message)."""
    import torch
    from typer.testing import CliRunner

    from most_eval.cli import app
    from most_reference.model import MoSTConfig, MoSTForCausalLM

    work = Path(workdir)
    marker = work / "pwned"
    answers: dict = {}
    config = json.loads((REPO / "reference_impl" / "configs" / "most_tiny.json").read_text())
    torch.manual_seed(0)
    lm = MoSTForCausalLM(MoSTConfig.from_dict(config)).eval()

    def checkpoint(name: str, **save) -> Path:
        folder = work / name
        lm.save_pretrained(folder, **save)
        (folder / "most.json").write_text(json.dumps({"stage": "stage2"}))
        return folder

    folders = {"checkpoint-missing-dir": work / "no-such-checkpoint"}
    folders["checkpoint-no-most-json"] = checkpoint("no_most_json")
    (folders["checkpoint-no-most-json"] / "most.json").unlink()
    folders["checkpoint-most-json-invalid"] = checkpoint("most_json_invalid")
    (folders["checkpoint-most-json-invalid"] / "most.json").write_text("{stage: stage2")
    folders["checkpoint-pickle-as-safetensors"] = checkpoint("pickle")
    (folders["checkpoint-pickle-as-safetensors"] / "model.safetensors").write_bytes(
        pickle.dumps(_Payload(str(marker))))
    folders["checkpoint-torch-save-as-safetensors"] = checkpoint("torch_save")
    torch.save(_Payload(str(marker)), folders["checkpoint-torch-save-as-safetensors"] / "model.safetensors")
    folders["checkpoint-truncated-safetensors"] = checkpoint("truncated")
    weights = folders["checkpoint-truncated-safetensors"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    folders["checkpoint-index-names-missing-shard"] = checkpoint("sharded", max_shard_size="100KB")
    index = json.loads((folders["checkpoint-index-names-missing-shard"] / "model.safetensors.index.json").read_text())
    assert "model-00002-of-00010.safetensors" in index["weight_map"].values()
    (folders["checkpoint-index-names-missing-shard"] / "model-00002-of-00010.safetensors").unlink()
    folders["checkpoint-no-config-json"] = checkpoint("no_config")
    (folders["checkpoint-no-config-json"] / "config.json").unlink()

    runner = CliRunner()
    for key, folder in folders.items():
        res = runner.invoke(app, _cli_args(MINI_SUITE, Path(earlier), [LIBRI], "--model-args",
                                           f"checkpoint={folder},dtype=float32", model="most"))
        answers[key] = {"exit_code": res.exit_code, "stderr": res.stderr, "stdout": res.stdout[-2000:]}

    yamls = {
        "config-train-yaml-python-tag": ("python_tag.yaml",
                                         f"seed: !!python/object/apply:builtins.open ['{marker}', 'w']\n"),
        "config-train-yaml-unknown-key": ("unknown_key.yaml", "seed: 0\ntrainig: {steps: 3}\n"),
        "config-train-yaml-syntax-error": ("syntax_error.yaml", "seed: 0\nmodel: {config: [most_tiny.json\n"),
        "config-train-yaml-not-a-mapping": ("list.yaml", "- seed\n- 0\n"),
    }
    try:
        from most_reference.train import load_config
    except Exception as exc:  # the recipe module is missing or broken: say so in every answer
        for key in yamls:
            answers[key] = {"raised": None, "message": f"cannot import most_reference.train.load_config: {exc!r}"}
    else:
        for key, (name, text) in yamls.items():
            path = work / name
            path.write_text(text)
            try:
                load_config(path)
                answers[key] = {"raised": None, "message": "accepted"}
            except Exception as exc:
                answers[key] = {"raised": type(exc).__name__, "message": str(exc)}
    answers.update(_train_manifest_answers(work / "train_manifests"))
    answers["marker"] = marker.exists()
    (work / "answers.json").write_text(json.dumps(answers))


def _train_manifest_answers(work: Path) -> dict:
    """Training manifests that are no regular file (FIFO, directory) or a symlink out of their layout: each call of
    the training data pipeline must raise one line naming the file, never block or read outside."""
    from most_reference import manifests as M

    work.mkdir()
    for name in ("speech_fifo.jsonl", "text_fifo.txt", "instructions_fifo.jsonl"):
        os.mkfifo(work / name)
    (work / "cuts.jsonl.gz").mkdir()
    seed = work / "seedtts_testset" / "en"
    seed.mkdir(parents=True)
    (work / "secret-meta.lst").write_text("utt|secret text|prompt-wavs/x.wav|secret\n")
    (seed / "meta.lst").symlink_to(work / "secret-meta.lst")
    calls = {
        "hostile-train-speech-jsonl-fifo": lambda: M.speech_manifest([{"format": "jsonl",
                                                                       "path": work / "speech_fifo.jsonl"}]),
        "hostile-train-libriheavy-directory": lambda: M.speech_manifest([{"format": "libriheavy",
                                                                          "path": work / "cuts.jsonl.gz"}]),
        "hostile-train-text-fifo": lambda: M.text_corpus([{"format": "txt", "path": work / "text_fifo.txt"}], []),
        "hostile-train-instructions-fifo": lambda: M.instructions([{"format": "jsonl",
                                                                    "path": work / "instructions_fifo.jsonl"}]),
        "hostile-train-seedtts-meta-symlink-out": lambda: M.speech_manifest([{"format": "seedtts", "path": seed}]),
    }
    answers = {}
    for key, call in calls.items():
        try:
            answers[key] = {"raised": None, "message": f"accepted: {call()!r}"[:300]}
        except Exception as exc:
            answers[key] = {"raised": type(exc).__name__, "message": str(exc)}
    return answers


# ---------------------------------------------------------------------------------------------------------------
# Checks


def _one_line(text: str) -> bool:
    return bool(text.strip()) and "\n" not in text.strip()


def _assert_named(answer: str, entry: Entry) -> None:
    assert _one_line(answer), f"{entry.id}: answer is not one line: {answer!r}"
    assert entry.file in answer, f"{entry.id}: answer does not name {entry.file!r}: {answer!r}"
    assert re.search(entry.reason, answer), f"{entry.id}: answer gives no reason /{entry.reason}/: {answer!r}"


def _check_record(entry: Entry, run: dict, clean: dict | None) -> None:
    proc = run["proc"]
    assert proc.returncode == 0, f"{entry.where} run failed (rc {proc.returncode}): {proc.stderr[-3000:]}"
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
    assert proc.returncode == 0, f"{entry.where} run crashed (rc {proc.returncode}): {proc.stderr[-3000:]}"
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
    assert proc.returncode == 0, f"{entry.where} run crashed (rc {proc.returncode}): {proc.stderr[-3000:]}"
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
    assert broken["proc"].returncode == 0, broken["proc"].stderr[-3000:]
    expected = {(e.task, e.sample) for e in CORPUS if e.where == "records"} | {(SWUGGY, "missingWavB")}  # A's twin
    found = {(task, sid) for task, records in broken["records"].items() for sid, r in records.items() if "error" in r}
    assert found == expected  # every malformed sample has its error record, and no good sample has one
    errors = sum(r.get("errors", 0) for r in broken["results"].values())
    assert errors == len(expected)
    assert f"{errors} error record(s)" in broken["proc"].stdout
    libri_errors = broken["results"][LIBRI]["errors"]
    assert failing["proc"].returncode == 1, failing["proc"].stderr[-3000:]
    assert f"{libri_errors} sample(s) had errors" in failing["proc"].stderr
