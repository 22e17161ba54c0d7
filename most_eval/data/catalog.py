"""The dataset catalog: which datasets most-eval knows, their official archives (size, digests) or the manual
instructions and folder layout ``--data-root`` expects, and the checks ``verify`` runs.

The catalog is ``catalog.json`` next to this file (another one through the ``manifest=`` argument or
``$MOST_EVAL_DATA_MANIFEST``). A dataset either has official archives (LibriSpeech test-clean / test-other from
OpenSLR SLR12) or, when no single public archive exists, instructions; ``download`` then raises
:class:`ManualDatasetError`, which carries them. Every failure is a :class:`DatasetDownloadError` whose message is
one line. Downloading, extraction and verification are :mod:`~most_eval.data.download`,
:mod:`~most_eval.data.extract` and :mod:`~most_eval.data.verify`."""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from most_eval.core.errors import MostEvalError

CATALOG_ENV = "MOST_EVAL_DATA_MANIFEST"
DEFAULT_CATALOG = Path(__file__).with_name("catalog.json")
ARCHIVES_DIR = "archives"  # downloaded archives live in ROOT/archives/ (kept so `verify` can check them)
CHUNK = 1 << 20  # bytes per read and per progress update

Log = Callable[[str], None]


class DatasetDownloadError(MostEvalError):
    """A download, verification or extraction that failed or was refused; ``str()`` is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ManualDatasetError(DatasetDownloadError):
    """The dataset has no public archive: ``spec.manual`` says where to get it, ``spec.layout`` where to put it."""

    def __init__(self, spec: "DatasetSpec"):
        self.spec = spec
        super().__init__(f"{spec.name}: no single public archive to download; get it as described above, then run "
                         f"`most-eval data verify {spec.name} --root DIR`")


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
    official_samples_source: str | None = None  # where the official counts were published

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
                       manual=raw.get("manual"), layout=tuple(raw.get("layout") or ()), official_samples=official,
                       official_samples_source=raw.get("official_samples_source"))


def catalog_path(manifest: str | os.PathLike | None = None) -> Path:
    """The manifest in use: the argument, else ``$MOST_EVAL_DATA_MANIFEST``, else the bundled one."""
    return Path(manifest or os.environ.get(CATALOG_ENV) or DEFAULT_CATALOG).expanduser()


def load_catalog(manifest: str | os.PathLike | None = None) -> dict[str, DatasetSpec]:
    """Datasets of a manifest (JSON, or YAML when the file ends in .yaml/.yml), by name."""
    path = catalog_path(manifest)
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
    for spec in load_catalog(manifest).values():
        if task in spec.official_samples:
            return spec.official_samples[task]
    return None


def official_sample_source(task: str, manifest: str | os.PathLike | None = None) -> str | None:
    """Where ``task``'s official sample count was published, as the manifest records it, else None."""
    for spec in load_catalog(manifest).values():
        if task in spec.official_samples:
            return spec.official_samples_source
    return None


def get_dataset(name: str, manifest: str | os.PathLike | None = None) -> DatasetSpec:
    """One dataset by name; an unknown name lists the close matches."""
    specs = load_catalog(manifest)
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
