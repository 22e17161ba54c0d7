"""What a model said for one request, as the sample cache keeps it: nothing derived, every type checked on the way
back.

A cache record holds the raw output of one request and nothing computed from it, so every run scores the outputs
again with the current task code (a normaliser upgrade or a scorer fix never leaves a stale number). By the kind of
output the request asks for (:func:`output_kind`):

* ``text`` (transcripts, text answers): ``{"text": str}``;
* ``speech`` (TTS, spoken answers): ``{"audio": path under the output folder, "sha256": digest of the file}``; the
  runner writes the file (:func:`encode_output`) and a file that is missing or changed makes the record unusable;
* ``score`` (spoken-LM scores): ``{"score": finite number[, "n_tokens": whole number >= 0]}``.

:func:`read_output` takes a record back to the output the task scores, with the exact JSON type required: a null,
a list, a bool or a numeric string where text belongs, a bool or a text where a score belongs, an unknown field, or a
missing one, is an :class:`OutputError` naming the field; the runner counts and warns about such a record and runs
the request again. Text benchmarks are not cached here: lm-eval caches their responses itself.
"""

from __future__ import annotations

import hashlib
import io
import math
import numbers
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from most_eval.core.adapter import RESPOND, SCORE_AUDIO, SYNTHESIZE, TRANSCRIBE, AudioScore, Request
from most_eval.core.audio import Audio
from most_eval.core.errors import MostEvalError
from most_eval.core.task import task_file_name
from most_eval.data.files import output_name, safe_path

TEXT, SPEECH, SCORE = "text", "speech", "score"
FIELDS = {TEXT: ({"text"}, set()), SPEECH: ({"audio", "sha256"}, set()), SCORE: ({"score"}, {"n_tokens"})}


class OutputError(MostEvalError, ValueError):
    """A model output, or a cached record of one, that is not what the request asks for; one line."""


def output_kind(request: Request) -> str | None:
    """``text``, ``speech`` or ``score`` for a request the sample cache keeps; None for text benchmarks."""
    if request.kind == TRANSCRIBE or (request.kind == RESPOND and request.modality != "speech"):
        return TEXT
    if request.kind == SYNTHESIZE or request.kind == RESPOND:
        return SPEECH
    if request.kind == SCORE_AUDIO:
        return SCORE
    return None


def speech_file(task: str, cache_key: str, sample_id: str) -> str:
    """Where a sample's generated speech is kept, relative to the output folder:
    ``audio/<task>/<cache key>/<id as a safe name>.wav`` (one folder per model and task config, so another model's run
    into the same output never overwrites what records cite)."""
    return "/".join(filter(None, ("audio", task_file_name(task), cache_key, output_name(sample_id, ".wav"))))


def _type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, numbers.Number):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _number(value) -> bool:
    """A real number that is not a bool (numpy scalars included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _score_fields(score, n_tokens=None) -> dict:
    if not _number(score) or not math.isfinite(score):
        raise OutputError(f"score must be a finite number, got {score!r}" if _number(score)
                          else f"score must be a number, got {_type(score)}")
    fields = {"score": float(score)}
    if n_tokens is not None:
        if not isinstance(n_tokens, (int, np.integer)) or isinstance(n_tokens, (bool, np.bool_)) or n_tokens < 0:
            raise OutputError(f"n_tokens must be a whole number >= 0, got {n_tokens!r}")
        fields["n_tokens"] = int(n_tokens)
    return fields


def encode_output(kind: str, output, output_dir: Path, relative: str | None = None) -> dict:
    """The record fields of one model output of ``kind``; speech is written to ``output_dir / relative`` first.
    OutputError when the output is not of the kind's type (a model returning a number for a transcript)."""
    if kind == TEXT:
        if not isinstance(output, str):
            raise OutputError(f"expected a text output, got {_type(output)}")
        return {"text": str(output)}
    if kind == SCORE:
        if isinstance(output, AudioScore):
            return _score_fields(output.total, output.n_tokens)
        return _score_fields(output)
    if kind == SPEECH:
        if not isinstance(output, Audio):
            raise OutputError(f"expected a speech output, got {_type(output)}")
        samples = np.asarray(output.samples)
        if samples.ndim != 1 or not samples.size or not np.isfinite(samples).all():
            raise OutputError("speech output must be non-empty, mono and finite")
        buffer = io.BytesIO()
        sf.write(buffer, np.clip(samples, -1.0, 1.0), int(output.sample_rate), format="WAV", subtype="PCM_16")
        data = buffer.getvalue()
        path = safe_path(output_dir, relative)  # made of safe names by speech_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return {"audio": relative, "sha256": hashlib.sha256(data).hexdigest()}
    raise OutputError(f"no cached output for requests of kind {kind!r}")


def read_output(kind: str, record: dict, output_dir: Path):
    """The output a cached record holds (str, Audio, float or AudioScore), every field of the exact type; speech is
    read back from its file and checked against its digest. OutputError naming the field otherwise."""
    required, optional = FIELDS[kind]
    fields = {k: v for k, v in record.items() if k not in ("id", "cache")}
    unknown = sorted(set(fields) - required - optional)
    if unknown:
        raise OutputError(f"unexpected field {unknown[0]!r} in a {kind} record")
    missing = sorted(required - set(fields))
    if missing:
        raise OutputError(f"no {missing[0]!r} field")
    if kind == TEXT:
        if type(fields["text"]) is not str:
            raise OutputError(f"'text' must be a text, got {_type(fields['text'])}")
        return fields["text"]
    if kind == SCORE:
        checked = _score_fields(fields["score"], fields.get("n_tokens"))
        if type(fields["score"]) not in (int, float):
            raise OutputError(f"'score' must be a number, got {_type(fields['score'])}")
        return AudioScore(checked["score"], checked["n_tokens"]) if "n_tokens" in checked else checked["score"]
    return _read_speech(fields, output_dir)


def _read_speech(fields: dict, output_dir: Path) -> Audio:
    relative, digest = fields["audio"], fields["sha256"]
    if type(relative) is not str or type(digest) is not str:
        raise OutputError("'audio' and 'sha256' must be texts")
    if not relative.startswith("audio/"):
        raise OutputError(f"'audio' {relative!r} is not under the output folder's audio/")
    try:
        path = safe_path(output_dir, relative)  # no absolute path, no '..', no symlink out of the output folder
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    except (ValueError, OSError) as exc:
        raise OutputError(f"'audio' {relative!r}: {exc}") from None
    if data is None:
        raise OutputError(f"{relative}: generated audio is missing")
    if hashlib.sha256(data).hexdigest() != digest:
        raise OutputError(f"{relative}: generated audio changed since it was written (sha256 differs)")
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return Audio(np.ascontiguousarray(samples.mean(axis=1), dtype=np.float32), int(rate))
