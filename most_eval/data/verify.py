"""Verifying a dataset on disk (``most-eval data verify``): archive sizes and digests, and the catalog's checks of the
extracted tree (file globs, line counts, LibriSpeech's transcript/audio pairing)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from most_eval.data.catalog import ARCHIVES_DIR, Archive, CHUNK, Check, DatasetDownloadError, DatasetSpec, get_dataset


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
