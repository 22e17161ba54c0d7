"""TTS tasks: synthesise each sentence, transcribe it with a judge ASR (intelligibility WER), and compare the
speaker embedding of the generated speech with that of the prompt utterance (SIM).

* ``tts:librispeech-test-clean`` (default): LibriSpeech test-clean sentences, as in the paper; the speaker prompt is
  another utterance of the same speaker (``prompt=other``; ``same`` uses the utterance itself, ``none`` no prompt).
  Protocol ``whisper``: corpus WER after Whisper's English normaliser.
* ``tts:seed-tts-eval-en``: Seed-TTS-eval's English list (``seedtts_testset/en/meta.lst``) under its own protocol:
  its normalisation, mean of per-utterance WERs and SIM, 3 decimals. A missing audio file is an error record.

The runner keeps the generated audio under ``OUTPUT/audio/<task>/<cache key>/<name>.wav``, ``<name>`` being the id made a
safe file name (:func:`~most_eval.data.model_outputs.speech_file`; the record's ``audio`` field holds that path);
scoring reads it back from there on every run. Results name the judge and the embedder.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from most_eval.core.adapter import SYNTHESIZE, Request
from most_eval.core.audio import load_audio
from most_eval.data.files import file_problem, manifest_path, safe_path, text_field
from most_eval.data.model_outputs import speech_file
from most_eval.data.hf_source import read_source, row_audio
from most_eval.data.tables import BadLine, read_lines
from most_eval.scoring.speech_quality import add_mos, check_mos, mean_mos, mos_differences
from most_eval.scoring.wer import aggregate_wer, wer_records
from most_eval.scoring.comparability import judge_difference
from most_eval.core.fingerprints import stamp_digest
from most_eval.scoring.paper import REFERENCE_JUDGES
from most_eval.core.task import LeaderboardSlot, Sample, Task, task_file_name
from most_eval.core.errors import DatasetError

from most_eval_tasks.asr.task import hf_utterances
from most_eval.data.speech_corpora import (common_voice_corpus, find_common_voice, read_common_voice, read_librispeech,
                                         read_voxpopuli)
from most_eval.scoring.bootstrap import check_resamples


@dataclass(frozen=True)
class TTSOptions:
    """Options of the TTS tasks."""

    # speaker embedder for SIM: resemblyzer | ecapa:PATH | wavlm:PATH | seedtts-wavlm:PATH (seed-tts-eval's own)
    embedder: str = "resemblyzer"
    prompt: str = "other"  # LibriSpeech speaker prompt: other (same speaker, other utterance) | same | none
    bootstrap: int = field(default=1000, metadata={"scoring": True})  # resamples for the WER CI (0: none)
    source: str | None = None  # the split in Hugging Face form (save_to_disk or parquet), not the folder layout
    #: speech quality of each generated clip: dnsmos (DNSMOS P.835 + P.808 through speechmos) | utmos:PATH (UTMOS22
    #: from a local file) | both joined with + | none
    mos: str = field(default="dnsmos", metadata={"scoring": True})

    def __post_init__(self):
        check_mos(self.mos)
        if self.prompt not in ("other", "same", "none"):
            raise ValueError(f"unknown prompt mode {self.prompt!r}; use other, same or none")
        kind, _, path = self.embedder.partition(":")
        if kind not in ("resemblyzer", "ecapa", "wavlm", "seedtts-wavlm") or (kind != "resemblyzer" and not path):
            raise ValueError(f"unknown speaker embedder {self.embedder!r}; use resemblyzer, ecapa:PATH, wavlm:PATH "
                             f"or seedtts-wavlm:PATH")
        check_resamples(self.bootstrap)


@dataclass(frozen=True)
class SameUtteranceTTSOptions(TTSOptions):
    """Test sets without a speaker grouping use the utterance itself as the speaker prompt (``same`` or ``none``)."""

    prompt: str = "same"

    def __post_init__(self):
        super().__post_init__()
        if self.prompt == "other":
            raise ValueError("prompt=other needs speaker groups (LibriSpeech only); use same or none")


class TTSTask(Task):
    """Shared scoring of the TTS tasks; subclasses build the samples."""

    capability = SYNTHESIZE
    Options = TTSOptions
    needs = frozenset({"judge", "embedder", "mos"})  # lent by the run set-up through TaskContext (from the options)
    protocol = "whisper"
    digits = 4
    headline_metric = "wer"
    reference_judge = "hubert-large-ls960-ft"  # the MoST release's TTS judge (most_eval.scoring.paper)

    def score(self, samples: list[Sample], outputs: list) -> list[dict]:
        judge = self.context.judge
        self.context.step("judge")
        hyps, judge_seconds = judge.transcribe_timed([a.resampled(judge.sample_rate) for a in outputs])
        records = wer_records([s.id for s in samples], [s.reference for s in samples], hyps, self.protocol)
        for r, a, spent in zip(records, outputs, judge_seconds):  # the judge's time, its share by duration
            r["audio_seconds"] = round(a.duration, 4)
            r["judge_seconds"] = round(spent, 6)
        with_prompt = [i for i, s in enumerate(samples) if s.request.prompt]
        if with_prompt:
            self.context.step("speaker embedder")
            prompts = [load_audio(samples[i].request.prompt, None, self.context.max_audio_seconds)
                       for i in with_prompt]
            sims = self.context.embedder.similarity(prompts, [outputs[i] for i in with_prompt])
            for i, sim in zip(with_prompt, sims):
                if math.isfinite(sim):
                    records[i]["sim"] = round(sim, 6)
                else:  # e.g. a clip shorter than one embedder frame: left out of SIM, as seed-tts-eval skips it
                    records[i]["sim_skipped"] = "no speaker embedding (clip too short)"
        if self.context.mos is not None:
            self.context.step("speech quality")
            add_mos(records, self.context.mos.score(outputs))
        for s, r in zip(samples, records):
            r["audio"] = speech_file(self.name, self.context.cache_key, s.id)
        return records

    def aggregate(self, items: list[dict]) -> dict:
        metrics = aggregate_wer(items, self.protocol, resamples=self.options.bootstrap, seed=self.context.seed)
        sims = [r["sim"] for r in items if "sim" in r]
        if sims:
            metrics["sim"] = round(float(np.mean(sims)), 3 if self.protocol == "seed-tts-eval" else self.digits)
        judge = self.context.judge
        path = getattr(judge.args, "path", "")
        metrics["judge"] = f"{judge.name}:{Path(str(path)).name}" if path else judge.name
        metrics["embedder"] = self.context.embedder.name if sims else None
        metrics["speaker_prompt"] = self.options.prompt  # other / same / none: what SIM compares with
        metrics.update(mean_mos(items))
        metrics["mos"] = self.context.mos.name if self.context.mos is not None else None
        skipped = sum(1 for r in items if "sim_skipped" in r)
        if skipped:
            metrics["sim_skipped"] = skipped
        audio = sum(r.get("audio_seconds", 0.0) for r in items)
        if audio:  # real-time factor of the judge ASR: seconds of compute per second of generated speech
            metrics["judge_rtf"] = round(sum(r.get("judge_seconds", 0.0) for r in items) / audio, 4)
        return metrics

    def config(self) -> dict:
        """The config with the judge's identity and fingerprint (its weights stamp included) and the embedder's
        weights stamp, so two runs judged by different weights never compare as one protocol."""
        judge = self.context.judge
        _, _, path = self.options.embedder.partition(":")
        return {**super().config(), "protocol": self.protocol,
                "judge": judge.identity() if judge is not None else None,
                "judge_fingerprint": judge.fingerprint() if judge is not None else None,
                "embedder_stamp": stamp_digest(path) if path else None}

    def protocol_differences(self) -> list[str]:
        """The judge, and a speaker-prompt mode other than the task's own (the WER's verdict)."""
        ref = REFERENCE_JUDGES[self.reference_judge]
        why = judge_difference(self.context.judge, ref.adapter, ref.folder, ref.describe(), ref.args)
        reasons = [why] if why else []
        default = type(self.options)().prompt
        if self.options.prompt != default:
            reasons.append(f"speaker prompt {self.options.prompt}, not the protocol's {default}")
        return reasons

    def metric_differences(self) -> dict[str, list[str]]:
        """SIM has its own verdict: the paper reports no SIM for these sets (only WER)."""
        return {"sim": ["the paper reports no SIM for this test set (its TTS table is WER only)"], **mos_differences()}

    def protocol_notes(self) -> list[str]:
        notes = [f"speaker prompt: {self.options.prompt}"]
        if self.options.prompt != "none" and not self.context.model_uses_speaker_prompt:
            notes.append("the model ignores the speaker prompt: SIM compares its own voice with the prompt's")
        return notes


class LibriSpeechTTS(TTSTask):
    name = "tts:librispeech-test-clean"
    description = "synthesise LibriSpeech test-clean sentences; judge-ASR WER and prompt SIM"
    leaderboard = LeaderboardSlot("asr_tts_wer", "librispeech_clean", row_task="tts")
    dataset_folder = "LibriSpeech"
    split = "test-clean"
    hf_columns = ("id", "text")  # openslr/librispeech_asr
    hf_id_is_path = False

    def samples(self) -> list[Sample]:
        utts = hf_utterances(self) if self.options.source else read_librispeech(self.require_root(), self.split)
        by_speaker = defaultdict(list)
        for u in utts:
            if not u.error:
                by_speaker[u.id.split("-")[0]].append(u)
        out = []
        for u in utts:
            if u.error or not u.text:
                out.append(Sample(u.id, None, u.text, u.error or f"{u.id}: empty transcript", 0.0, u.files))
                continue
            prompt = None
            if self.options.prompt == "same":
                prompt = u.audio
            elif self.options.prompt == "other":
                same = by_speaker[u.id.split("-")[0]]
                prompt = same[(same.index(u) + 1) % len(same)].audio
            out.append(Sample(u.id, Request(SYNTHESIZE, text=u.text, prompt=prompt), u.text, None,
                              float(len(u.text)), u.files))
        return out


class LibriSpeechOtherTTS(LibriSpeechTTS):
    name = "tts:librispeech-test-other"
    description = "synthesise LibriSpeech test-other sentences; judge-ASR WER and prompt SIM"
    leaderboard = LeaderboardSlot("asr_tts_wer", "librispeech_other", row_task="tts")
    split = "test-other"


class _UtteranceListTTS(TTSTask):
    """TTS on an ASR test set's sentences, the utterance itself as the speaker prompt (``prompt=same``)."""

    Options = SameUtteranceTTSOptions
    hf_id_is_path = False

    def utterances(self) -> list:
        raise NotImplementedError

    def samples(self) -> list[Sample]:
        out = []
        for u in (hf_utterances(self) if self.options.source else self.utterances()):
            if u.error or not u.text.strip():
                out.append(Sample(u.id, None, u.text, u.error or f"{u.id}: empty sentence", 0.0, u.files))
                continue
            prompt = u.audio if self.options.prompt == "same" else None
            out.append(Sample(u.id, Request(SYNTHESIZE, text=u.text, prompt=prompt), u.text, None,
                              float(len(u.text)), u.files))
        return out


