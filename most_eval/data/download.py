"""Downloading a dataset (``most-eval data download``): resumable HTTP fetch with retries, digest check, safe
extraction.

An archive is fetched with :mod:`urllib` into ``ROOT/archives/<file>.part``: a partial file is continued with an
HTTP ``Range`` request; a server that ignores ``Range`` (status 200) restarts the file cleanly; a dropped connection
or a timeout is retried with exponential backoff (the retry budget refills whenever a try made progress). It is
checked against the catalog's size and digests (sha256 where known, else md5) and only then renamed to
``ROOT/archives/<file>``, then extracted by :func:`most_eval.data.extract.safe_extract`."""

from __future__ import annotations

import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from most_eval.data.catalog import (ARCHIVES_DIR, Archive, CHUNK, DatasetDownloadError, DatasetSpec, Log,
                                    ManualDatasetError, get_dataset)
from most_eval.data.extract import safe_extract
from most_eval.data.verify import verify_archive, verify_dataset, verify_tree


DEFAULT_TIMEOUT = 60.0  # seconds without data before a connection counts as dropped
DEFAULT_RETRIES = 5  # consecutive failed tries (without progress) before giving up
DEFAULT_BACKOFF = 2.0  # seconds before the first retry; doubles per consecutive failure
MAX_BACKOFF = 60.0
USER_AGENT = "most-eval dataset download (python urllib)"


class _Retry(Exception):
    """A transient failure (dropped connection, timeout, 5xx): the download loop waits and tries again."""


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
