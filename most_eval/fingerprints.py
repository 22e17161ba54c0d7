"""What a cached record depends on, as digests: file contents, model weight folders, adapter code.

* :class:`ContentDigests` — sha256 of a file's bytes, memoised by (path, size, mtime, inode), so a run hashes each
  file once and a file replaced at an unchanged path gets a new digest. Only regular files are opened, without
  blocking (a FIFO or device named like a data file is reported, never waited on).
* :func:`path_stamp` — a weights stamp of a file or folder: names, sizes, modification times, and the content digest
  of files small enough to hash cheaply. Overwritten weights change the stamp.
* :func:`code_version` — a digest of the source files that define a class (its whole MRO), so a changed adapter
  never reuses outputs cached by the old code.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import stat
from pathlib import Path

#: files up to this size are hashed by content in a weights stamp; larger ones by name, size and mtime only
CHEAP_DIGEST_BYTES = 16 << 20
#: a folder stamp lists at most this many files (a model folder has a handful; a data folder passed by mistake many)
MAX_STAMPED_FILES = 10_000


def _open_regular(path: str) -> tuple[int, os.stat_result]:
    """A read-only descriptor of ``path`` if it is a regular file; OSError otherwise. Never blocks on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError("not a regular file")
        return fd, st
    except BaseException:
        os.close(fd)
        raise


class ContentDigests:
    """sha256 digests of file contents, computed once per (path, size, mtime, inode)."""

    def __init__(self):
        self._memo: dict[tuple, bytes] = {}
        self.by_path: dict[str, bytes] = {}  # last digest per path string (for the dataset digest)

    def digest(self, path: str | os.PathLike) -> bytes:
        """The file's content digest; for a missing, unreadable or non-regular file a digest of that condition."""
        name = str(path)
        try:
            st = os.stat(name)
        except OSError as exc:
            return self._remember(name, hashlib.sha256(f"<missing: {exc.strerror}>".encode()).digest())
        key = (name, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
        if key in self._memo:
            return self._remember(name, self._memo[key])
        try:
            fd, _ = _open_regular(name)
        except OSError as exc:
            return self._remember(name, hashlib.sha256(f"<unreadable: {exc}>".encode()).digest())
        try:
            with os.fdopen(fd, "rb") as fh:
                value = hashlib.file_digest(fh, "sha256").digest()
        except OSError as exc:
            value = hashlib.sha256(f"<unreadable: {exc}>".encode()).digest()
        self._memo[key] = value
        return self._remember(name, value)

    def _remember(self, name: str, value: bytes) -> bytes:
        self.by_path[name] = value
        return value


def path_stamp(path: str | os.PathLike) -> list | None:
    """Weights stamp of a file or folder: ``[relative name, size, mtime_ns, sha256 or None]`` per file; None when
    ``path`` does not exist."""
    root = Path(path).expanduser()
    if not root.exists():
        return None
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())[:MAX_STAMPED_FILES]
    digests = ContentDigests()
    stamp = []
    for file in files:
        st = file.stat()
        small = st.st_size <= CHEAP_DIGEST_BYTES
        name = file.name if file == root else file.relative_to(root).as_posix()
        stamp.append([name, st.st_size, st.st_mtime_ns, digests.digest(file).hex()[:16] if small else None])
    return stamp


def stamp_digest(path: str | os.PathLike) -> str | None:
    """A short digest of :func:`path_stamp` (None when ``path`` does not exist), for results and configs."""
    import json

    stamp = path_stamp(path)
    return None if stamp is None else hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]


def code_version(cls: type, modules: tuple[str, ...] = ()) -> str:
    """Digest of the source files defining ``cls`` and its base classes (builtins skipped), plus those of the
    named ``modules`` (e.g. the model file an adapter drives)."""
    import importlib

    sources = []
    for klass in cls.__mro__:
        try:
            sources.append(inspect.getsourcefile(klass))
        except TypeError:  # builtins
            continue
    sources += [inspect.getsourcefile(importlib.import_module(m)) for m in modules]
    digest = hashlib.sha256()
    for source in dict.fromkeys(s for s in sources if s):
        try:
            digest.update(Path(source).read_bytes())
        except OSError:
            digest.update(source.encode())
    return digest.hexdigest()[:16]
