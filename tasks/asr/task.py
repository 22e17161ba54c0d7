"""ASR tasks: transcribe each utterance, corpus WER after normalisation, per-utterance S/D/I in the samples file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from most_eval.core.adapter import TRANSCRIBE, Request
from most_eval.scoring.wer import NORMALIZERS, WHISPER_NORMALIZERS, aggregate_wer, wer_records
from most_eval.core.task import LeaderboardSlot, Sample, Task, task_file_name

from most_eval.data.speech_corpora import (Utterance, common_voice_corpus, find_common_voice, read_common_voice,
                                         read_hf_utterances, read_librispeech, read_voxpopuli)
from most_eval.scoring.bootstrap import check_resamples


@dataclass(frozen=True)
class ASROptions:
    """Options of every ASR task."""

    protocol: str = "whisper"  # text normalisation + WER definition: "whisper" (corpus WER) or "seed-tts-eval"
    bootstrap: int = field(default=1000, metadata={"scoring": True})  # resamples for the 95 % CI of WER (0: none)
    source: str | None = None  # the split in Hugging Face form (save_to_disk folder or parquet), not the folder layout
    # whose copy of Whisper's English normaliser (protocol whisper): whisper-normalizer, or openai-whisper's own (the
    # Open ASR Leaderboard's; the package must be installed)
    normalizer: str = field(default="whisper-normalizer", metadata={"scoring": True})

    def __post_init__(self):
        if self.protocol not in NORMALIZERS:
            raise ValueError(f"unknown WER protocol {self.protocol!r}; known: {', '.join(NORMALIZERS)}")
        if self.normalizer not in WHISPER_NORMALIZERS:
            raise ValueError(f"unknown normalizer {self.normalizer!r}; use {' or '.join(WHISPER_NORMALIZERS)}")
        if self.normalizer != "whisper-normalizer":
            if self.protocol != "whisper":
                raise ValueError(f"normalizer={self.normalizer} is a copy of Whisper's normaliser: protocol whisper only")
            WHISPER_NORMALIZERS[self.normalizer]("")  # not installed: refused here, before any model loads
        check_resamples(self.bootstrap)


class ASRTask(Task):
    """Base of the ASR tasks: subclasses implement :meth:`utterances` (the folder layout) and name the columns of
    the dataset card's Hugging Face form in ``hf_columns`` (id, text; ``hf_id_is_path``: the id is a file stem)."""

    capability = TRANSCRIBE
    Options = ASROptions
    headline_metric = "wer"
    hf_columns: tuple[str, str] = ("id", "text")
    hf_id_is_path = False

    def utterances(self) -> list[Utterance]:
        """The test set's utterances (readers in :mod:`most_eval.data.speech_corpora`)."""
        raise NotImplementedError

    def all_utterances(self) -> list[Utterance]:
        """From ``--task-args source=PATH`` (Hugging Face form) when given, else from the folder layout."""
        if self.options.source:
            return hf_utterances(self)
        return self.utterances()

    def samples(self) -> list[Sample]:
        return [Sample(u.id, None if u.error else Request(TRANSCRIBE, audio=u.audio), u.text, u.error,
                       u.duration, u.files) for u in self.all_utterances()]

    def score(self, samples: list[Sample], outputs: list) -> list[dict]:
        return wer_records([s.id for s in samples], [s.reference for s in samples], list(outputs),
                           self.options.protocol, self.options.normalizer)

    def aggregate(self, items: list[dict]) -> dict:
        return aggregate_wer(items, self.options.protocol, resamples=self.options.bootstrap,
                             seed=self.context.seed, implementation=self.options.normalizer)

    def protocol_differences(self) -> list[str]:
        if self.options.protocol != "whisper":
            return [f"WER protocol {self.options.protocol}, not the paper's (Whisper-normalised corpus WER)"]
        return []


class LibriSpeechASR(ASRTask):
    """LibriSpeech split read from ``LibriSpeech/<split>``."""

    dataset_folder = "LibriSpeech"
    split = ""

    def utterances(self) -> list[Utterance]:
        return read_librispeech(self.require_root(), self.split)


class LibriSpeechTestClean(LibriSpeechASR):
    name = "asr:librispeech-test-clean"
    description = "LibriSpeech test-clean (2,620 utts), corpus WER after Whisper's English normaliser"
    leaderboard = LeaderboardSlot("asr_tts_wer", "librispeech_clean", row_task="asr")
    split = "test-clean"


class LibriSpeechTestOther(LibriSpeechASR):
    name = "asr:librispeech-test-other"
    description = "LibriSpeech test-other (2,939 utts), corpus WER after Whisper's English normaliser"
    leaderboard = LeaderboardSlot("asr_tts_wer", "librispeech_other", row_task="asr")
    split = "test-other"


@dataclass(frozen=True)
class VoxPopuliOptions(ASROptions):
    """VoxPopuli adds the reference column choice."""

    column: str = "normalized_text"  # or "raw_text"


class VoxPopuliEN(ASRTask):
    name = "asr:voxpopuli-en"
    description = "VoxPopuli English ASR test (asr_test.tsv + ogg), corpus WER"
    leaderboard = LeaderboardSlot("asr_tts_wer", "voxpopuli", row_task="asr")
    dataset_folder = "voxpopuli"
    Options = VoxPopuliOptions
    hf_columns = ("audio_id", "normalized_text")  # facebook/voxpopuli

    def utterances(self) -> list[Utterance]:
        return read_voxpopuli(self.require_root(), "test", self.options.column)


@dataclass(frozen=True)
class CommonVoiceOptions(ASROptions):
    """Common Voice adds the corpus version (folder ``cv-corpus-<version>``; newest found by default)."""

    version: str | None = None


class CommonVoiceEN(ASRTask):
    name = "asr:commonvoice-en"
    description = "Common Voice English test.tsv + clips/*.mp3, corpus WER"
    leaderboard = LeaderboardSlot("asr_tts_wer", "common_voice", row_task="asr")
    dataset_folder = "cv-corpus-*/en"
    Options = CommonVoiceOptions
    hf_columns = ("path", "sentence")  # mozilla-foundation/common_voice_*
    hf_id_is_path = True

    @property
    def root(self) -> Path:
        return find_common_voice(self.data_root, self.options.version)

    def utterances(self) -> list[Utterance]:
        return read_common_voice(self.root, "test")

    def config(self) -> dict:
        """The config with the corpus folder actually read (``cv-corpus-<version>``), not just the option."""
        return {**super().config(), "corpus": common_voice_corpus(self.data_root, self.options.version)}


def hf_utterances(task: Task) -> list[Utterance]:
    """A task's utterances from ``source=PATH``: its ``hf_columns``, embedded audio written under
    ``OUTPUT/data/<task>/``."""
    id_column, text_column = task.hf_columns
    column = getattr(task.options, "column", None)  # VoxPopuli's reference column choice applies here too
    if column and text_column == "normalized_text":
        text_column = column
    return read_hf_utterances(Path(task.options.source), id_column, text_column,
                              task.context.output_dir / "data" / task_file_name(task.name), task.hf_id_is_path)
