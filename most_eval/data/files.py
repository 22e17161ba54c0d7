"""Reading dataset files without trusting them: the one layer every dataset reader goes through.

A dataset is data, not configuration. A transcript line, a ``gold.csv`` row or a JSONL field may name any path; a
manifest may be a FIFO, a directory or a symlink to somewhere else; a field may hold a number, a bool or null where
text belongs. This module turns each of these into a one-line error naming the file and the reason, and never opens
what it should not:

* :func:`safe_path` / :func:`plain_name`: a listed path stays under the dataset folder (no ``..`` component, no
  absolute path, no symlink out); a listed id is one file name.
* :func:`file_problem`: why a path is not a readable data file (outside the root, missing, a directory, a FIFO, ...).
* :func:`manifest_path`, :func:`open_regular`, :func:`read_bytes`: manifests are opened non-blocking and must be
  regular files, so a FIFO where ``trans.txt`` should be is a :class:`~most_eval.core.task.DatasetError`, never a hang.
* :func:`text_field`, :func:`text_list`, :func:`number_field`: manifest fields by type (a number is its decimal
  text; a bool, a null or an object is an error naming the file and line).
* :func:`output_name`: any sample id as one safe file name, for what a task writes under the output folder;
  :func:`output_path`: where the runner writes a file a task names (:meth:`~most_eval.core.task.Task.side_files`).

Per-sample callers turn these errors into error records; whole-manifest callers let the DatasetError through.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from most_eval.core.errors import DatasetError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a plain file")


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "not found"
    return f"cannot read ({exc.strerror or exc})"


# ---------------------------------------------------------------------------------------------------------------
# Paths


def safe_path(root: str | os.PathLike, relative: str | os.PathLike) -> Path:
    """``root / relative`` after checking that it stays under ``root``; ValueError otherwise.

    Refused: an empty path, an absolute path, any ``..`` component, and a path whose resolved target (symlinks
    followed) leaves ``root``. The returned path is *not* resolved (``root / relative``), so ids and fingerprints
    do not depend on where symlinks point.
    """
    text = os.fspath(relative)
    if not text.strip() or "\0" in text:
        raise ValueError(f"path {text!r} is not a file name")
    if os.path.isabs(text) or ".." in PurePosixPath(text).parts:
        raise ValueError(f"path {text!r} escapes the dataset root {root}")
    path = Path(root) / text
    try:
        target = path.resolve()
        inside = target.is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise ValueError(f"path {text!r} cannot be resolved ({exc})") from None
    if not inside:
        dangling = "" if os.path.exists(path) else "dangling "
        raise ValueError(f"path {text!r} escapes the dataset root {root} ({dangling}symlink to {target})")
    return path


def plain_name(name: str, what: str = "id") -> str:
    """``name`` when it can be one file name (not empty, no ``/``, not ``.``/``..``, no NUL); else ValueError."""
    if not isinstance(name, str) or not name.strip() or "/" in name or "\0" in name or name in (".", ".."):
        raise ValueError(f"{what} {name!r} is not a plain file name (a path with '/' or '..' could leave the "
                         f"dataset folder)")
    return name


def file_problem(path: str | os.PathLike, root: str | os.PathLike | None = None) -> str | None:
    """Why ``path`` cannot be read as a data file, or None when it can: it leaves ``root`` through a symlink (when
    ``root`` is given), it is missing (or a dangling symlink), or it is a directory, FIFO, device or socket.
    Never opens the file."""
    if root is not None:
        try:
            safe_path(root, Path(path).relative_to(root))
        except ValueError as exc:
            return str(exc)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return _os_reason(exc)
    return None if stat.S_ISREG(mode) else f"is {_kind(mode)}, not a regular file"


def manifest_path(root: str | os.PathLike, relative: str, what: str) -> Path:
    """The manifest ``root / relative`` (``what``: "Common Voice table", ...): DatasetError when it is missing, not a
    regular file, or a symlink out of ``root``."""
    path = Path(root) / relative
    try:
        safe_path(root, relative)
    except ValueError as exc:
        raise DatasetError(f"{path}: {what}: {exc}") from None
    problem = file_problem(path)
    if problem:
        raise DatasetError(f"{path}: {what} {problem}")
    return path


# ---------------------------------------------------------------------------------------------------------------
# Opening


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for binary reading, only if it is a regular file; DatasetError naming the file otherwise.

    The open itself is non-blocking (``O_NONBLOCK``), so a FIFO is refused at once instead of waiting for a writer.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise DatasetError(f"{path}: {_os_reason(exc)}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DatasetError(f"{path}: is {_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike) -> bytes:
    """The content of the regular file ``path``; DatasetError (one line: file and reason) when it cannot be read."""
    with open_regular(path) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise DatasetError(f"{path}: {_os_reason(exc)}") from None


# ---------------------------------------------------------------------------------------------------------------
# Typed fields


def _type_name(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, bool):
        return "a bool"
    kinds = {str: "text", int: "a number", float: "a number", dict: "an object", list: "a list", tuple: "a list"}
    return kinds.get(type(value), f"of type {type(value).__name__}")


def _described(value: Any) -> str:
    kind = _type_name(value)
    return kind if kind == "null" else f"{kind} ({json.dumps(value, default=str)[:60]})"


def text_field(value: Any, name: str, numbers: bool = True) -> str:
    """A manifest field as text: a string as it is, a number (when ``numbers``) as its decimal text ("1984"; an
    integral float loses its ".0"). ValueError ``"<name> is a bool (true), not text"`` for anything else (bool, null,
    NaN, list, object); the caller prefixes the file and line."""
    if isinstance(value, str):
        return value
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if numbers and is_number and math.isfinite(value):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    expected = "text or a number" if numbers else "text"
    raise ValueError(f"{name} is {_described(value)}, not {expected}")


def number_field(value: Any, name: str) -> float:
    """A manifest field that must be a finite number (int or float, not a bool, not text); ValueError otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ValueError(f"{name} is {_described(value)}, not a number")


