"""The malformed-input corpus of tests/test_malformed_corpus.py: one :class:`Entry` per malformed input (broken
audio, transcripts, manifests, score files, results files, checkpoints and configs), the task names and dataset paths
they use, and the count behind the terminal summary line ``malformed corpus: N inputs, M answered``.

A plain module (no tests): ``malformed_inputs`` writes the inputs, ``malformed_cli`` runs the commands that answer
them, and ``test_malformed_corpus`` checks each answer. The ``hostile-*`` entries are inputs that try to make the tool
read outside the dataset folder or block it (see the docstring of ``test_malformed_corpus``).
"""

from __future__ import annotations

from dataclasses import dataclass

from conftest import MINI_SUITE


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