class VoxPopuliTTS(_UtteranceListTTS):
    name = "tts:voxpopuli-en"
    description = "synthesise VoxPopuli English test sentences (normalized_text); judge-ASR WER and prompt SIM"
    leaderboard = LeaderboardSlot("asr_tts_wer", "voxpopuli", row_task="tts")
    dataset_folder = "voxpopuli"
    hf_columns = ("audio_id", "normalized_text")  # facebook/voxpopuli

    def utterances(self) -> list:
        return read_voxpopuli(self.require_root(), "test")


class CommonVoiceTTS(_UtteranceListTTS):
    name = "tts:commonvoice-en"
    description = "synthesise Common Voice English test sentences; judge-ASR WER and prompt SIM (newest cv-corpus-*)"
    leaderboard = LeaderboardSlot("asr_tts_wer", "common_voice", row_task="tts")
    dataset_folder = "cv-corpus-*/en"
    hf_columns = ("path", "sentence")  # mozilla-foundation/common_voice_*
    hf_id_is_path = True

    @property
    def root(self) -> Path:
        return find_common_voice(self.data_root)

    def utterances(self) -> list:
        return read_common_voice(self.root, "test")

    def config(self) -> dict:
        return {**super().config(), "corpus": common_voice_corpus(self.data_root)}


