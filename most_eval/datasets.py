"""Dataset download and verification (``most-eval data download|verify|list``).

The datasets are described by a manifest, ``datasets_manifest.json`` next to this file (another one through the
``manifest=`` argument or ``$MOST_EVAL_DATA_MANIFEST``). A dataset either has official archives (LibriSpeech
test-clean / test-other from OpenSLR SLR12) or, when no single public archive exists, instructions and the folder
layout ``--data-root`` expects; ``download`` then raises :class:`ManualDatasetError`, which carries them.

A download is:

1. fetched with :mod:`urllib` into ``ROOT/archives/<file>.part``: a partial file is continued with an HTTP ``Range``
   request; a server that ignores ``Range`` (status 200) restarts the file cleanly; a dropped connection or a timeout is
   retried with exponential backoff (the retry budget refills whenever a try made progress);
2. checked against the manifest's size and digests (sha256 where known, else md5; the result says which) and only then
   renamed to ``ROOT/archives/<file>``;
3. extracted safely: every member is checked first (no absolute paths, no ``..``, no links leaving the root, no member
   inside a symlinked folder, no device files or fifos, total uncompressed size under a cap); tar extraction also uses
   the standard library's ``data`` filter. Extraction goes to a temporary folder inside ``ROOT``; the expected folder is
   checked there and then renamed into place, so a failure leaves earlier data as it was.

Every failure is a :class:`DatasetDownloadError` whose message is one line.
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable, Iterable

MANIFEST_ENV = "MOST_EVAL_DATA_MANIFEST"
DEFAULT_MANIFEST = Path(__file__).with_name("datasets_manifest.json")
ARCHIVES_DIR = "archives"  # downloaded archives live in ROOT/archives/ (kept so `verify` can check them)
TMP_PREFIX = ".most-eval-tmp-"  # temporary extraction folders inside ROOT; removed on success and on failure
CHUNK = 1 << 20  # bytes per read and per progress update
DEFAULT_TIMEOUT = 60.0  # seconds without data before a connection counts as dropped
DEFAULT_RETRIES = 5  # consecutive failed tries (without progress) before giving up
DEFAULT_BACKOFF = 2.0  # seconds before the first retry; doubles per consecutive failure
MAX_BACKOFF = 60.0
EXTRACT_CAP_FACTOR = 4  # default cap on the total uncompressed size: 4 x the archive's size on disk
USER_AGENT = "most-eval dataset download (python urllib)"

Log = Callable[[str], None]


class DatasetDownloadError(Exception):
    """A download, verification or extraction that failed or was refused; ``str()`` is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ManualDatasetError(DatasetDownloadError):
    """The dataset has no public archive: ``spec.manual`` says where to get it, ``spec.layout`` where to put it."""

    def __init__(self, spec: "DatasetSpec"):
        self.spec = spec
        super().__init__(f"{spec.name}: no single public archive to download; get it as described above, then run "
                         f"`most-eval data verify {spec.name} --root DIR`")


class _Retry(Exception):
    """A transient failure (dropped connection, timeout, 5xx): the download loop waits and tries again."""


# ---------------------------------------------------------------------------------------------------------------------
# Manifest


@dataclass(frozen=True)
class Archive:
    """One downloadable archive of a dataset."""

    url: str
    file: str  # name under ROOT/archives/
    extracts_to: str  # folder (relative, POSIX) the archive must contain; moved to ROOT/<extracts_to>
    size: int | None = None  # bytes; None = unknown (then only the digest can catch a truncated file)
    md5: str | None = None
    sha256: str | None = None  # None = not published by the source; md5 is checked instead
    max_extract_bytes: int | None = None  # cap on the total uncompressed size; None = EXTRACT_CAP_FACTOR x size

    @property
    def digest_name(self) -> str:
        """What verification checks, in words."""
        if self.sha256:
            return "sha256" + (" + md5" if self.md5 else "")
        if self.md5:
            return "md5 (sha256 unknown)"
        return "size only (no digest known)"


