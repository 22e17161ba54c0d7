"""Append-only JSONL cache of per-request records: what makes a killed run resume without loss or duplicates.

One file per (task, model fingerprint + task config). Each batch of records is written with a single ``write`` and
flushed to the OS, so a SIGKILL can at worst cut the last line short; on reopen that torn tail is truncated away
and the samples it held are simply run again. Later records win over earlier ones with the same id, so a record is
never counted twice. ``fsync`` runs at most once per ``fsync_interval`` seconds (SIGKILL does not lose flushed data;
fsync only guards against a machine crash) and on close.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def read_records(path: Path) -> dict[str, dict]:
    """Records of a cache file written by another process: complete lines only, nothing truncated."""
    records: dict[str, dict] = {}
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            records[str(record["id"])] = record
    return records


class SampleCache:
    """Records of one task for one model, keyed by sample id."""

    def __init__(self, path: Path, fsync_interval: float = 1.0):
        self.path = Path(path)
        self.fsync_interval = fsync_interval
        self.records: dict[str, dict] = {}
        self._file = None
        self._last_sync = 0.0

    def load(self) -> dict[str, dict]:
        """Read the file, dropping (and truncating) a torn last line; returns {id: record}."""
        if not self.path.exists():
            return self.records
        good_bytes = 0
        with open(self.path, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # torn tail of a killed write
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break
                self.records[str(record["id"])] = record
                good_bytes += len(line)
        if good_bytes != self.path.stat().st_size:
            with open(self.path, "r+b") as fh:
                fh.truncate(good_bytes)
        return self.records

    def append(self, records: list[dict]) -> None:
        """Add records (one write call, flushed)."""
        if not records:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        self._file.flush()
        for r in records:
            self.records[str(r["id"])] = r
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
