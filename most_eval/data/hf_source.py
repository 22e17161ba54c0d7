"""Datasets as Hugging Face users hold them: a ``save_to_disk`` folder or parquet shards, audio embedded or by path.

``--task-args source=PATH`` points a task at one split in that form instead of the official folder layout:

* a ``save_to_disk`` folder of one split (``dataset_info.json`` + ``*.arrow``), read with ``datasets.load_from_disk``
  (a ``DatasetDict`` folder is refused with the names of its splits: pass ``PATH/<split>``);
* a ``.parquet`` file, or a folder of parquet shards (read recursively, in name order), read with pyarrow.

Columns are those of the public dataset cards (a task names its own: e.g. ``openslr/librispeech_asr`` has ``id``,
``text``, ``audio``). An audio cell is a ``{"bytes", "path"}`` struct (embedded, as ``push_to_hub`` and
``save_to_disk`` store it) or a path. Embedded audio is written once under the run's output folder
(``OUTPUT/data/<task>/<id>.<ext>``), so the runner reads it as any other file; a path must stay inside the source
folder (:func:`most_eval.data.files.safe_path`). Audio is never decoded here (no audio backend of ``datasets`` is
needed). Every row keeps its number for error records, and the shard files go into the dataset hash.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from most_eval.data.files import file_problem, output_name, safe_path, text_field
from most_eval.core.errors import DatasetError


@dataclass
class SourceRow:
    """One row of a source: where it is (for messages), its cells, and the files it came from."""

    where: str  # "<file or folder>:row <n>"
    cells: dict[str, Any]


@dataclass
class Source:
    """A split read from ``save_to_disk`` or parquet form."""

    root: Path  # the folder paths in audio cells are relative to
    files: tuple[Path, ...]  # the shard files (hashed into the dataset digest)
    rows: list[SourceRow]


def _plain(value: Any) -> Any:
    """A cell as plain Python (numpy scalars and arrays from pandas/pyarrow conversions)."""
    return value.tolist() if hasattr(value, "tolist") and not isinstance(value, (bytes, str)) else value


def _parquet_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob("*.parquet") if p.is_file())


def read_source(path: str | os.PathLike, columns: tuple[str, ...], optional: tuple[str, ...] = ()) -> Source:
    """The rows of one split with the given columns (and those of ``optional`` the split has: a row's cells hold
    only the optional columns present); DatasetError (one line) when it cannot be read."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(f"{path}: source not found (a save_to_disk folder or parquet shards)")
    if path.is_dir() and (path / "dataset_dict.json").is_file():
        splits = sorted(p.name for p in path.iterdir() if (p / "dataset_info.json").is_file())
        raise DatasetError(f"{path}: a DatasetDict; pass one split folder: {', '.join(splits) or '(none found)'}")
    if path.is_dir() and (path / "dataset_info.json").is_file():
        import datasets

        try:
            table = datasets.load_from_disk(str(path)).data.table
        except Exception as exc:  # datasets/pyarrow raise their own error types for damaged folders
            raise DatasetError(f"{path}: cannot read the save_to_disk folder ({str(exc).splitlines()[0][:160]})") \
                from None
        files = tuple(sorted(path.glob("*.arrow")))
        name = path
    else:
        import pyarrow
        import pyarrow.parquet as pq

        files = tuple(_parquet_files(path))
        if not files:
            raise DatasetError(f"{path}: no parquet shards found")
        try:
            table = pyarrow.concat_tables([pq.read_table(f) for f in files], promote_options="default")
        except Exception as exc:
            raise DatasetError(f"{path}: cannot read parquet ({str(exc).splitlines()[0][:160]})") from None
        name = path
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DatasetError(f"{name}: missing column(s) {', '.join(missing)} (has: {', '.join(table.column_names)})")
    columns = (*columns, *(c for c in optional if c in table.column_names and c not in columns))
    data = {c: table.column(c).to_pylist() for c in columns}
    rows = [SourceRow(f"{name}:row {i + 1}", {c: _plain(data[c][i]) for c in columns}) for i in range(table.num_rows)]
    return Source(path if path.is_dir() else path.parent, files, rows)


def audio_file(cell: Any, root: Path, sample_id: str, extract_dir: Path) -> Path:
    """The file holding a row's audio: embedded bytes written once under ``extract_dir``, or a path inside ``root``
    (the source's folder). ValueError (one line, no file named outside) for anything else."""
    if isinstance(cell, dict) and cell.get("bytes"):
        data = cell["bytes"]
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(f"audio bytes are {type(data).__name__}, not bytes")
        suffix = Path(str(cell.get("path") or "")).suffix.lower()
        suffix = suffix if suffix in (".wav", ".flac", ".mp3", ".ogg", ".opus") else ".wav"
        # the content's digest in the name: two rows with one id never overwrite each other's audio
        target = extract_dir / output_name(f"{sample_id}.{hashlib.sha256(data).hexdigest()[:10]}", suffix)
        if not target.is_file() or target.read_bytes() != data:
            extract_dir.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # ranks extract side by side
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return target
    path = cell.get("path") if isinstance(cell, dict) else cell
    if path is None or path == "":
        raise ValueError("no audio (neither bytes nor a path)")
    return safe_path(root, text_field(path, "audio path", numbers=False))


def row_audio(row: SourceRow, column: str, source: Source, sample_id: str,
              extract_dir: Path) -> tuple[Path, tuple[Path, ...]]:
    """The audio file of one row's ``column`` (:func:`audio_file`) and the files a sample made from it reads: the
    shards, plus the audio file when the cell is a path (embedded audio is hashed with its shard). ValueError with
    the whole one-line reason, naming the row and the column, when it cannot be used."""
    cell = row.cells.get(column)
    try:
        audio = audio_file(cell, source.root, sample_id, extract_dir)
    except ValueError as exc:
        raise ValueError(f"{row.where}: {column}: {exc}") from None
    problem = file_problem(audio)
    if problem:
        raise ValueError(f"{audio}: {column} of {row.where} {problem}")
    embedded = isinstance(cell, dict) and cell.get("bytes")
    return audio, source.files if embedded else (*source.files, audio)