@dataclass(frozen=True)
class Check:
    """One verification of an extracted tree; paths are relative to ROOT and may contain glob patterns."""

    kind: str  # "glob" | "lines" | "any_of" | "librispeech_split"
    target: tuple[str, ...]
    count: int | None = None  # exact expected number (files, lines, utterances); None = at least one
    approx: int | None = None  # an unconfirmed expected number: reported, never enforced
    what: str = ""  # what is counted, for the report
    header: bool = False  # "lines": the first line is a header and not counted
    optional: bool = False  # absence is a note, not a failure


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset of the manifest."""

    name: str
    description: str
    folder: str  # the folder under ROOT the tasks read (may be a glob: "cv-corpus-*/en")
    tasks: tuple[str, ...] = ()
    archives: tuple[Archive, ...] = ()
    checks: tuple[Check, ...] = ()
    manual: str | None = None  # where to get it, when there is no archive
    layout: tuple[str, ...] = ()  # what ROOT must hold, one line per path
    #: samples each task lists on the complete official set (known exactly); a run with fewer is not comparable
    official_samples: dict[str, int] = field(default_factory=dict)

    @property
    def downloadable(self) -> bool:
        return bool(self.archives)

    @property
    def download_size(self) -> int | None:
        sizes = [a.size for a in self.archives]
        return sum(sizes) if sizes and None not in sizes else None


_CHECK_KINDS = ("glob", "lines", "any_of", "librispeech_split")
_HEX = {"md5": re.compile(r"^[0-9a-f]{32}$"), "sha256": re.compile(r"^[0-9a-f]{64}$")}


def _relative(path: str, what: str) -> str:
    """A manifest path: relative, POSIX, without ``..``; else an error."""
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts or "\\" in path:
        raise DatasetDownloadError(f"manifest: {what} {path!r} must be a relative path without '..'")
    return str(p)


def _archive(name: str, raw: dict) -> Archive:
    where = f"dataset {name} archive"
    for key in ("url", "file", "extracts_to"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise DatasetDownloadError(f"manifest: {where} lacks '{key}'")
    if not raw["url"].startswith(("https://", "http://")):
        raise DatasetDownloadError(f"manifest: {where} url {raw['url']!r} is not http(s)")
    if "/" in raw["file"] or "\\" in raw["file"] or raw["file"] in (".", ".."):
        raise DatasetDownloadError(f"manifest: {where} file {raw['file']!r} must be a plain file name")
    digests = {}
    for key in ("md5", "sha256"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not _HEX[key].match(value.lower())):
            raise DatasetDownloadError(f"manifest: {where} {key} {value!r} is not a {key} hex digest")
        digests[key] = value.lower() if value else None
    for key in ("size", "max_extract_bytes"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise DatasetDownloadError(f"manifest: {where} {key} {value!r} is not a byte count")
    return Archive(url=raw["url"], file=raw["file"], extracts_to=_relative(raw["extracts_to"], f"{where} extracts_to"),
                   size=raw.get("size"), max_extract_bytes=raw.get("max_extract_bytes"), **digests)


def _check(name: str, raw: dict) -> Check:
    kinds = [k for k in _CHECK_KINDS if k in raw]
    if len(kinds) != 1:
        raise DatasetDownloadError(f"manifest: dataset {name}: each check needs exactly one of "
                                   f"{', '.join(_CHECK_KINDS)}")
    kind = kinds[0]
    target = raw[kind] if isinstance(raw[kind], list) else [raw[kind]]
    return Check(kind=kind, target=tuple(_relative(t, f"dataset {name} check") for t in target),
                 count=raw.get("count"), approx=raw.get("approx"), what=raw.get("what", ""),
                 header=bool(raw.get("header", False)), optional=bool(raw.get("optional", False)))


def _spec(name: str, raw: dict) -> DatasetSpec:
    if not isinstance(raw, dict) or not isinstance(raw.get("folder"), str):
        raise DatasetDownloadError(f"manifest: dataset {name} needs a 'folder'")
    archives = tuple(_archive(name, a) for a in raw.get("archives") or ())
    if not archives and not raw.get("manual"):
        raise DatasetDownloadError(f"manifest: dataset {name} has neither archives nor 'manual' instructions")
    official = raw.get("official_samples") or {}
    if not isinstance(official, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                 for v in official.values()):
        raise DatasetDownloadError(f"manifest: dataset {name} official_samples must map task names to counts")
    return DatasetSpec(name=name, description=raw.get("description", ""), folder=_relative(raw["folder"], "folder"),
                       tasks=tuple(raw.get("tasks") or ()), archives=archives,
                       checks=tuple(_check(name, c) for c in raw.get("checks") or ()),
                       manual=raw.get("manual"), layout=tuple(raw.get("layout") or ()), official_samples=official)


def manifest_path(manifest: str | os.PathLike | None = None) -> Path:
    """The manifest in use: the argument, else ``$MOST_EVAL_DATA_MANIFEST``, else the bundled one."""
    return Path(manifest or os.environ.get(MANIFEST_ENV) or DEFAULT_MANIFEST).expanduser()


def load_manifest(manifest: str | os.PathLike | None = None) -> dict[str, DatasetSpec]:
    """Datasets of a manifest (JSON, or YAML when the file ends in .yaml/.yml), by name."""
    path = manifest_path(manifest)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetDownloadError(f"{path}: cannot read the dataset manifest ({exc.strerror or exc})") from exc
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise DatasetDownloadError(f"{path}: not a valid dataset manifest ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), dict):
        raise DatasetDownloadError(f"{path}: a dataset manifest needs a top-level 'datasets' mapping")
    return {name: _spec(name, raw) for name, raw in data["datasets"].items()}


def official_sample_count(task: str, manifest: str | os.PathLike | None = None) -> int | None:
    """How many samples ``task`` lists on its complete official test set, or None when not known exactly."""
    for spec in load_manifest(manifest).values():
        if task in spec.official_samples:
            return spec.official_samples[task]
    return None


def get_dataset(name: str, manifest: str | os.PathLike | None = None) -> DatasetSpec:
    """One dataset by name; an unknown name lists the close matches."""
    specs = load_manifest(manifest)
    if name in specs:
        return specs[name]
    close = difflib.get_close_matches(name, list(specs), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(specs))}"
    raise DatasetDownloadError(f"unknown dataset {name!r}; {hint}")


def instructions(spec: DatasetSpec, root: str | os.PathLike | None = None) -> str:
    """Where to get a dataset without an archive and which layout ``--data-root`` expects (several lines)."""
    base = f"{root}/" if root else "<root>/"
    lines = [f"{spec.name}: {spec.description}", "", "Where to get it:", f"  {spec.manual or '(see the description)'}",
             "", f"Expected layout under {base}:"]
    lines += [f"  {base}{line}" for line in spec.layout] or [f"  {base}{spec.folder}/"]
    if spec.tasks:
        lines += ["", f"Used by: {', '.join(spec.tasks)} (pass --data-root {root or '<root>'})"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# Download


class _Bar:
    """A rich download bar, or nothing when disabled."""

    def __init__(self, enabled: bool, label: str, total: int | None):
        self.progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                       TransferSpeedColumn)

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                     TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
        self.label, self.total = label, total

    def __enter__(self) -> "_Bar":
        if self.progress:
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=self.total)
        return self

    def __exit__(self, *exc) -> None:
        if self.progress:
            self.progress.stop()

    def set(self, completed: int, total: int | None = None) -> None:
        if self.progress:
            self.progress.update(self.task, completed=completed, **({"total": total} if total else {}))

    def advance(self, n: int) -> None:
        if self.progress:
            self.progress.advance(self.task, n)


def _content_range_start(value: str | None) -> int | None:
    """``bytes START-END/TOTAL`` -> START."""
    m = re.match(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*$", value or "")
    return int(m.group(1)) if m else None


def _fetch_once(archive: Archive, part: Path, have: int, timeout: float, bar: _Bar, log: Log) -> None:
    """One HTTP request continuing ``part`` from byte ``have``; returns when the body is complete, else raises."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(archive.url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # our partial file is not a prefix the server can continue: start over
            part.unlink(missing_ok=True)
            raise _Retry(f"HTTP 416 for a resume at byte {have}; restarting") from exc
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from exc
        raise DatasetDownloadError(f"{archive.url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, socket.gaierror):  # no such host / no network: retrying will not help
            raise DatasetDownloadError(f"{archive.url}: cannot resolve the host ({reason}); offline?") from exc
        raise _Retry(str(reason)) from exc

    with response:
        status = response.status
        if status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != have:
                part.unlink(missing_ok=True)
                raise _Retry(f"server resumed at byte {start} instead of {have}; restarting")
            mode = "ab" if have else "wb"
        elif status == 200:
            if have:
                log(f"{archive.file}: the server ignored the Range request; restarting from byte 0")
                have = 0
            mode = "wb"
        else:
            raise DatasetDownloadError(f"{archive.url}: unexpected HTTP status {status}")
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if archive.size is not None and length is not None and have + length != archive.size:
            raise DatasetDownloadError(f"{archive.url}: the server announces {have + length} bytes, the manifest "
                                       f"expects {archive.size} (a changed file or a wrong URL)")
        bar.set(have, archive.size or (have + length if length is not None else None))
        got = 0
        with open(part, mode) as out:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (http.client.HTTPException, OSError) as exc:  # IncompleteRead, reset, socket timeout
                    raise _Retry(f"connection dropped after {have + got} bytes ({exc.__class__.__name__})") from exc
                if not chunk:
                    break
                out.write(chunk)
                got += len(chunk)
                bar.advance(len(chunk))
                if archive.size is not None and have + got > archive.size:
                    break
        if length is not None and got < length:
            raise _Retry(f"connection closed after {have + got} of {have + length} bytes")


def download_archive(archive: Archive, dest_dir: str | os.PathLike, *, retries: int = DEFAULT_RETRIES,
                     backoff: float = DEFAULT_BACKOFF, timeout: float = DEFAULT_TIMEOUT, progress: bool = True,
                     log: Log | None = None) -> Path:
    """Download ``archive`` into ``dest_dir`` (resuming ``<file>.part``), verify size and digest, return the file.

    An already complete, verified file is returned without a request. A file that fails verification is removed,
    so the next run downloads it again.
    """
    log = log or (lambda message: None)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / archive.file
    part = dest_dir / f"{archive.file}.part"
    if final.is_file():
        try:
            verify_archive(final, archive)
            return final
        except DatasetDownloadError as exc:
            log(f"{final}: {exc}; downloading it again")
            final.unlink()

    failures, best = 0, -1
    with _Bar(progress, archive.file, archive.size) as bar:
        while True:
            have = part.stat().st_size if part.exists() else 0
            if archive.size is not None and have > archive.size:
                part.unlink()
                have = 0
            if archive.size is not None and have == archive.size:
                break
            try:
                _fetch_once(archive, part, have, timeout, bar, log)
                if archive.size is None or part.stat().st_size == archive.size:
                    break
                raise _Retry(f"got {part.stat().st_size} of {archive.size} bytes")
            except _Retry as exc:
                now = part.stat().st_size if part.exists() else 0
                if now > best:  # progress: the retry budget refills
                    best, failures = now, 0
                failures += 1
                if failures > retries:
                    raise DatasetDownloadError(f"{archive.url}: giving up after {retries} retries: {exc} "
                                               f"(rerun to resume from byte {now})") from exc
                wait = min(MAX_BACKOFF, backoff * 2 ** (failures - 1))
                log(f"{archive.file}: {exc}; retry {failures}/{retries} in {wait:.1f} s")
                time.sleep(wait)
    try:
        verify_archive(part, archive)
    except DatasetDownloadError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, final)
    return final


