"""Spoken-LM tasks: the model scores every wav (``score_audio``); pairs are compared as the official scorers do.

* ``slm:swuggy-dev`` / ``slm:sblimp-dev`` (and ``-test``): ZeroSpeech 2021 sLM21, ``sLM21-dataset/{lexical,
  syntactic}/<split>/`` with ``gold.csv``; aggregation by :mod:`most_eval_tasks.slm.zerospeech` (the official
  pairing, per-id averaging, frequency bands and 4-decimal round trip). ``accuracy`` = lexical *all* / syntactic
  score, ``accuracy_in_vocab`` = lexical *in-vocab*; percent. The task also gives the official submission file
  (``OUTPUT/zerospeech/lexical/dev.txt``, written by the runner) for the official tool, and ``--model precomputed``
  reads such files.
* ``slm:sstorycloze`` / ``slm:tstorycloze``: ``spoken-storycloze/{sSC,tSC}/<idx>_{correct,incorrect}.wav``;
  option ``reduction`` (``mean`` per-token, slamkit's default, or ``sum``), named in the results.

``--task-args source=PATH`` reads one split in Hugging Face form instead (:mod:`most_eval.data.hf_source`: a
``save_to_disk`` folder or parquet shards, audio embedded as ``{"bytes", "path"}`` or a path inside the source folder)
and gives the same sample ids, error records and numbers as the folder layout of the same audio:

* sWUGGY / sBLIMP: one row per wav with the gold.csv columns by name (lexical: ``filename, id, voice, frequency,
  word, phones, length, correct``; syntactic: ``filename, id, voice, type, subtype, transcription, correct``) plus
  ``audio``. Rows are in gold order (syntactic pairing is positional); the sample id is ``filename`` (the wav stem;
  a ``.wav`` suffix is dropped). The gold is validated as gold.csv is: a bad gold cell stops the task naming its row.
* StoryCloze: one row per story with ``id`` (or ``idx``) and two audio columns, ``correct`` (the true full-story
  wav) and ``incorrect`` (the false one), named as the folder names the wavs: our convention (no dataset card of a
  Hugging Face spoken StoryCloze was found to copy). The samples are ``<id>_correct`` / ``<id>_incorrect``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from most_eval.core.adapter import SCORE_AUDIO, AudioScore, Request
from most_eval.core.audio import audio_duration
from most_eval.data.files import file_problem, manifest_path, plain_name, safe_path, text_field
from most_eval.data.hf_source import Source, read_source, row_audio
from most_eval.core.task import LeaderboardSlot, Sample, Task, task_file_name
from most_eval.core.errors import DatasetError

from most_eval_tasks.slm import storycloze_scoring as cloze
from most_eval_tasks.slm import zerospeech as zr


def score_records(samples: list[Sample], outputs: list) -> list[dict]:
    """Per-wav records ``{"id", "score"[, "n_tokens"]}``; a non-finite score is an error record."""
    records = []
    for s, out in zip(samples, outputs):
        if isinstance(out, AudioScore):
            record = {"id": s.id, "score": float(out.total), "n_tokens": int(out.n_tokens)}
        else:
            record = {"id": s.id, "score": float(out)}
        if not math.isfinite(record["score"]):
            record = {"id": s.id, "error": f"{s.request.audio}: model score is {record['score']}"}
        records.append(record)
    return records


def extract_dir(task: Task) -> Path:
    """Where a Hugging Face source's embedded audio is written: ``OUTPUT/data/<task>/``."""
    return task.context.output_dir / "data" / task_file_name(task.name)


@dataclass(frozen=True)
class ZeroSpeechOptions:
    """sWUGGY / sBLIMP options."""

    # "sum" (the ZeroSpeech convention: a wav's summed log-likelihood) or "mean" (per token, as slamkit scores);
    # applied when pairs are compared, so switching it re-scores the cached records
    reduction: str = field(default=cloze.SUM, metadata={"scoring": True})
    source: str | None = None  # the split in Hugging Face form (save_to_disk folder or parquet), not sLM21-dataset/

    def __post_init__(self):
        if self.reduction not in cloze.REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(cloze.REDUCTIONS)}, got {self.reduction!r}")


