"""What a cached record depends on, as digests: file contents, model weight folders, adapter code.

* :class:`ContentDigests` — sha256 of a file's bytes, memoised by (path, size, mtime, ctime, inode), so a run hashes each
  file once and a file replaced at an unchanged path gets a new digest. Only regular files are opened, without
  blocking (a FIFO or device named like a data file is reported, never waited on).
* :func:`path_stamp` — a weights stamp of a file or folder: names, sizes, modification times and content digests,
  the latter remembered across runs (:class:`PersistentDigests`), so weights are hashed once per file version.
  Overwritten weights change the stamp.
* :func:`code_version` — a digest of the source files that define a class (its whole MRO), so a changed adapter
  never reuses outputs cached by the old code.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import stat
from pathlib import Path

#: where content digests of weight files are remembered across runs (``$MOST_EVAL_CACHE`` overrides the folder)
CACHE_ENV = "MOST_EVAL_CACHE"
DIGESTS_FILE = "file-digests.jsonl"
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
    """sha256 digests of file contents, computed once per (path, size, mtime, ctime, inode)."""

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
        key = (name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)  # ctime: a write with a
        # restored mtime still changes it
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


class PersistentDigests(ContentDigests):
    """Content digests remembered across runs in ``$MOST_EVAL_CACHE/file-digests.jsonl`` (default
    ``~/.cache/most-eval``), keyed by path, size, modification and change times and inode (a rewrite that restores
    the modification time still changes the change time): multi-GB weights are hashed once per
    file version, not once per run. An unwritable cache folder only costs the re-hashing."""

    def __init__(self, path: Path | None = None):
        super().__init__()
        self.path = path or Path(os.environ.get(CACHE_ENV) or "~/.cache/most-eval").expanduser() / DIGESTS_FILE
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        for line in lines:
            try:
                entry = json.loads(line)
                key = (entry["path"], entry["size"], entry["mtime_ns"], entry["ctime_ns"], entry["ino"], entry["dev"])
                self._memo[key] = bytes.fromhex(entry["sha256"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn or foreign line: that file is simply hashed again

    def digest(self, path: str | os.PathLike) -> bytes:
        known = len(self._memo)
        value = super().digest(path)
        if len(self._memo) > known:  # newly hashed: remember it (one line, one write)
            key = next(reversed(self._memo))
            line = json.dumps({"path": key[0], "size": key[1], "mtime_ns": key[2], "ctime_ns": key[3],
                               "ino": key[4], "dev": key[5], "sha256": value.hex()})
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            except OSError:
                pass
        return value


def path_stamp(path: str | os.PathLike, digests: ContentDigests | None = None) -> list | None:
    """Weights stamp of a file or folder: ``[relative name, size, mtime_ns, sha256 prefix]`` per file; None when
    ``path`` does not exist. Content digests come from :class:`PersistentDigests` (hashed once per file version)."""
    root = Path(path).expanduser()
    if not root.exists():
        return None
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())[:MAX_STAMPED_FILES]
    digests = digests or PersistentDigests()
    stamp = []
    for file in files:
        st = file.stat()
        name = file.name if file == root else file.relative_to(root).as_posix()
        stamp.append([name, st.st_size, st.st_mtime_ns, digests.digest(str(file.resolve())).hex()[:16]])
    return stamp


def stamp_digest(path: str | os.PathLike) -> str | None:
    """A short digest of :func:`path_stamp` (None when ``path`` does not exist), for results and configs."""
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