def verify_archive(path: str | os.PathLike, archive: Archive) -> str:
    """Check an archive's size and digests (sha256 where known, else md5); returns what was checked, in words."""
    path = Path(path)
    label = archive.file
    size = path.stat().st_size
    if archive.size is not None and size != archive.size:
        raise DatasetDownloadError(f"{label}: {size} bytes, expected {archive.size}")
    hashes = {k: hashlib.new(k) for k in ("sha256", "md5") if getattr(archive, k)}
    if hashes:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                for h in hashes.values():
                    h.update(chunk)
    for key, h in hashes.items():
        if h.hexdigest() != getattr(archive, key):
            raise DatasetDownloadError(f"{label}: {key} {h.hexdigest()} does not match the manifest's "
                                       f"{getattr(archive, key)}")
    return archive.digest_name


# ---------------------------------------------------------------------------------------------------------------------
# Safe extraction


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


# ---------------------------------------------------------------------------------------------------------------------
# Verification of an extracted tree


@dataclass
class CheckResult:
    """One line of a verification report."""

    ok: bool
    message: str
    note: bool = False  # informational only (an unconfirmed count, an absent optional file)


@dataclass
class VerifyReport:
    """What ``verify`` found for one dataset under one root."""

    name: str
    root: Path
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failures(self) -> list[str]:
        return [r.message for r in self.results if not r.ok]

    def add(self, ok: bool, message: str, note: bool = False) -> None:
        self.results.append(CheckResult(ok, message, note))


