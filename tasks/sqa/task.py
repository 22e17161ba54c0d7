"""Spoken-QA tasks: a spoken question in, an answer out (text: S->T; speech: S->S, transcribed by the judge ASR).

A response is correct when any reference answer occurs in it under the DPR "has answer" rule
(:mod:`most_eval_tasks.sqa.has_answer`). Readers, by folder under ``--data-root``:

* ``llama-questions/``: ``llama_questions_300.tsv`` (``Questions``, ``Answer``, ``Wav Filename``) + flat wavs.
* ``webquestions/``: ``test.jsonl`` (``question``, ``answers`` alias list, ``audio`` path) or ``test.parquet``
  with the same columns (an ``audio`` column holding a path string or ``{"path": ...}``).
* ``triviaqa/``: ``test.jsonl`` / ``test.parquet`` with ``answer`` as the alias list.

The sample id is the question wav's stem. A record without answers is an error record; the run goes on. Fields are
typed (:mod:`most_eval.data.files`): a number answer is its text ("1984"); a bool or null answer, a non-text audio
path or question is an error record naming the line. The runner keeps each spoken answer of the S->S tasks under
``OUTPUT/audio/<task>/<cache key>/<name>.wav`` (:func:`~most_eval.data.model_outputs.speech_file`; the record's
``audio`` field), and the judge's transcript of it is what the has-answer rule reads.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from most_eval.core.adapter import RESPOND, Request
from most_eval.core.audio import audio_duration
from most_eval.data.files import file_problem, manifest_path, read_bytes, text_field, text_list
from most_eval.data.model_outputs import speech_file
from most_eval.data.tables import BadLine, read_jsonl, read_table
from most_eval.scoring.speech_quality import add_mos, check_mos, mean_mos, mos_differences
from most_eval.scoring.comparability import judge_difference
from most_eval.data.hf_source import audio_file
from most_eval.scoring.paper import REFERENCE_JUDGES
from most_eval.core.task import LeaderboardSlot, Sample, Task, task_file_name
from most_eval.core.errors import DatasetError

from most_eval_tasks.sqa.has_answer import matching_answer
from most_eval_tasks.sqa.llm_judge import judge_verdicts

MISSING = object()  # a manifest row without the answer field (as opposed to an explicit null)


def _answers(value) -> list[str]:
    """Reference answers of a manifest field: a text (a TSV cell holding a JSON list is read as the list), a number
    ("1984"), or a list of those; blank aliases are left out. ValueError for a bool, a null or an object."""
    if value is MISSING:
        return []
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
    return text_list(value, "answer")


def _plain(value):
    """A parquet cell as plain Python: numpy arrays as lists, numpy scalars as numbers or bools."""
    return value.tolist() if hasattr(value, "tolist") else value


@dataclass(frozen=True)
class QAOptions:
    """Spoken-QA options."""

    scorer: str = "has-answer"  # "has-answer" (DPR rule, the papers' protocol) or "llm-judge"
    judge_lm: str | None = None  # local causal-LM folder for scorer=llm-judge
    #: S->S: speech quality of each spoken answer: dnsmos (DNSMOS P.835 + P.808 through speechmos) | utmos:PATH
    #: (UTMOS22 from a local file) | both joined with + | none
    mos: str = field(default="dnsmos", metadata={"scoring": True})

    def __post_init__(self):
        check_mos(self.mos)
        if self.scorer not in ("has-answer", "llm-judge"):
            raise ValueError(f"unknown QA scorer {self.scorer!r}; use has-answer or llm-judge")
        if self.scorer == "llm-judge" and not self.judge_lm:
            raise ValueError("scorer=llm-judge needs judge_lm=<local causal-LM folder>")


class SpokenQATask(Task):
    """Shared sample building and scoring; subclasses implement :meth:`rows` -> (line, question, answers, wav)."""

    capability = RESPOND
    Options = QAOptions
    modality = "text"
    answer_field = "answers"

    def rows(self):
        """(where, question, answers, audio path) per listed question, as the manifest holds them (typed in
        :meth:`samples`); BadLine for unreadable lines. ``answers`` is :data:`MISSING` when the field is absent."""
        folder = self.require_root()
        name = next((n for n in ("test.jsonl", "test.parquet") if os.path.lexists(folder / n)), None)
        if name is None:
            raise DatasetError(f"{folder}: neither test.jsonl nor test.parquet found")
        path = manifest_path(folder, name, "question list")
        self.manifest = path  # the answer table: part of every sample's files (the dataset hash)
        if name == "test.jsonl":
            for entry in read_jsonl(path):
                if isinstance(entry, BadLine):
                    yield entry
                else:
                    n, obj = entry
                    yield (f"{path}:{n}", obj.get("question", ""), obj.get(self.answer_field, MISSING),
                           obj.get("audio"))
            return
        import pandas as pd

        data = read_bytes(path)
        try:
            table = pd.read_parquet(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises its own error types for a damaged file
            raise DatasetError(f"{path}: cannot read parquet ({str(exc).splitlines()[0][:120]})") from None
        for n, obj in enumerate(table.to_dict("records"), start=1):
            obj = {k: _plain(v) for k, v in obj.items()}
            yield f"{path}:row {n}", obj.get("question", ""), obj.get(self.answer_field, MISSING), obj.get("audio")

    def samples(self) -> list[Sample]:
        """One sample per listed question; a line with a mistyped field (a bool or null answer, a number as audio
        path), an audio path out of the folder, missing audio or no answers is an error record naming the line."""
        folder = self.require_root()
        out = []
        for row in self.rows():
            if isinstance(row, BadLine):
                out.append(Sample(f"line-{row.line}", None, None, str(row), 0.0, (row.path,)))
                continue
            where, question, answers, audio = row
            named = audio.get("path") if isinstance(audio, dict) else audio  # HF datasets: {"bytes", "path"}
            sid = Path(named).stem if isinstance(named, str) and named.strip() else where.rsplit("/", 1)[-1]
            try:
                if not audio or (isinstance(audio, dict) and not audio.get("bytes") and not named):
                    raise ValueError("no audio path")
                # embedded bytes are written once under OUTPUT/data/<task>/; a path must stay inside the folder
                wav = audio_file(audio, folder, sid, self.context.output_dir / "data" / task_file_name(self.name))
                reference = {"question": text_field(question, "question"), "answers": _answers(answers)}
            except ValueError as exc:
                out.append(Sample(sid, None, None, f"{where}: {exc}", 0.0))
                continue
            problem = file_problem(wav)
            if problem:
                out.append(Sample(sid, None, None, f"{wav}: question audio {problem} ({where})", 0.0))
            elif not reference["answers"]:
                out.append(Sample(sid, None, None, f"{where}: no reference answers", 0.0, (wav,)))
            else:
                embedded = isinstance(audio, dict) and bool(audio.get("bytes"))
                files = (self.manifest,) if embedded else (wav, self.manifest)  # embedded: the table holds it
                out.append(Sample(sid, Request(RESPOND, audio=wav, modality=self.modality), reference, None,
                                  audio_duration(wav), files))
        return out

    def score(self, samples: list[Sample], outputs: list) -> list[dict]:
        if self.modality == "speech":
            judge = self.context.judge
            self.context.step("judge")
            texts = judge.transcribe([a.resampled(judge.sample_rate) for a in outputs])
        else:
            texts = list(outputs)
        records = []
        for s, text in zip(samples, texts):
            match = matching_answer(s.reference["answers"], text)
            records.append({"id": s.id, "question": s.reference["question"], "answers": s.reference["answers"],
                            "response": text, "matched": match, "correct": 1.0 if match is not None else 0.0})
        if self.modality == "speech":
            if self.context.mos is not None:
                self.context.step("speech quality")
                add_mos(records, self.context.mos.score(outputs))
            for s, r in zip(samples, records):
                r["audio"] = speech_file(self.name, self.context.cache_key, s.id)
        if self.options.scorer == "llm-judge":
            if self.context.llm_judge is None:
                raise RuntimeError("scorer=llm-judge: no LLM judge was lent to the task (TaskContext.llm_judge)")
            verdicts = judge_verdicts(self.context.llm_judge,
                                      [s.reference["question"] for s in samples],
                                      [s.reference["answers"] for s in samples], texts)
            for r, ok in zip(records, verdicts):
                r["has_answer"], r["correct"] = r["correct"], 1.0 if ok else 0.0
        return records

    def config(self) -> dict:
        judge = self.context.judge
        extra = {"judge": judge.identity(), "judge_fingerprint": judge.fingerprint()} \
            if self.modality == "speech" and judge is not None else {}
        return {**super().config(), **extra}

    def protocol_differences(self) -> list[str]:
        reasons = []
        if self.options.scorer != "has-answer":
            reasons.append(f"scorer {self.options.scorer}, not the has-answer rule (UltraEval-Audio, DPR)")
        if self.modality == "speech":
            ref = REFERENCE_JUDGES[self.reference_judge]
            why = judge_difference(self.context.judge, ref.adapter, ref.folder, ref.describe(), ref.args)
            reasons += [why] if why else []
        return reasons

    def protocol_notes(self) -> list[str]:
        """Whose conventions these are: the paper does not state its answer-matching rule nor, for S->S, its judge."""
        notes = ["the has-answer rule (DPR's, as UltraEval-Audio applies it) is UltraEval-Audio's convention; the "
                 "paper does not state its matching rule, so this is comparable with UltraEval-Audio's protocol"]
        if self.modality == "speech":
            notes.append("the Whisper-large-v3 judge of the spoken answers is UltraEval-Audio's convention; the MoST "
                         "release names no speech-to-speech judge")
        return notes

    def aggregate(self, items: list[dict]) -> dict:
        metrics = {"accuracy": round(100 * sum(r["correct"] for r in items) / len(items), 4),
                   "scorer": self.options.scorer if self.options.scorer == "has-answer"
                   else f"llm-judge:{Path(self.options.judge_lm).name}"}
        if self.modality == "speech":
            judge = self.context.judge
            path = getattr(judge.args, "path", "")
            metrics["judge"] = f"{judge.name}:{Path(str(path)).name}" if path else judge.name
            metrics.update(mean_mos(items))
            metrics["mos"] = self.context.mos.name if self.context.mos is not None else None
        return metrics

    def metric_differences(self) -> dict[str, list[str]]:
        """S->S: the DNSMOS of the spoken answers is no paper number."""
        return mos_differences() if self.modality == "speech" else {}


class LlamaQuestions(SpokenQATask):
    dataset_folder = "llama-questions"

    def rows(self):
        tsv = manifest_path(self.require_root(), "llama_questions_300.tsv", "Llama Questions table")
        self.manifest = tsv
        for entry in read_table(tsv, "\t", required=("Questions", "Answer", "Wav Filename")):
            if isinstance(entry, BadLine):
                yield entry
            else:
                n, row = entry
                yield f"{tsv}:{n}", row["Questions"], row["Answer"], row["Wav Filename"]


class WebQuestions(SpokenQATask):
    dataset_folder = "webquestions"
    answer_field = "answers"


class TriviaQA(SpokenQATask):
    dataset_folder = "triviaqa"
    answer_field = "answer"


def _variant(base: type, set_name: str, column: str, modality: str) -> type:
    """The speech->text or speech->speech task of a question set; ``column`` names the set in the paper's table."""
    suffix = "s2t" if modality == "text" else "s2s"
    return type(f"{base.__name__}{suffix.upper()}", (base,), {
        "name": f"sqa:{set_name}-{suffix}", "modality": modality,
        "leaderboard": LeaderboardSlot("spoken_qa_accuracy", f"{column}_{suffix}"),
        "needs": frozenset({"judge", "mos"}) if modality == "speech" else frozenset(),
        "reference_judge": "whisper-large-v3-convention" if modality == "speech" else None,
        "description": f"{set_name}: spoken question -> {modality} answer, has-answer accuracy"
                       + (" (answer transcribed by the judge ASR)" if modality == "speech" else ""),
        "__module__": __name__})


TASKS = [_variant(base, set_name, column, modality)
         for base, set_name, column in ((LlamaQuestions, "llama-questions", "llama_questions"),
                                        (WebQuestions, "webquestions", "webquestions"),
                                        (TriviaQA, "triviaqa", "triviaqa"))
         for modality in ("text", "speech")]
