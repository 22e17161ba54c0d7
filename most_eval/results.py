"""results.json and samples files: atomic writes, provenance (versions, git revision, dataset hashes), the table.

``results.json`` layout (``format_version`` 1)::

    {"format": "most-eval-results", "format_version": 1,
     "model": {"name", "args", "fingerprint"},
     "results": {task: {metric: value, ..., "scored", "listed", "errors"}
                 | {"status": "not supported", "capability": ...}},
     "tasks": {task: {"config", "dataset_sha256", "samples_file"}},
     "seed", "git_revision", "versions", "created", "command"}

WER and accuracy are percentages as papers print them; ``sim`` is a cosine in [-1, 1].
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Iterable

from rich.console import Console
from rich.table import Table

RESULTS_FORMAT = "most-eval-results"
RESULTS_FORMAT_VERSION = 1
TRACKED_PACKAGES = ("most-eval", "torch", "transformers", "accelerate", "lm-eval", "jiwer", "whisper-normalizer",
                    "speechbrain", "soundfile", "soxr", "numpy", "pandas", "pocketsphinx", "resemblyzer")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder, fsync, rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: Path, records: Iterable[dict]) -> None:
    """Atomically write records as JSON lines."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def task_file_name(task: str) -> str:
    """File-system name of a task: ``asr:librispeech-test-clean`` -> ``asr_librispeech-test-clean``."""
    return task.replace(":", "_")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the numbers."""
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_revision() -> str | None:
    """The most-eval source tree's git revision (with ``-dirty`` when modified), or None outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def dataset_sha256(files: Iterable[Path], root: Path, known: dict[str, bytes] | None = None) -> str:
    """One digest over the listed files: each file's path relative to ``root`` and its content's sha256.

    ``known`` holds content digests already computed while the files were read (so they are not read twice).
    """
    known = known or {}
    prefix = str(root).rstrip("/") + "/"
    digest = hashlib.sha256()
    for name in sorted({str(f) for f in files}):  # plain strings: sorting Path objects costs more than hashing
        digest.update((name[len(prefix):] if name.startswith(prefix) else name).encode() + b"\0")
        if name in known:
            digest.update(known[name])
            continue
        try:
            with open(name, "rb") as fh:
                digest.update(hashlib.file_digest(fh, "sha256").digest())
        except OSError:
            digest.update(b"<missing>")
    return digest.hexdigest()


def results_document(model: dict, results: dict, tasks: dict, seed: int, command: str | None = None) -> dict:
    """Assemble the results.json dictionary."""
    return {
        "format": RESULTS_FORMAT,
        "format_version": RESULTS_FORMAT_VERSION,
        "model": model,
        "results": results,
        "tasks": tasks,
        "seed": seed,
        "git_revision": git_revision(),
        "versions": package_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.3f}"
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return f"[{value[0]:.2f}, {value[1]:.2f}]"
    return str(value)


HEADLINE = ("wer", "wer_ci95", "accuracy", "accuracy_in_vocab", "sim", "judge", "judge_rtf", "embedder", "reduction",
            "scorer")


def results_table(document: dict) -> Table:
    """A rich table of the headline metrics and the scored-of-listed counts of each task."""
    table = Table(title=f"most-eval results — model {document['model']['name']}", show_lines=False)
    table.add_column("task", style="bold", no_wrap=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("scored / listed", justify="right")
    for task, res in document["results"].items():
        if res.get("status"):
            why = f"needs {res['capability']}" if res.get("capability") else (res.get("detail") or "")[:60]
            table.add_row(task, res["status"], why, "", style="yellow")
            continue
        counts = f"{res.get('scored', 0)} / {res.get('listed', 0)}"
        style = "red" if res.get("errors") else None
        shown = [k for k in HEADLINE if k in res] or [k for k in res if k not in ("scored", "listed", "errors")]
        for i, key in enumerate(shown):
            table.add_row(task if i == 0 else "", key, _fmt(res[key]), counts if i == 0 else "", style=style)
    return table


def print_results(document: dict, console: Console | None = None) -> None:
    """Print the results table and a one-line summary of errors."""
    console = console or Console()
    console.print(results_table(document))
    scored = sum(r.get("scored", 0) for r in document["results"].values())
    listed = sum(r.get("listed", 0) for r in document["results"].values())
    errors = sum(r.get("errors", 0) for r in document["results"].values())
    console.print(f"scored {scored} of {listed} listed samples; {errors} error record(s)")