def text_list(value: Any, name: str) -> list[str]:
    """A field that holds one text or a list of texts (answer aliases) as a list of non-blank texts; each item as
    :func:`text_field` (a number becomes its text; a bool or null anywhere is a ValueError naming the item)."""
    if not isinstance(value, (list, tuple)):
        value = [value]
    texts = [text_field(item, f"{name}[{i}]" if len(value) > 1 else name) for i, item in enumerate(value)]
    return [t for t in texts if t.strip()]


# ---------------------------------------------------------------------------------------------------------------
# Output names

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_NAME = 120


def output_name(sample_id: str, suffix: str = "") -> str:
    """One safe file name for ``sample_id`` (plus ``suffix``): the id itself when it is made of ``[A-Za-z0-9._-]``
    only, short enough and not dots only; otherwise the id with other characters replaced by ``_``, prefixed by
    8 hex digits of its sha1 (so different ids keep different files). Never contains ``/`` and never is ``..``."""
    sample_id = str(sample_id)
    name = _UNSAFE.sub("_", sample_id)[:_MAX_NAME]
    if name != sample_id or not name.strip("."):
        name = f"{hashlib.sha1(sample_id.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}-{name}"
    return name + suffix


def output_path(root: str | os.PathLike, relative: str) -> Path:
    """``root / relative`` for a file a task asks the runner to write: every ``/``-separated part of ``relative``
    must be a name :func:`output_name` leaves as it is (no ``..``, no empty part, no odd character) and the path must
    stay under ``root`` (:func:`safe_path`: no symlink out); ValueError naming the part otherwise."""
    parts = str(relative).split("/")
    bad = next((part for part in parts if output_name(part) != part), None)
    if bad is not None:
        raise ValueError(f"output file {relative!r}: part {bad!r} is not a plain file name")
    return safe_path(root, relative)
