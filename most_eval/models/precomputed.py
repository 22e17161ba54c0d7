"""``precomputed``: serve outputs a user already has, so they can be scored (or re-scored) without the model.

``--model precomputed --model-args dir=PATH``. One file per task in PATH, named after the task with ``:`` replaced
by ``_`` (``asr_librispeech-test-clean.jsonl``), one JSON object per line keyed by the task's sample ``id``:

* transcripts / text answers: ``{"id", "text"}``
* audio (TTS, speech answers): ``{"id", "audio"}`` — a path, relative to PATH unless absolute
* spoken-LM scores: ``{"id", "score"}`` (natural-log likelihood, summed unless ``score_reduction=mean``); or the ZeroSpeech submission format at ``PATH/lexical/dev.txt`` etc.
  (``<stem> <score>`` per line) for tasks that name a ``submission_file``.

A task with no file in PATH is "not supported"; an id missing from the file is an error record for that sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from most_eval.core.adapter import RESPOND, SCORE_AUDIO, SYNTHESIZE, Model, Prepared, SampleFailure
from most_eval.core.audio import AudioError, load_audio
from most_eval.data.tables import BadLine, read_jsonl, read_lines
from most_eval.core.task import submission_file, task_file_name


@dataclass(frozen=True)
class PrecomputedArgs:
    """``--model-args`` of the precomputed model."""

    dir: Path = Path("precomputed")  # folder with one file per task
    score_reduction: str = "sum"  # what the scores are: summed ("sum") or per-token mean ("mean") log-likelihoods


class PrecomputedModel(Model):
    name = "precomputed"
    description = "serves existing outputs from dir=PATH (JSONL per task, or ZeroSpeech submission files)"
    Args = PrecomputedArgs
    needs_audio = False

    def __init__(self, args=None, **kw):
        super().__init__(args, **kw)
        if self.args.score_reduction not in ("sum", "mean"):
            raise ValueError(f"score_reduction must be sum or mean, got {self.args.score_reduction!r}")
        self.score_reduction = self.args.score_reduction
        self._tables: dict[str, tuple[Path, dict, list[str]]] = {}

    def capabilities(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset({"transcribe", SYNTHESIZE, SCORE_AUDIO, RESPOND})

    def _paths(self, task: str) -> list[Path]:
        paths = [self.args.dir / f"{task_file_name(task)}.jsonl"]
        sub = submission_file(task)
        if sub:
            paths.append(self.args.dir / sub)
        return paths

    def supports(self, task: str, capability: str) -> bool:
        return any(p.is_file() for p in self._paths(task))

    def deterministic(self, capability: str) -> bool:
        """Outputs read from files: the same whatever the seed."""
        return True

    def identity(self) -> dict:
        import hashlib

        if getattr(self, "_identity", None) is None:  # output tables by content, audio files by size and time
            digest = hashlib.sha256()
            for path in sorted(self.args.dir.rglob("*")) if self.args.dir.is_dir() else []:
                if not path.is_file():
                    continue
                digest.update(path.relative_to(self.args.dir).as_posix().encode())
                if path.suffix in (".jsonl", ".txt"):
                    digest.update(path.read_bytes())
                else:
                    stat = path.stat()
                    digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
            self._identity = {**super().identity(), "files_sha256": digest.hexdigest()}
        return self._identity

    def table(self, task: str) -> tuple[Path, dict, list[str]]:
        """(file, {id: entry}, problems) for a task, read once."""
        if task not in self._tables:
            path = next(p for p in self._paths(task) if p.is_file())
            entries, lines, problems = {}, {}, []

            def add(key: str, number: int, value: dict) -> None:
                if key in lines:  # ambiguous: neither line is used, the sample gets an error record
                    value = {"id": key, "duplicate": f"{path}:{number}: id {key} listed twice "
                                                     f"(also on line {lines[key]})"}
                entries[key], lines[key] = value, lines.get(key, number)

            if path.suffix == ".jsonl":
                for entry in read_jsonl(path):
                    if isinstance(entry, BadLine):
                        problems.append(str(entry))
                    elif "id" not in entry[1]:
                        problems.append(f"{path}:{entry[0]}: no 'id' field")
                    else:
                        add(str(entry[1]["id"]), entry[0], entry[1])
            else:  # ZeroSpeech submission: "<stem> <score>"
                for entry in read_lines(path):
                    if isinstance(entry, BadLine):
                        problems.append(str(entry))
                        continue
                    number, line = entry
                    parts = line.split()
                    try:
                        add(parts[0], number, {"id": parts[0], "score": float(parts[1])})
                    except (IndexError, ValueError):
                        problems.append(f"{path}:{number}: expected '<stem> <score>', got {line[:60]!r}")
            self._tables[task] = (path, entries, problems)
        return self._tables[task]

    def run_batch(self, batch: Sequence[Prepared]) -> list:
        path, entries, problems = self.table(batch[0].task)
        note = f" ({len(problems)} unreadable line(s), first: {problems[0]})" if problems else ""
        out = []
        for p in batch:
            entry = entries.get(p.id)
            if entry is None:
                out.append(SampleFailure(f"{path}: no entry for id {p.id}{note}"))
                continue
            out.append(self._value(path, entry, p))
        return out

    def output_warnings(self, task: str, sample_ids: set[str]) -> list[str]:
        if not self.supports(task, ""):
            return []
        path, entries, _ = self.table(task)
        unknown = sorted(set(entries) - set(sample_ids))
        if not unknown:
            return []
        return [f"{path}: {len(unknown)} entr{'y' if len(unknown) == 1 else 'ies'} for ids not listed by the task "
                f"(unknown: {', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''})"]

    def _value(self, path: Path, entry: dict, p: Prepared):
        if "duplicate" in entry:
            return SampleFailure(entry["duplicate"])
        kind, modality = p.request.kind, p.request.modality
        wants_audio = kind == SYNTHESIZE or (kind == RESPOND and modality == "speech")
        key = "audio" if wants_audio else "score" if kind == SCORE_AUDIO else "text"
        if key not in entry:
            return SampleFailure(f"{path}: entry for id {p.id} has no '{key}' field")
        value = entry[key]
        where = f"{path}: entry for id {p.id}"
        if key == "audio":  # a path: exactly a JSON string
            if type(value) is not str or not value.strip():
                return SampleFailure(f"{where}: 'audio' must be a path (a JSON string), got {_json_type(value)}")
            audio_path = Path(value) if Path(value).is_absolute() else self.args.dir / value
            try:
                return load_audio(audio_path, None)
            except AudioError as exc:
                return SampleFailure(str(exc))
        if key == "score":  # exactly a JSON number: no bool, no numeric text
            if type(value) not in (int, float):
                return SampleFailure(f"{where}: 'score' is not a number: {_json_type(value)}")
            return float(value) if math.isfinite(value) else SampleFailure(f"{where}: 'score' is {value}, not finite")
        if type(value) is not str:  # exactly a JSON string: never the text of a null, list, object or bool
            return SampleFailure(f"{where}: 'text' must be a JSON string, got {_json_type(value)}")
        return value


def _json_type(value) -> str:
    """How JSON names a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a bool ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    return {list: "an array", dict: "an object"}.get(type(value), f"a number ({value!r})")