class SeedTTSEvalEN(TTSTask):
    name = "tts:seed-tts-eval-en"
    description = "Seed-TTS-eval English list; its normalisation, mean per-utterance WER, SIM (3 decimals)"
    dataset_folder = "seedtts_testset/en"
    protocol = "seed-tts-eval"
    reference_judge = "whisper-large-v3"

    def metric_differences(self) -> dict[str, list[str]]:
        """SIM's own verdict: seed-tts-eval's WavLM-large verification model is its embedder; WER does not depend
        on it."""
        reasons = super().protocol_differences()  # the judge and the prompt mode shape the audio SIM is taken on
        if not self.options.embedder.startswith("seedtts-wavlm:"):
            reasons.append(f"SIM embedder {self.options.embedder.partition(':')[0]}, not seed-tts-eval's WavLM-large "
                           f"verification model (seedtts-wavlm:PATH)")
        return {"sim": reasons, **mos_differences()}

    #: the Hugging Face form (``source=PATH``): meta.lst's fields as columns, one row per line; the prompt audio in
    #: ``prompt_audio`` (embedded ``{"bytes", "path"}`` or a path) or else in ``prompt_wav`` (a path inside the
    #: source folder, as meta.lst gives it, or embedded); ``prompt_text`` and ``gt_wav`` may be present, unused as
    #: in the folder layout
    hf_columns = ("utt", "infer_text")
    hf_prompt_columns = ("prompt_audio", "prompt_wav")

    def source_samples(self) -> list[Sample]:
        """The samples of ``source=PATH``: the same ids, texts, prompts and error records as meta.lst's lines."""
        data = read_source(self.options.source, self.hf_columns, optional=self.hf_prompt_columns)
        prompt_column = next((c for c in self.hf_prompt_columns if data.rows and c in data.rows[0].cells), None)
        if data.rows and prompt_column is None:
            raise DatasetError(f"{self.options.source}: missing column {' or '.join(self.hf_prompt_columns)} "
                               f"(the prompt audio)")
        extract = self.context.output_dir / "data" / task_file_name(self.name)
        out = []
        for row in data.rows:
            try:
                utt = text_field(row.cells["utt"], "utt")
                if not utt.strip():
                    raise ValueError("empty utterance id")
            except ValueError as exc:
                out.append(Sample(Path(row.where).name, None, "", f"{row.where}: {exc}", 0.0, data.files))
                continue
            try:
                text = text_field(row.cells["infer_text"], "infer_text")
            except ValueError as exc:
                out.append(Sample(utt, None, "", f"{row.where}: {exc}", 0.0, data.files))
                continue
            try:
                prompt, files = row_audio(row, prompt_column, data, utt, extract)
            except ValueError as exc:  # the reason names the row
                out.append(Sample(utt, None, text, str(exc), 0.0, data.files))
                continue
            out.append(Sample(utt, Request(SYNTHESIZE, text=text, prompt=prompt), text, None, float(len(text)), files))
        return out

    def samples(self) -> list[Sample]:
        if self.options.source:
            return self.source_samples()
        meta = manifest_path(self.require_root(), "meta.lst", "Seed-TTS-eval test list")
        out = []
        for entry in read_lines(meta):
            if isinstance(entry, BadLine):
                out.append(Sample(f"meta.lst:{entry.line}", None, "", str(entry), 0.0, (meta,)))
                continue
            number, line = entry
            fields = line.split("|")
            utt = fields[0] if fields[0].strip() else f"meta.lst:{number}"
            if len(fields) < 4 or not fields[0].strip():
                reason = (f"expected utt|prompt_text|prompt_wav|infer_text, got {len(fields)} field(s)"
                          if len(fields) < 4 else "empty utterance id")
                out.append(Sample(utt, None, "", f"{meta}:{number}: {reason}", 0.0, (meta,)))
                continue
            _, _prompt_text, prompt_wav, text = fields[:4]
            try:
                prompt = safe_path(meta.parent, prompt_wav)
            except ValueError as exc:
                out.append(Sample(utt, None, text, f"{meta}:{number}: {exc}", 0.0, (meta,)))
                continue
            problem = file_problem(prompt)
            if problem:
                out.append(Sample(utt, None, text, f"{prompt}: prompt audio listed in meta.lst {problem}", 0.0,
                                  (meta,)))
                continue
            out.append(Sample(utt, Request(SYNTHESIZE, text=text, prompt=prompt), text, None, float(len(text)),
                              (meta, prompt)))
        return out