def _expected(check: Check) -> str:
    if check.count is not None:
        return f"expected {check.count}"
    if check.approx is not None:
        return f"about {check.approx} expected, unconfirmed count"
    return "expected at least 1"


def _count_ok(check: Check, found: int) -> bool:
    return found == check.count if check.count is not None else found >= 1


def _nonempty_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _librispeech_split(folder: Path) -> tuple[set[str], set[str]]:
    """(utterance ids listed in ``*.trans.txt``, stems of ``*.flac``) of a LibriSpeech split folder."""
    listed: set[str] = set()
    for trans in folder.glob("*/*/*.trans.txt"):
        with open(trans, "rb") as f:
            listed |= {line.split(None, 1)[0].decode("ascii", "replace") for line in f if line.strip()}
    return listed, {p.stem for p in folder.glob("*/*/*.flac")}


def _run_check(check: Check, root: Path, report: VerifyReport) -> None:
    what = f" {check.what}" if check.what else ""
    if check.kind == "glob":
        pattern = check.target[0]
        found = len(list(root.glob(pattern)))
        if found == 0 and check.optional:
            report.add(True, f"{pattern}: absent (optional)", note=True)
            return
        report.add(_count_ok(check, found), f"{pattern}: {found}{what} ({_expected(check)})",
                   note=check.count is None and check.approx is not None)
    elif check.kind == "any_of":
        present = [t for t in check.target if any(root.glob(t))]
        report.add(bool(present), f"{' or '.join(check.target)}: "
                                  f"{'found ' + ', '.join(present) if present else 'none found'}")
    elif check.kind == "lines":
        files = sorted(root.glob(check.target[0]))
        if not files:
            report.add(check.optional, f"{check.target[0]}: {'absent (optional)' if check.optional else 'not found'}",
                       note=check.optional)
        for path in files:
            found = max(0, _nonempty_lines(path) - (1 if check.header else 0))
            report.add(_count_ok(check, found), f"{path.relative_to(root)}: {found}{what or ' lines'} "
                                                f"({_expected(check)})",
                       note=check.count is None and check.approx is not None)
    elif check.kind == "librispeech_split":
        folder = root / check.target[0]
        if not folder.is_dir():
            report.add(False, f"{check.target[0]}: folder not found")
            return
        listed, audio = _librispeech_split(folder)
        no_audio, no_text = len(listed - audio), len(audio - listed)
        ok = not no_audio and not no_text and _count_ok(check, len(listed))
        report.add(ok, f"{check.target[0]}: {len(listed)} transcript lines, {len(audio)} flac, {no_audio} lines "
                       f"without audio, {no_text} flac without a transcript line ({_expected(check)} utterances)")


