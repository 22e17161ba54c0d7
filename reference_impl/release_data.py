"""The MoST release's ASR / TTS instruction files as training examples, with its ASR/TTS mix ratio.

The release (``MoST_dataset/``, NUS-HPC-AI-Lab/MoST at 9c13577) writes its speech instruction data as JSON files,
each a list of ``{"id", "instruction", "input", "output", "metadata"}`` (a ``{"data": [...]}`` object, or a single
entry, is read too). The speech side is a unit string, ``[Hu7][Hu90]...``: deduplicated SpiritLM units.

* ASR entries (instruction "Transcribe the following speech into text."): ``input`` units, ``output`` text. They
  train the ``asr`` task with the units as its speech input (begin-of-audio, unit tokens, end-of-audio where the
  template has ``{audio}``), as the release trains on them.
* TTS entries (instruction "Convert the following text into speech."): ``input`` text, ``output`` units. They train
  the ``tts`` task.

``asr_tts_mix_ratio`` is the release's ``--asr_tts_mix_ratio`` (default 0.5): of the ``n`` entries read,
``min(int(n * ratio), #ASR)`` ASR entries are kept and the rest of ``n`` is filled with TTS entries (also capped),
each drawn in a seeded order. The release's waveform manifests (Lhotse cuts, ``libriheavy_cuts_*.jsonl.gz``) are the
recipe's ``libriheavy`` speech format, read as they are.

A file that is not JSON, or not a list of entries, is a DatasetError naming it. An entry with a missing or
mistyped field, an unknown instruction, or a unit string that does not parse is reported to the bad-data log with
the file and the entry (``<file>#<index>``) and counted; the log line of the source gives the count.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from most_eval.core.errors import DatasetError
from most_eval.data.files import open_regular

from .manifests import Utterance, warn_only

logger = logging.getLogger(__name__)

ASR_INSTRUCTION = "Transcribe the following speech into text."
TTS_INSTRUCTION = "Convert the following text into speech."
UNITS = re.compile(r"(?:\[Hu\d+\])+")
FIELDS = ("id", "instruction", "input", "output")


@dataclass
class ReleaseExamples:
    """Examples of release instruction files: ASR (units -> text) and TTS (text -> units) utterances with their
    units by id, and how many entries were skipped or left out by the mix ratio."""

    asr: list[Utterance] = field(default_factory=list)
    tts: list[Utterance] = field(default_factory=list)
    units: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: int = 0
    left_out: int = 0


def parse_units(text: str, num_units: int) -> np.ndarray:
    """``"[Hu7][Hu90]"`` -> ``array([7, 90])``; ValueError for anything else or a unit the model does not have."""
    stripped = text.strip()
    if not UNITS.fullmatch(stripped):
        raise ValueError(f"not a unit string ([HuN]...): {stripped[:40]!r}")
    units = np.array([int(n) for n in re.findall(r"\[Hu(\d+)\]", stripped)], dtype=np.int64)
    if units.max() >= num_units:
        raise ValueError(f"unit {int(units.max())} is beyond the model's {num_units} units")
    return units


def _entries(path: Path) -> list:
    """The entries of one release JSON file; DatasetError (one line naming it) when it is not one."""
    try:
        with open_regular(path) as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not a release instruction file (invalid JSON: {exc})") from None
    if isinstance(data, dict):
        data = data["data"] if isinstance(data.get("data"), list) else [data]
    if not isinstance(data, list):
        raise DatasetError(f"{path}: not a release instruction file (a JSON list of entries expected, found "
                           f"{type(data).__name__})")
    return data


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.rglob("*.json"))
        if not files:
            raise DatasetError(f"{path}: no release instruction file (*.json) here")
        return files
    if not path.is_file():
        raise DatasetError(f"{path}: not found")
    return [path]


def read_release_data(sources: list[dict], num_units: int, bad=warn_only, seed: int = 0) -> ReleaseExamples:
    """Every source ``{path, name?, asr_tts_mix_ratio?}`` (a file or a folder of ``*.json``), ids prefixed
    ``<name>/``; malformed entries reported to ``bad`` (module docstring)."""
    out = ReleaseExamples()
    for index, spec in enumerate(sources):
        spec = dict(spec)
        path = Path(spec.pop("path"))
        name = spec.pop("name", None) or "release"
        ratio = float(spec.pop("asr_tts_mix_ratio", 0.5))
        if spec:
            raise ValueError(f"data.release[{index}]: unknown key(s) {sorted(spec)} (path, name, asr_tts_mix_ratio)")
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"data.release[{index}]: asr_tts_mix_ratio {ratio} is not in [0, 1]")
        asr, tts, skipped, seen = [], [], 0, set()
        for file in _files(path):
            for k, entry in enumerate(_entries(file)):
                where = f"{file.name}#{k}"
                try:
                    if not isinstance(entry, dict):
                        raise ValueError(f"an entry is an object, found {type(entry).__name__}")
                    wrong = [f for f in FIELDS if not isinstance(entry.get(f), str)]
                    if wrong:
                        raise ValueError(f"field {wrong[0]!r} missing or not a string")
                    uid = f"{name}/{entry['id']}"
                    if uid in seen:
                        raise ValueError(f"id {entry['id']!r} listed twice")
                    if entry["instruction"].strip() == ASR_INSTRUCTION:
                        units, text, into = parse_units(entry["input"], num_units), entry["output"], asr
                    elif entry["instruction"].strip() == TTS_INSTRUCTION:
                        units, text, into = parse_units(entry["output"], num_units), entry["input"], tts
                    else:
                        raise ValueError(f"instruction {entry['instruction'][:50]!r} is neither the release's ASR "
                                         f"nor its TTS instruction")
                    if not text.strip():
                        raise ValueError("empty text")
                except ValueError as exc:
                    bad(name, where, str(exc))
                    skipped += 1
                    continue
                seen.add(uid)
                into.append(Utterance(uid, "", text.strip()))
                out.units[uid] = units
        total = len(asr) + len(tts)
        rng = np.random.default_rng([seed, index])
        n_asr = min(int(total * ratio), len(asr))
        n_tts = min(total - n_asr, len(tts))
        kept_asr = [asr[i] for i in sorted(rng.permutation(len(asr))[:n_asr])]
        kept_tts = [tts[i] for i in sorted(rng.permutation(len(tts))[:n_tts])]
        left_out = total - n_asr - n_tts
        out.asr += kept_asr
        out.tts += kept_tts
        out.skipped += skipped
        out.left_out += left_out
        logger.info("release data %s (%s): %d ASR and %d TTS entries (asr_tts_mix_ratio %.2f, %d left out); %d "
                    "skipped as malformed", name, path, n_asr, n_tts, ratio, left_out, skipped)
    return out
