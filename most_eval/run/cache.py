"""Append-only JSONL cache of per-request records: what makes a killed run resume without loss or duplicates.

A record holds what the model said for one request (most_eval.data.model_outputs), never a number derived from it.
One file per process (``rank<r>.jsonl``) in a folder per (task, model fingerprint + task config). Every record carries
a ``"cache"`` stamp ``{"model": fingerprint, "task": task key, "input": input digest}``; a line is reused only when
it parses as a record with an id and its model and task stamps match, so a line of another model, a forged line or
a line that is not a record is skipped and counted (:class:`CacheStats`), never trusted and never a reason to stop.
:func:`choose_records` then keeps, per id, the first record whose input digest is current and whose output passes
the caller's check: an unusable output is counted and its request runs again; a later record of the same id that
differs is counted as a conflict and ignored, so a record is never counted twice and an appended line never wins.

Each batch is written with a single ``write`` and flushed, so a SIGKILL can at worst cut the last line short. The file
is never truncated (a concurrent appender's lines would be cut): a torn tail is skipped when read, and the next append
starts on a new line. ``fsync`` runs at most once per ``fsync_interval`` seconds and on close.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

STAMP = "cache"  # the record key holding the cache stamp; removed before records reach the samples file


@dataclass
class CacheStats:
    """Lines of cache files that were not reused, by reason."""

    malformed: int = 0  # not JSON, not an object, no id or no stamp
    foreign: int = 0  # a record of another model fingerprint or task config
    torn: int = 0  # cut short by a killed write (the expected trace of SIGKILL): not warned about
    invalid: int = 0  # an output of the wrong type, or generated audio missing or changed: run again
    first_invalid: str | None = None  # the first invalid record's reason
    conflicts: int = 0  # a later record of an id already chosen, with another output: ignored

    def add(self, other: "CacheStats") -> None:
        self.malformed += other.malformed
        self.foreign += other.foreign
        self.torn += other.torn
        self.invalid += other.invalid
        self.first_invalid = self.first_invalid or other.first_invalid
        self.conflicts += other.conflicts

    def warnings(self) -> list[str]:
        """Every warning line: skipped lines, unusable outputs run again, conflicting records ignored."""
        lines = [self.warning()] if self.warning() else []
        if self.invalid:
            lines.append(f"cache: {self.invalid} record(s) with an unusable output run again "
                         f"(first: {self.first_invalid})")
        if self.conflicts:
            lines.append(f"cache: {self.conflicts} conflicting record(s) ignored")
        return lines

    def warning(self) -> str | None:
        """One line for results.json and the terminal, or None when every line was usable."""
        parts = []
        if self.malformed:
            parts.append(f"{self.malformed} malformed line(s)")
        if self.foreign:
            parts.append(f"{self.foreign} record(s) of another model or task config")
        return f"cache: skipped {' and '.join(parts)}" if parts else None


def read_records(path: Path, model: str | None = None, task: str | None = None,
                 stats: CacheStats | None = None) -> tuple[list[dict], bool]:
    """The records of a cache file in file order, and whether the file ends in a torn (unterminated) line.

    With ``model``/``task``, records whose stamp differs are skipped and counted in ``stats`` as foreign.
    """
    stats = stats if stats is not None else CacheStats()
    records: list[dict] = []
    torn = False
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return records, False
    with fh:
        for line in fh:
            if not line.endswith(b"\n"):
                torn = True
                stats.torn += 1
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:  # data that ends mid-value is a write cut short, else junk
                if exc.pos >= len(exc.doc.rstrip()):
                    stats.torn += 1
                else:
                    stats.malformed += 1
                continue
            except UnicodeDecodeError:
                stats.malformed += 1
                continue
            if not isinstance(record, dict) or not isinstance(record.get("id"), str) \
                    or not isinstance(record.get(STAMP), dict):
                stats.malformed += 1
                continue
            stamp = record[STAMP]
            if (model is not None and stamp.get("model") != model) or (task is not None and stamp.get("task") != task):
                stats.foreign += 1
                continue
            records.append(record)
    return records, torn


def choose_records(records: Iterable[dict], inputs: dict[str, str], problem: Callable[[dict], str | None],
                   stats: CacheStats) -> dict[str, dict]:
    """Per id, the first record whose input digest equals ``inputs[id]`` and for which ``problem`` returns None.

    A record of an older input (a changed transcript, replaced audio) is passed over: its sample runs again. A record
    ``problem`` finds fault with is counted in ``stats.invalid`` (the first reason kept); a later record of an id
    already chosen is ignored, and counted as a conflict when its output differs."""
    chosen: dict[str, dict] = {}
    for record in records:
        sample_id = record["id"]
        if record[STAMP].get("input") != inputs.get(sample_id):
            continue
        if sample_id in chosen:
            if _output(chosen[sample_id]) != _output(record):
                stats.conflicts += 1
            continue
        reason = problem(record)
        if reason is not None:
            stats.invalid += 1
            stats.first_invalid = stats.first_invalid or f"{sample_id}: {reason}"
            continue
        chosen[sample_id] = record
    return chosen


def _output(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != STAMP}


class SampleCache:
    """This process's cache file of one task for one model: reads usable records, appends new ones."""

    def __init__(self, path: Path, model: str | None = None, task: str | None = None, fsync_interval: float = 1.0):
        self.path = Path(path)
        self.model, self.task = model, task
        self.fsync_interval = fsync_interval
        self.stats = CacheStats()
        self._file = None
        self._torn = False
        self._last_sync = 0.0

    def load(self) -> list[dict]:
        """The file's records of this model and task, in file order (skipping and counting the other lines)."""
        self.stats = CacheStats()
        records, self._torn = read_records(self.path, self.model, self.task, self.stats)
        return records

    def stamp(self, input_key: str) -> dict:
        """The cache stamp of a record for this model and task with the given input digest."""
        return {"model": self.model, "task": self.task, "input": input_key}

    def append(self, records: list[dict]) -> None:
        """Add records (one write call, flushed); a torn tail left by a killed run is closed off first."""
        if not records:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
            if not self._torn and self.path.stat().st_size:  # not loaded by us: check the last byte
                with open(self.path, "rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    self._torn = fh.read(1) != b"\n"
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        self._file.write(("\n" if self._torn else "") + text)
        self._torn = False
        self._file.flush()
        now = time.monotonic()
        if now - self._last_sync >= self.fsync_interval:
            os.fsync(self._file.fileno())
            self._last_sync = now

    def close(self) -> None:
        """Flush, fsync and close."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