def verify_tree(spec: DatasetSpec, root: str | os.PathLike, *, under: str | None = None,
                report: VerifyReport | None = None) -> VerifyReport:
    """Run the dataset's checks on ``root`` (only those whose path lies under ``under``, when given)."""
    root = Path(root)
    report = report or VerifyReport(spec.name, root)
    for check in spec.checks:
        if under is None or all(t == under or t.startswith(under.rstrip("/") + "/") for t in check.target):
            _run_check(check, root, report)
    return report


def verify_dataset(name: str | DatasetSpec, root: str | os.PathLike, *, manifest: str | os.PathLike | None = None,
                   check_archives: bool = True) -> VerifyReport:
    """Check a dataset under ``root``: its folder, the manifest's checks, and any downloaded archive's digest."""
    spec = name if isinstance(name, DatasetSpec) else get_dataset(name, manifest)
    root = Path(root).expanduser()
    report = VerifyReport(spec.name, root)
    folders = [p for p in root.glob(spec.folder) if p.is_dir()]
    report.add(bool(folders), f"{spec.folder}/: {'found' if folders else 'folder not found'} under {root}")
    if folders:
        verify_tree(spec, root, report=report)
    if check_archives:
        for archive in spec.archives:
            path, part = root / ARCHIVES_DIR / archive.file, root / ARCHIVES_DIR / f"{archive.file}.part"
            if path.is_file():
                try:
                    report.add(True, f"{ARCHIVES_DIR}/{archive.file}: size and {verify_archive(path, archive)} match")
                except DatasetDownloadError as exc:
                    report.add(False, f"{ARCHIVES_DIR}/{exc}")
            elif part.is_file():
                report.add(True, f"{ARCHIVES_DIR}/{part.name}: partial download ({part.stat().st_size} of "
                                 f"{archive.size or '?'} bytes); `download` resumes it", note=True)
            else:
                report.add(True, f"{ARCHIVES_DIR}/{archive.file}: not present (not needed once extracted)", note=True)
    return report


