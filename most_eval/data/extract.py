"""Safe archive extraction: every member is checked first (no absolute paths, no ``..``, no links leaving the root,
no member inside a symlinked folder, no device files or fifos, total uncompressed size under a cap); extraction goes
to a temporary folder inside the data root and is renamed into place, so a failure leaves earlier data as it was."""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable

from most_eval.data.catalog import CHUNK, DatasetDownloadError, _relative


TMP_PREFIX = ".most-eval-tmp-"  # temporary extraction folders inside ROOT; removed on success and on failure
EXTRACT_CAP_FACTOR = 4  # default cap on the total uncompressed size: 4 x the archive's size on disk


def _refuse(archive: str, member: str, why: str) -> DatasetDownloadError:
    return DatasetDownloadError(f"{archive}: member {member!r} refused: {why}")


def _member_path(archive: str, name: str) -> PurePosixPath:
    """A member name as a safe relative path, or an error (absolute, drive, ``..``, NUL)."""
    if "\0" in name or name.startswith(("/", "\\")) or PureWindowsPath(name).anchor:
        raise _refuse(archive, name, "absolute path")
    path = PurePosixPath(name)
    if ".." in path.parts or ".." in PureWindowsPath(name).parts:
        raise _refuse(archive, name, "'..' component")
    return path


def _inside(base: PurePosixPath, link: str) -> bool:
    """Whether ``base/link`` (lexically normalised) stays inside the extraction root."""
    if link.startswith(("/", "\\")) or PureWindowsPath(link).anchor:
        return False
    normal = os.path.normpath(os.path.join(str(base), link))
    return not (normal == ".." or normal.startswith("../") or os.path.isabs(normal))


def _via_symlink(base: PurePosixPath, link: str, symlinks: set[PurePosixPath]) -> bool:
    """Whether resolving ``link`` from ``base`` steps on a symlink member (whose real target lexical checks miss)."""
    stack = list(base.parts)
    for part in PurePosixPath(link).parts:
        if part == "..":
            if stack:
                stack.pop()
        elif part != ".":
            stack.append(part)
            if PurePosixPath(*stack) in symlinks:
                return True
    return False


def _check_sizes(archive: str, name: str, total: int, cap: int) -> None:
    if total > cap:
        raise _refuse(archive, name, f"total uncompressed size would exceed the cap of {cap} bytes")


def _check_tar(archive: str, members: list[tarfile.TarInfo], cap: int) -> None:
    paths = [(m, _member_path(archive, m.name)) for m in members]
    symlinks = {p for m, p in paths if m.issym()}
    total = 0
    for m, p in paths:
        if not p.parts and not m.isdir():
            raise _refuse(archive, m.name, "empty file name")
        if any(parent in symlinks for parent in p.parents):
            raise _refuse(archive, m.name, "inside a symlinked folder")
        if p in symlinks and not m.issym():
            raise _refuse(archive, m.name, "would be written through a symlink of the same name")
        if m.ischr() or m.isblk() or m.isfifo():
            raise _refuse(archive, m.name, "device file or fifo")
        if m.issym():
            if not _inside(p.parent, m.linkname):
                raise _refuse(archive, m.name, f"symlink to {m.linkname!r} points outside the extraction root")
            if _via_symlink(p.parent, m.linkname, symlinks):
                raise _refuse(archive, m.name, f"symlink to {m.linkname!r} goes through another symlink")
        elif m.islnk():  # hard link names are relative to the archive root
            if not _inside(PurePosixPath("."), m.linkname):
                raise _refuse(archive, m.name, f"hardlink to {m.linkname!r} points outside the extraction root")
            if _via_symlink(PurePosixPath("."), m.linkname, symlinks):
                raise _refuse(archive, m.name, f"hardlink to {m.linkname!r} goes through a symlink")
        elif not (m.isfile() or m.isdir()):
            raise _refuse(archive, m.name, "unsupported member type")
        if m.isfile():
            total += m.size
            _check_sizes(archive, m.name, total, cap)


