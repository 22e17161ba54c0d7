"""Training data for MoST: the per-task example tables and the micro-batch dataset the recipe iterates.

`build_task_data` turns the manifests (most_reference.manifests: utterances, text documents, instructions) and their
units (most_reference.units) into one table per mixture task; `MicroBatchDataset` loads, formats and collates the
micro-batch a `MicroBatchSpec` names, leaving out (and reporting) examples whose audio cannot be used.

Command line, manifests and units outside a training run:

    python -m most_reference.data manifest FORMAT PATH --out MANIFEST.jsonl
    python -m most_reference.data extract-units MANIFEST.jsonl --hubert DIR (--quantizer FILE | --fit-kmeans K) \
        --out UNITS.jsonl
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from most_eval.core.audio import AudioError

from .manifests import (SPEECH_READERS, BadDataLog, BadItem, Instruction, Utterance, read_speech_jsonl,
                        speech_manifest, warn_only, write_manifest)
from .mixing import IGNORE, Example, Formatter, MicroBatchSpec, Sequence, collate
from .speech_encoder import SAMPLE_RATE
from .units import UnitStore, collect_features, extract_units, fit_kmeans, load_waveform

# re-exported: the recipe (train.py) reads its whole data layer as `D.<name>`
from .manifests import instructions, text_corpus
from .speech_encoder import KMeansQuantizer
from .units import hubert_frames_fn, unit_items

__all__ = ["TaskData", "build_task_data", "MicroBatchDataset", "main",
           # what train.py reads as `D.<name>` from manifests, units and speech_encoder
           "BadDataLog", "speech_manifest", "text_corpus", "instructions", "warn_only", "UnitStore", "unit_items",
           "fit_kmeans", "collect_features", "extract_units", "hubert_frames_fn", "KMeansQuantizer"]


# -----------------------------------------------------------------------------------------------------------------
# The per-task example tables and the micro-batch dataset


@dataclass
class TaskData:
    """Everything the mixture samples from: one list per task (indices are what MixturePlan draws)."""

    asr: list[Utterance]
    tts: list[Utterance]  # utterances with units
    text_lm: list[tuple[str, str]]
    speech_instruction: list[tuple[Instruction, str]]  # (record, "text" | "speech" answer)
    text_instruction: list[tuple[Instruction, str]]

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in
                ("asr", "tts", "text_lm", "speech_instruction", "text_instruction")}


def build_task_data(speech: list[Utterance], docs: list[tuple[str, str]], instr: list[Instruction],
                    units: UnitStore, bad=warn_only) -> TaskData:
    """Task tables; an utterance without units is not a TTS example (reported), an answer without units not a
    spoken answer."""
    tts = [u for u in speech if u.id in units]
    without = [u.id for u in speech if u.id not in units]
    if without:  # one line, not one per utterance: a partial extraction can leave millions
        bad("tts", f"{len(without)} utterances, e.g. {without[0]}", "no units (not extracted, or audio unreadable)")
    s_instr, t_instr = [], []
    for ins in instr:
        answers = (["text"] if ins.answer_text.strip() else []) + \
                  (["speech"] if ins.answer_audio and f"{ins.id}#answer" in units else [])
        for kind in answers:
            if ins.question_audio:
                s_instr.append((ins, kind))
            if ins.question_text.strip():
                t_instr.append((ins, kind))
    return TaskData(list(speech), tts, list(docs), s_instr, t_instr)


class MicroBatchDataset(torch.utils.data.Dataset):
    """Map-style dataset whose "index" is a MicroBatchSpec: loads, formats and collates that micro-batch.

    Examples that fail to load (undecodable audio, audio longer than `max_audio_s` or shorter than a frame) are
    reported and left out of the micro-batch. A micro-batch left empty comes back with `empty=True` and one dummy
    sequence, which the recipe runs with zero weight (so every process still joins the gradient all-reduce).
    """

    def __init__(self, data: TaskData, units: UnitStore, formatter: Formatter, pad_id: int, bad=warn_only,
                 max_audio_s: float = 30.0):
        self.data = data
        self.units = units
        self.formatter = formatter
        self.pad_id = pad_id
        self.bad = bad
        self.max_audio_s = max_audio_s

    def __len__(self):  # DataLoader asks; specs come from the sampler
        return sys.maxsize

    def _wave(self, audio: str, start=0.0, duration=None) -> np.ndarray:
        if duration is not None and duration > self.max_audio_s:
            raise AudioError(audio, f"segment of {duration:.1f}s is longer than max_audio_s={self.max_audio_s}")
        wav = load_waveform(audio, start, duration)
        if len(wav) > self.max_audio_s * SAMPLE_RATE:
            raise AudioError(audio, f"{len(wav) / SAMPLE_RATE:.1f}s is longer than max_audio_s={self.max_audio_s}")
        if self.formatter.frames(len(wav)) < 1:
            raise AudioError(audio, "shorter than one HuBERT frame")
        return wav

    def example(self, task: str, index: int) -> Example:
        if task == "asr":
            u = self.data.asr[index]
            if not u.audio:  # a release ASR entry: its units are the speech input
                return Example(task, u.id, text=u.text, units=self.units[u.id])
            return Example(task, u.id, text=u.text, waveform=self._wave(u.audio, u.start, u.duration))
        if task == "tts":
            u = self.data.tts[index]
            return Example(task, u.id, text=u.text, units=self.units[u.id])
        if task == "text_lm":
            doc_id, text = self.data.text_lm[index]
            return Example(task, doc_id, text=text)
        ins, kind = getattr(self.data, task)[index]
        ex = Example(task, f"{ins.id}:{kind}", text=ins.question_text)
        if task == "speech_instruction":
            ex.waveform = self._wave(ins.question_audio)
        if kind == "speech":
            ex.units = self.units[f"{ins.id}#answer"]
        else:
            ex.answer = ins.answer_text
        return ex

    def __getitem__(self, spec: MicroBatchSpec) -> dict:
        sequences = []
        for index in spec.examples:
            try:
                sequences.append(self.formatter(self.example(spec.task, index)))
            except (AudioError, ValueError) as exc:
                self.bad(spec.task, str(index), str(exc))
        empty = not sequences
        if empty:
            bos = self.formatter.bos
            sequences = [Sequence("empty", "", [bos, bos], [IGNORE, bos])]
        batch = collate(sequences, self.pad_id)
        batch.update(task=spec.task, step=spec.step, index=spec.index, empty=empty,
                     n_examples=0 if empty else len(sequences))
        return batch


# -----------------------------------------------------------------------------------------------------------------
# Command line: manifests and units outside a training run


def main(argv=None) -> int:  # long: the two subcommands' argument parsers and their dispatch
    """`manifest`: a speech manifest (JSONL) from a corpus layout; `extract-units`: HuBERT units for a manifest
    (appended, resumable, one shard of it per process)."""
    parser = argparse.ArgumentParser(prog="python -m most_reference.data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("manifest", help="write a speech manifest (JSONL) from a corpus layout")
    m.add_argument("format", choices=sorted(SPEECH_READERS))
    m.add_argument("path")
    m.add_argument("--out", required=True)
    m.add_argument("--split", action="append", help="split(s) (librispeech: several allowed)")
    m.add_argument("--audio-root", help="libriheavy / jsonl: folder relative audio paths resolve against")
    m.add_argument("--bad-log", help="JSONL file for skipped items")
    u = sub.add_parser("extract-units", help="HuBERT units for a manifest (resumable)")
    u.add_argument("manifest")
    u.add_argument("--hubert", required=True, help="HuBERT dir or SpiritLM converted dict")
    u.add_argument("--quantizer", help="quantizer file (SpiritLM linear / k-means .npy or .safetensors)")
    u.add_argument("--fit-kmeans", type=int, metavar="K", help="fit K centroids instead (written next to --out)")
    u.add_argument("--layer", type=int, default=11, help="fairseq layer the quantizer reads (MoST: 11)")
    u.add_argument("--out", required=True, help="units JSONL (appended; rerun to resume)")
    u.add_argument("--shard", default="0/1", help="I/N: this process handles every N-th utterance")
    u.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    u.add_argument("--keep-repeats", action="store_true",
                   help="keep runs of equal units (default: deduplicated, as MoST's release and the config's "
                        "deduplicate_units=true)")
    u.add_argument("--bad-log")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    bad = BadDataLog(args.bad_log)

    if args.cmd == "manifest":
        spec = {"format": args.format, "path": str(Path(args.path).resolve())}  # absolute paths in the manifest
        if args.split:
            spec["splits" if args.format == "librispeech" else "split"] = args.split if args.format == "librispeech" \
                else args.split[0]
        if args.audio_root:
            spec["audio_root"] = str(Path(args.audio_root).resolve())
        utts = speech_manifest([spec], bad)
        write_manifest(utts, args.out)
        print(f"{len(utts)} utterances -> {args.out} ({bad.count} skipped)")
        return 0

    from .import_weights import import_hubert, import_quantizer
    from .speech_encoder import SpeechEncoder, UnitExtractor

    utts = []
    for utt in read_speech_jsonl(args.manifest):  # the manifest `manifest` wrote: id, audio, text, start, duration
        if isinstance(utt, BadItem):
            bad("manifest", utt.id, utt.reason)
        else:
            utts.append(utt)
    index, count = (int(v) for v in args.shard.split("/"))
    utts = utts[index::count]
    hubert, normalize = import_hubert(args.hubert)
    encoder = SpeechEncoder(hubert, 1, args.layer, normalize_waveform=normalize).to(args.device)
    if args.fit_kmeans:
        quantizer = fit_kmeans(collect_features(utts, encoder, args.layer, bad=bad), args.fit_kmeans)
        quantizer.save(Path(args.out).with_suffix(".kmeans.safetensors"))
    elif args.quantizer:
        quantizer = import_quantizer(args.quantizer)
    else:
        parser.error("give --quantizer or --fit-kmeans")
    store = UnitStore(args.out)
    extractor = UnitExtractor(encoder, quantizer, args.layer, deduplicate=not args.keep_repeats).to(args.device)
    added = extract_units([(u.id, u.audio, u.start, u.duration) for u in utts], extractor, store, bad)
    print(f"{added} utterances added, {len(store)} in {args.out} ({bad.count} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