class ZeroSpeechTask(Task):
    """sWUGGY / sBLIMP on one split."""

    capability = SCORE_AUDIO
    Options = ZeroSpeechOptions
    dataset_folder = "sLM21-dataset"
    kind = zr.LEXICAL
    split = "dev"

    submission_file = "lexical/dev.txt"  # where the official submission layout keeps this task's scores

    @property
    def folder(self) -> Path:
        return self.require_root() / self.kind / self.split

    def gold(self) -> zr.Gold:
        """The split's gold.csv, or the gold columns of ``source=PATH`` (read once)."""
        if not hasattr(self, "_gold"):
            try:
                if self.options.source:
                    self._gold = zr.gold_from_rows([r.cells for r in self.source().rows], self.kind,
                                                   self.options.source)
                else:
                    self._gold = zr.read_gold(manifest_path(self.folder, "gold.csv", "gold file"), self.kind)
            except zr.ScoreFileError as exc:
                raise DatasetError(str(exc)) from None
        return self._gold

    def source(self) -> Source:
        """The rows of ``source=PATH``: the gold columns and ``audio`` (read once)."""
        if not hasattr(self, "_source"):
            self._source = read_source(self.options.source, (*zr.GOLD_COLUMNS[self.kind], "audio"))
        return self._source

    def source_samples(self) -> list[Sample]:
        """One sample per source row, in gold order; a row whose audio cannot be used is an error record."""
        data, stems, out = self.source(), self.gold().stems, []
        for row, stem in zip(data.rows, stems):  # the gold keeps every row, in order
            try:
                plain_name(stem, "filename")
            except ValueError as exc:
                out.append(Sample(stem, None, None, f"{row.where}: {exc}", 0.0, data.files))
                continue
            try:
                wav, files = row_audio(row, "audio", data, stem, extract_dir(self))
            except ValueError as exc:  # the reason names the row
                out.append(Sample(stem, None, None, str(exc), 0.0, data.files))
                continue
            out.append(Sample(stem, Request(SCORE_AUDIO, audio=wav), None, None, audio_duration(wav), files))
        return out

    def samples(self) -> list[Sample]:
        if self.options.source:
            return self.source_samples()
        gold_csv = self.folder / "gold.csv"
        stems = self.gold().stems
        listed = set(stems)
        out = []
        for stem in stems:
            try:  # a file name with "/" or "..", an absolute one, a symlink out of the split: never read
                wav = safe_path(self.folder, f"{plain_name(stem, 'filename')}.wav")
            except ValueError as exc:
                out.append(Sample(stem, None, None, f"{gold_csv}: {exc}", 0.0, (gold_csv,)))
                continue
            problem = file_problem(wav)
            if problem:
                out.append(Sample(stem, None, None, f"{wav}: listed in gold.csv but {problem}", 0.0, (gold_csv,)))
            else:
                out.append(Sample(stem, Request(SCORE_AUDIO, audio=wav), None, None, audio_duration(wav),
                                  (gold_csv, wav)))
        for wav in sorted(self.folder.glob("*.wav")):
            if wav.stem not in listed:
                readable = not file_problem(wav, self.folder)  # never hash a FIFO or a file outside the split
                out.append(Sample(wav.stem, None, None, f"{wav}: not listed in gold.csv", 0.0,
                                  (wav,) if readable else ()))
        return out

    def item_key(self, sample: Sample):
        """sWUGGY: the gold ``id`` (a word with its non-words in every voice); sBLIMP: one sentence pair
        (type, subtype, id, voice); a wav the gold does not list is an item of its own."""
        if not hasattr(self, "_items"):
            table = self.gold().table
            columns = ["type", "subtype", "id", "voice"] if self.kind == zr.SYNTACTIC else ["id"]
            self._items = {row[0]: tuple(str(v) for v in row[1:])
                           for row in table[["filename", *columns]].itertuples(index=False)}
        return self._items.get(sample.id, ("sample", sample.id))

    def score(self, samples: list[Sample], outputs: list) -> list[dict]:
        return score_records(samples, outputs)

    def scores(self, records: list[dict]) -> dict[str, float]:
        """Each wav's score from its record, reduced as the ``reduction`` option says (converted with the records'
        token counts when the model reduced them otherwise), in the records' order."""
        n_tokens = {r["id"]: r["n_tokens"] for r in records if "n_tokens" in r}
        given = cloze.SUM if n_tokens else self.context.score_reduction  # what the model's numbers are
        return cloze.convert_scores({r["id"]: r["score"] for r in records}, from_reduction=given,
                                    to_reduction=self.options.reduction, n_tokens=n_tokens or None)

    def items(self, records: list[dict], samples: list[Sample]) -> list[dict]:
        """One item per scored pair, as the official scorer pairs the gold rows; ``gold_id`` is the pair's gold id
        as the gold types it (an integer or a text), which the official per-id averaging sorts by."""
        scorer = zr.score_lexical if self.kind == zr.LEXICAL else zr.score_syntactic
        result = scorer(self.gold(), self.scores(records), allow_missing=True)
        items = []
        for pair in result.pairs:
            record = pair.to_record()
            if self.kind == zr.LEXICAL:  # id = one pair (voice), item = what the official scorer averages over
                key, item = f"{pair.id}/{pair.voice}", str(pair.id)
            else:
                key, item = str(pair.position), f"{pair.type}/{pair.subtype}/{pair.id}"
            items.append({**record, "id": key, "gold_id": pair.id, "item": item, "correct": pair.outcome})
        return items

    def aggregate(self, items: list[dict]) -> dict:
        """The official numbers from the scored pairs alone (:func:`~most_eval_tasks.slm.zerospeech.lexical_from_pairs`
        / ``syntactic_from_pairs``: the same per-item averaging and 4-decimal rounding as scoring the gold)."""
        pairs = [{**item, "id": item["gold_id"]} for item in items]
        if self.kind == zr.LEXICAL:
            r = zr.lexical_from_pairs(pairs)
            return {"accuracy": round(100 * r.all, 6), "accuracy_in_vocab": round(100 * r.in_vocab, 6),
                    "accuracy_exact": round(100 * r.all_exact, 6), "pairs": r.n_pairs, "items": r.n_items,
                    "by_frequency_percent": {b.label: _percent(b.score_rounded) for b in r.by_frequency},
                    "leaderboard_column": "accuracy (lexical all)", "reduction": self.options.reduction}
        r = zr.syntactic_from_pairs(pairs)
        return {"accuracy": round(100 * r.score, 6), "accuracy_exact": round(100 * r.score_exact, 6),
                "pairs": r.n_pairs, "items": r.n_items, "reduction": self.options.reduction,
                "by_type_percent": {b.label: _percent(b.score_rounded) for b in r.by_type}}

    def side_files(self, records: list[dict]) -> dict[str, str | None]:
        """The official submission file (``zerospeech/<kind>/<split>.txt``) when every gold wav has a score, for the
        official tool and ``--model precomputed``; otherwise None, so an older run's file never stands beside this
        run's results."""
        scores = self.scores(records)
        complete = all(stem in scores for stem in self.gold().stems)
        return {f"zerospeech/{self.submission_file}": zr.submission_text(scores) if complete else None}

    def protocol_differences(self) -> list[str]:
        if self.options.reduction != cloze.SUM:
            return [f"reduction {self.options.reduction}, not the ZeroSpeech convention (summed log-likelihood)"]
        return []

    def metric_differences(self) -> dict[str, list[str]]:
        """sWUGGY: the official scorer's in-vocabulary accuracy is not the number that fills the paper's cell."""
        if self.kind != zr.LEXICAL:
            return {}
        return {"accuracy_in_vocab": ["the paper's cell holds the all-pairs accuracy ('accuracy'), not the "
                                      "in-vocabulary one"]}

    def protocol_notes(self) -> list[str]:
        reduction = f"a wav's score is its {'summed' if self.options.reduction == cloze.SUM else 'per-token mean'} " \
                    f"log-likelihood (reduction={self.options.reduction})"
        if self.kind == zr.LEXICAL:
            return ["the official scorer reports both the all-pairs and the in-vocabulary accuracy; the all-pairs one "
                    "('accuracy', lexical all) fills the paper's cell", reduction]
        return [reduction]


