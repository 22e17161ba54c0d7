"""Tolerant readers for the text manifests datasets ship (transcript lists, TSV/CSV tables, JSONL).

Each reader returns rows *with their line numbers*, and a row that cannot be decoded (not UTF-8, wrong number of
columns, bad JSON) comes back as a :class:`BadLine` naming the file, the line and the reason, so the task reader can
turn it into an error record instead of dropping it or crashing on it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from most_eval.data.files import read_bytes
from most_eval.core.errors import DatasetError


@dataclass(frozen=True)
class BadLine:
    """A manifest line that could not be read."""

    path: Path
    line: int  # 1-based
    reason: str
    raw: bytes = b""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def read_lines(path: Path) -> Iterator[tuple[int, str] | BadLine]:
    """(line number, text without line ending) per non-blank line; undecodable lines as BadLine. CRLF is fine.

    The file must be a regular file (a FIFO or directory is a DatasetError at once, never a blocking read); any
    read failure is a DatasetError naming the file and the reason.
    """
    path = Path(path)
    data = read_bytes(path)
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield number, raw.decode("utf-8").lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            yield BadLine(path, number, f"not valid UTF-8 (byte {exc.start})", raw)


def read_table(path: Path, delimiter: str = "\t", required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict] | BadLine]:
    """Rows of a delimited table with a header, as dicts keyed by header name.

    Quotes are literal for TSV (Common Voice sentences contain them) and honoured for CSV.
    A missing required column is a DatasetError (the whole table is unusable).
    """
    lines = read_lines(path)
    header = None
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    for entry in lines:
        if isinstance(entry, BadLine):
            if header is None:
                raise DatasetError(f"{entry.path}: header line {entry.reason}")
            yield entry
            continue
        number, text = entry
        fields = next(csv.reader([text], delimiter=delimiter, quoting=quoting))
        if header is None:
            header = [h.strip() for h in fields]
            missing = [c for c in required if c not in header]
            if missing:
                raise DatasetError(f"{path}: missing column(s) {', '.join(missing)} (header: {', '.join(header)})")
            continue
        if len(fields) != len(header):
            yield BadLine(Path(path), number, f"{len(fields)} fields, header has {len(header)}")
            continue
        yield number, dict(zip(header, fields))
    if header is None:
        raise DatasetError(f"{path}: empty table (no header line)")


def read_jsonl(path: Path) -> Iterator[tuple[int, dict] | BadLine]:
    """Objects of a JSON-lines file; a line that is not a JSON object comes back as BadLine."""
    for entry in read_lines(path):
        if isinstance(entry, BadLine):
            yield entry
            continue
        number, text = entry
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield BadLine(Path(path), number, f"invalid JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict):
            yield BadLine(Path(path), number, "not a JSON object")
            continue
        yield number, obj