def _extract_tar(path: Path, dest: Path, cap: int) -> None:
    name = path.name
    try:
        with tarfile.open(path, "r:*") as tf:
            members = tf.getmembers()
            _check_tar(name, members, cap)
            if hasattr(tarfile, "data_filter"):  # Python 3.12+, 3.11.4+, 3.10.12+
                tf.extractall(dest, members=members, filter="data")
            else:  # our checks above cover what the filter would refuse
                tf.extractall(dest, members=members)
    except DatasetDownloadError:
        raise
    except tarfile.TarError as exc:
        member = getattr(getattr(exc, "tarinfo", None), "name", None)
        if member is not None:  # tarfile.FilterError
            raise _refuse(name, member, str(exc)) from exc
        raise DatasetDownloadError(f"{name}: unreadable tar archive ({exc})") from exc
    except (OSError, EOFError) as exc:
        raise DatasetDownloadError(f"{name}: extraction failed ({exc})") from exc


def _extract_zip(path: Path, dest: Path, cap: int) -> None:
    name = path.name
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            total = 0
            for info in infos:
                _member_path(name, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise _refuse(name, info.filename, "symlink")
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                    raise _refuse(name, info.filename, "device file or fifo")
                total += info.file_size
                _check_sizes(name, info.filename, total, cap)
            written = 0
            for info in infos:
                target = dest.joinpath(*_member_path(name, info.filename).parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as out:
                    while chunk := src.read(CHUNK):
                        written += len(chunk)
                        _check_sizes(name, info.filename, written, cap)
                        out.write(chunk)
    except DatasetDownloadError:
        raise
    except zipfile.BadZipFile as exc:
        raise DatasetDownloadError(f"{name}: unreadable zip archive ({exc})") from exc
    except OSError as exc:
        raise DatasetDownloadError(f"{name}: extraction failed ({exc})") from exc


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def _move_into_place(new: Path, target: Path, scratch: Path) -> None:
    """Rename ``new`` to ``target``; an existing ``target`` is set aside in ``scratch`` and restored on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    previous = scratch / "previous"
    had_previous = target.exists() or target.is_symlink()
    if had_previous:
        os.rename(target, previous)
    try:
        os.rename(new, target)
    except OSError:
        if had_previous:
            os.rename(previous, target)
        raise


def _move_missing(tmp: Path, root: Path) -> None:
    """Move what else the archive held (e.g. ``LibriSpeech/SPEAKERS.TXT``) to ``root`` where nothing is there yet."""
    for folder, dirs, files in os.walk(tmp, topdown=True):
        rel = Path(folder).relative_to(tmp)
        for entry in list(dirs) + files:
            src, dest = Path(folder) / entry, root / rel / entry
            if src.is_dir() and not src.is_symlink() and dest.is_dir():
                continue  # descend: merge folder by folder
            if entry in dirs:
                dirs.remove(entry)
            if not (dest.exists() or dest.is_symlink()):
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.rename(src, dest)


def safe_extract(archive_path: str | os.PathLike, root: str | os.PathLike, extracts_to: str, *,
                 max_bytes: int | None = None, replace: bool = False,
                 check: Callable[[Path], None] | None = None) -> Path:
    """Extract a tar or zip archive so that ``root/extracts_to`` appears atomically; returns that folder.

    Members are checked before anything is written (see the module docstring); ``max_bytes`` caps the total
    uncompressed size (default: 4 x the archive's size). ``check(tmp_root)`` may inspect the extracted tree before it
    is moved into place and raise to refuse it. An existing ``root/extracts_to`` is replaced only with ``replace``,
    and only once the new tree is complete; on any failure it is left as it was and the temporary folder is removed.
    """
    archive_path, root = Path(archive_path), Path(root)
    extracts_to = _relative(extracts_to, "extracts_to")
    target = root / extracts_to
    if (target.exists() or target.is_symlink()) and not replace:
        raise DatasetDownloadError(f"{target} already exists; pass --force to replace it")
    cap = max_bytes if max_bytes is not None else EXTRACT_CAP_FACTOR * archive_path.stat().st_size
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=root))
    scratch = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=root))
    try:
        if _is_zip(archive_path):
            _extract_zip(archive_path, tmp, cap)
        else:
            _extract_tar(archive_path, tmp, cap)
        new = tmp / extracts_to
        if not new.is_dir() or new.is_symlink():
            raise DatasetDownloadError(f"{archive_path.name}: the archive holds no folder {extracts_to}/")
        if check is not None:
            check(tmp)
        try:
            _move_into_place(new, target, scratch)
            _move_missing(tmp, root)
        except OSError as exc:
            raise DatasetDownloadError(f"{archive_path.name}: cannot move the extracted {extracts_to}/ into "
                                       f"{root} ({exc})") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return target