def _percent(fraction):
    """A band score (a fraction, rounded to 4 decimals as the official leaderboard rounds it) in percent."""
    return None if fraction is None or fraction != fraction else round(100 * fraction, 2)


class SWuggyDev(ZeroSpeechTask):
    name = "slm:swuggy-dev"
    description = "sWUGGY (ZeroSpeech 2021 lexical, dev): word vs non-word, official aggregation"
    leaderboard = LeaderboardSlot("audio_lm_accuracy", "swuggy")  # the lexical "all" accuracy (``accuracy``)


class SWuggyTest(SWuggyDev):
    name = "slm:swuggy-test"
    description = "sWUGGY (ZeroSpeech 2021 lexical, test; gold.csv needed)"
    leaderboard = None  # the paper's swuggy column is the dev set
    split = "test"
    submission_file = "lexical/test.txt"


class SBlimpDev(ZeroSpeechTask):
    name = "slm:sblimp-dev"
    description = "sBLIMP (ZeroSpeech 2021 syntactic, dev): grammatical vs not, official aggregation"
    leaderboard = LeaderboardSlot("audio_lm_accuracy", "sblimp")
    kind = zr.SYNTACTIC
    submission_file = "syntactic/dev.txt"


class SBlimpTest(SBlimpDev):
    name = "slm:sblimp-test"
    description = "sBLIMP (ZeroSpeech 2021 syntactic, test; gold.csv needed)"
    leaderboard = None  # the paper's sblimp column is the dev set
    split = "test"
    submission_file = "syntactic/test.txt"