# ---------------------------------------------------------------------------------------------------------------------
# The whole download


@dataclass
class DownloadResult:
    """What ``download_dataset`` did."""

    name: str
    folder: Path
    archives: list[tuple[Path, str]] = field(default_factory=list)  # (archive, what was checked)
    already_present: bool = False


def download_dataset(name: str | DatasetSpec, root: str | os.PathLike, *, manifest: str | os.PathLike | None = None,
                     force: bool = False, keep_archives: bool = True, retries: int = DEFAULT_RETRIES,
                     backoff: float = DEFAULT_BACKOFF, timeout: float = DEFAULT_TIMEOUT,
                     max_extract_bytes: int | None = None, progress: bool = True,
                     log: Log | None = None) -> DownloadResult:
    """Download, verify and extract a dataset under ``root``; :class:`ManualDatasetError` when it has no archive.

    A dataset already in place that passes its checks is left alone (``force`` downloads and replaces it). A folder
    in place that fails its checks is an error unless ``force``.
    """
    log = log or (lambda message: None)
    spec = name if isinstance(name, DatasetSpec) else get_dataset(name, manifest)
    if not spec.downloadable:
        raise ManualDatasetError(spec)
    root = Path(root).expanduser()
    result = DownloadResult(spec.name, root / spec.folder)
    if not force and all((root / a.extracts_to).exists() for a in spec.archives):
        report = verify_dataset(spec, root, check_archives=False)
        if report.ok:
            result.already_present = True
            return result
        raise DatasetDownloadError(f"{root / spec.folder} exists but fails verification ({report.failures[0]}); "
                                   f"rerun with --force to download and replace it")
    root.mkdir(parents=True, exist_ok=True)
    for archive in spec.archives:
        path = download_archive(archive, root / ARCHIVES_DIR, retries=retries, backoff=backoff, timeout=timeout,
                                progress=progress, log=log)
        result.archives.append((path, archive.digest_name))

        def check(tmp_root: Path, archive: Archive = archive) -> None:
            report = verify_tree(spec, tmp_root, under=archive.extracts_to)
            if not report.ok:
                raise DatasetDownloadError(f"{archive.file}: extracted tree fails verification "
                                           f"({report.failures[0]}); nothing was moved into {root}")

        safe_extract(path, root, archive.extracts_to, max_bytes=max_extract_bytes or archive.max_extract_bytes,
                     replace=True, check=check)
        if not keep_archives:
            path.unlink()
    return result


def dataset_status(spec: DatasetSpec, root: str | os.PathLike) -> str:
    """A one-word status for ``list --root``: present / partial / missing."""
    root = Path(root).expanduser()
    if any(p.is_dir() for p in root.glob(spec.folder)):
        return "present"
    if any((root / ARCHIVES_DIR / name).exists() for a in spec.archives for name in (a.file, f"{a.file}.part")):
        return "downloaded" if any((root / ARCHIVES_DIR / a.file).exists() for a in spec.archives) else "partial"
    return "missing"


def human_size(n: int | None) -> str:
    """Bytes as a short string (decimal units, like the OpenSLR page)."""
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # unreachable


__all__: Iterable[str] = [
    "Archive", "Check", "CheckResult", "DatasetDownloadError", "DatasetSpec", "DownloadResult", "ManualDatasetError",
    "VerifyReport", "dataset_status", "download_archive", "download_dataset", "get_dataset", "instructions",
    "load_manifest", "manifest_path", "safe_extract", "verify_archive", "verify_dataset", "verify_tree",
]