@dataclass(frozen=True)
class ClozeOptions:
    """StoryCloze options."""

    # "mean" (per-token, slamkit's default) or "sum" log-likelihood; applied when pairs are compared, so switching
    # it re-scores the cached records instead of re-running the model
    reduction: str = field(default=cloze.DEFAULT_REDUCTION, metadata={"scoring": True})
    source: str | None = None  # the subset in Hugging Face form (save_to_disk folder or parquet), not sSC/ or tSC/

    def __post_init__(self):
        if self.reduction not in cloze.REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(cloze.REDUCTIONS)}, got {self.reduction!r}")


_CLOZE_WAV = re.compile(r"^(?P<idx>.+)_(?P<which>correct|incorrect)$")


class StoryClozeTask(Task):
    """Spoken StoryCloze (one subset): true vs false ending of each story."""

    capability = SCORE_AUDIO
    dataset_folder = "spoken-storycloze"
    Options = ClozeOptions
    subset = "sSC"

    #: columns of the Hugging Face form (``source=PATH``): the story id (the first of these present), then the true
    #: and the false full-story audio
    hf_id_columns = ("id", "idx")
    hf_audio_columns = {"correct": "correct", "incorrect": "incorrect"}  # sample suffix -> audio column

    def source_samples(self) -> list[Sample]:
        """Two samples per source row, ``<id>_correct`` and ``<id>_incorrect``, as the folder names the wavs; a row
        without a usable id is one error record, a story ending whose audio cannot be used is an error record (its
        partner is still scored, as in the folder layout, and the pair is left out)."""
        data = read_source(self.options.source, tuple(self.hf_audio_columns.values()), optional=self.hf_id_columns)
        id_column = next((c for c in self.hf_id_columns if data.rows and c in data.rows[0].cells), None)
        if data.rows and id_column is None:
            raise DatasetError(f"{self.options.source}: missing column {' or '.join(self.hf_id_columns)} "
                               f"(the story id)")
        out = []
        for row in data.rows:
            try:
                idx = plain_name(text_field(row.cells[id_column], id_column), id_column)
            except ValueError as exc:
                out.append(Sample(Path(row.where).name, None, None, f"{row.where}: {exc}", 0.0, data.files))
                continue
            for suffix, column in self.hf_audio_columns.items():
                sid = f"{idx}_{suffix}"
                try:
                    wav, files = row_audio(row, column, data, sid, extract_dir(self))
                except ValueError as exc:  # the reason names the row and the column
                    out.append(Sample(sid, None, None, str(exc), 0.0, data.files))
                    continue
                out.append(Sample(sid, Request(SCORE_AUDIO, audio=wav), idx, None, audio_duration(wav), files))
        if not out:
            raise DatasetError(f"{self.options.source}: no StoryCloze rows found")
        return sorted(out, key=lambda s: s.id)  # the folder layout's order (sorted wav names)

    def samples(self) -> list[Sample]:
        if self.options.source:
            return self.source_samples()
        folder = self.require_root() / self.subset
        wavs = sorted(folder.glob("*.wav"))
        if not wavs:
            raise DatasetError(f"{folder}: no StoryCloze wavs found")
        stems = {w.stem for w in wavs}
        out = []
        for wav in wavs:
            m = _CLOZE_WAV.match(wav.stem)
            partner = m and f"{m['idx']}_{'incorrect' if m['which'] == 'correct' else 'correct'}"
            problem = file_problem(wav, folder)  # a symlink out of the folder, a FIFO, a directory: never read
            if problem:
                out.append(Sample(wav.stem, None, None, f"{wav}: {problem}", 0.0))
            elif not m:
                out.append(Sample(wav.stem, None, None, f"{wav}: name is not <idx>_correct/<idx>_incorrect", 0.0,
                                  (wav,)))
            elif partner not in stems:
                out.append(Sample(wav.stem, None, None, f"{wav}: its pair {partner}.wav is missing", 0.0, (wav,)))
            else:
                out.append(Sample(wav.stem, Request(SCORE_AUDIO, audio=wav), m["idx"], None, audio_duration(wav),
                                  (wav,)))
        return out

    def item_key(self, sample: Sample):
        """A story with its two endings (``Sample.reference`` is the story index)."""
        return ("sample", sample.id) if sample.reference is None else ("story", str(sample.reference))

    def score(self, samples: list[Sample], outputs: list) -> list[dict]:
        return score_records(samples, outputs)

    def items(self, records: list[dict], samples: list[Sample]) -> list[dict]:
        """One item per story whose two wavs were scored: the outcome and the two scores, reduced as the
        ``reduction`` option says."""
        ids = sorted({s.reference for s in samples if s.request is not None})
        pairs = [cloze.ClozePair(i, f"{i}_correct", f"{i}_incorrect") for i in ids]
        scores = {r["id"]: r["score"] for r in records}
        n_tokens = {r["id"]: r["n_tokens"] for r in records if "n_tokens" in r}
        given = cloze.SUM if n_tokens else self.context.score_reduction
        result = cloze.score_storycloze(pairs, scores, reduction=self.options.reduction, scores_reduction=given,
                                        n_tokens=n_tokens or None, allow_missing=True)
        return [{"id": p.id, "correct": p.outcome, "true_score": p.true_score, "false_score": p.false_score}
                for p in result.pairs]

    def aggregate(self, items: list[dict]) -> dict:
        """Accuracy over the scored stories, as :func:`~most_eval_tasks.slm.storycloze_scoring.score_storycloze`
        computes it."""
        return {"accuracy": round(100 * cloze.accuracy([i["correct"] for i in items]), 6), "pairs": len(items),
                "reduction": self.options.reduction}

    def protocol_differences(self) -> list[str]:
        if self.options.reduction != cloze.MEAN:
            return [f"reduction {self.options.reduction}, not slamkit's per-token mean"]
        return []

    def protocol_notes(self) -> list[str]:
        return ["the paper does not state its reduction; the per-token mean is slamkit's default (the reference "
                f"scorer's), and this run used reduction={self.options.reduction}"]


class SStoryCloze(StoryClozeTask):
    name = "slm:sstorycloze"
    leaderboard = LeaderboardSlot("audio_lm_accuracy", "sstorycloze")
    description = "spoken StoryCloze (original wrong endings), true vs false story likelihood"


class TStoryCloze(StoryClozeTask):
    name = "slm:tstorycloze"
    leaderboard = LeaderboardSlot("audio_lm_accuracy", "stopic_storycloze")
    description = "topic StoryCloze (random other-story endings), true vs false story likelihood"
    subset = "tSC"
