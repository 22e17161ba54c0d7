"""results.json and samples files: the one writer and reader of the format (atomic writes; provenance: versions,
git revision, dataset hashes; validation on read).

``results.json`` layout (``format_version`` 1)::

    {"format": "most-eval-results", "format_version": 1,
     "model": {"name", "args", "fingerprint"},
     "results": {task: {metric: value, ..., "scored", "listed", "errors", "reused", "seconds"[, "first_error",
                        "warnings"]}
                 | {"status": "not supported" | "dataset error", "capability" | "detail"}
                 | {"status": "scoring error", "detail", "scored": 0, "listed", "errors", ...}},
     "tasks": {task: {"config", "dataset_sha256", "samples_file", "created",
                      "leaderboard": {"table", "column"[, "row_task"]} | null}},  (the task's declared paper cell)
     "comparability": {task: {"paper_comparable", "reasons", "notes"}},  (see most_eval.scoring.comparability)
     "efficiency": {task: {"wall_seconds", "samples_per_second", "audio_seconds", "rtf", "peak_rss_mb", ...}},
     "seed", "limit", "data_root", "git_revision", "versions", "created", "command"[, "seeds"]}

A task run over several seeds (``--seeds``) has the mean over seeds as each headline metric, with
``<metric>_std``, ``<metric>_seeds_ci95``, ``seeds`` and ``per_seed`` (:mod:`most_eval.results.seeds`): ``listed``
counts its samples, ``scored`` those scored in every seed, ``errors`` the error records of all seeds, and each
samples-file record carries its ``seed``. A task whose model is
deterministic ran once and says so in ``seeds_identical``.

Re-running a subset of tasks into the same output merges by task (:func:`merge_previous`). This module is the one
definition of the format: it writes the document (:func:`results_document`, :func:`leaderboard_record`) and reads it
back validated (:func:`load_results`, :func:`leaderboard_slot`) for the leaderboard, ``compare`` and ``check``.

WER and accuracy are percentages as papers print them; ``sim`` is a cosine in [-1, 1].
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Iterable


from most_eval.core.task import LeaderboardSlot, task_file_name
from most_eval.core.errors import MostEvalError
from most_eval.results.fields import range_problem

if TYPE_CHECKING:
    from most_eval.core.fingerprints import ContentDigests

RESULTS_FORMAT = "most-eval-results"
RESULTS_FORMAT_VERSION = 1  # the version written
RESULTS_FORMAT_VERSIONS = (1,)  # the versions read
TRACKED_PACKAGES = ("most-eval", "torch", "transformers", "accelerate", "lm-eval", "jiwer", "whisper-normalizer",
                    "speechbrain", "soundfile", "soxr", "numpy", "pandas", "pocketsphinx", "resemblyzer",
                    "speechmos", "onnxruntime")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, rename: readers never see half a file.
    The file gets the mode any new file gets under the umask (``mkstemp`` alone would leave it private, 600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (read by setting it and setting it back, the only way POSIX offers)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_jsonl(path: Path, records: Iterable[dict]) -> None:
    """Atomically write records as JSON lines."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


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


def dataset_sha256(files: Iterable[Path], root: Path, digests: "ContentDigests | None" = None) -> str:
    """One digest over the listed files: each file's path relative to ``root`` (its name alone when it lies
    elsewhere, e.g. parquet shards given as ``source=``, so the digest does not depend on where they sit) and its
    content's sha256.

    ``digests`` memoises content digests (the runner's, so files already hashed for the input keys are not read
    again); a missing or unreadable file contributes a digest of that condition.
    """
    from most_eval.core.fingerprints import ContentDigests

    digests = digests or ContentDigests()
    prefix = str(root).rstrip("/") + "/"
    digest = hashlib.sha256()
    for name in sorted({str(f) for f in files}):  # plain strings: sorting Path objects costs more than hashing
        digest.update((name[len(prefix):] if name.startswith(prefix) else os.path.basename(name)).encode() + b"\0")
        digest.update(digests.digest(name))
    return digest.hexdigest()


def _reason_kind(reason: str) -> str:
    """An error reason with its file paths and numbers blanked, so reasons of one cause group together."""
    return re.sub(r"\d+", "N", re.sub(r"\S*[/\\]\S*", "<path>", reason))


def error_summary(error_records: list[dict]) -> dict | None:
    """The first error reason of a task and how many error records share its cause (paths and numbers aside)."""
    if not error_records:
        return None
    first = str(error_records[0].get("error", ""))
    kind = _reason_kind(first)
    alike = sum(1 for r in error_records if _reason_kind(str(r.get("error", ""))) == kind)
    return {"reason": first, "alike": alike}


def results_document(model: dict, results: dict, tasks: dict, seed: int, command: str | None = None, *,
                     limit: int | None = None, data_root: str | None = None,
                     comparability: dict | None = None, efficiency: dict | None = None,
                     run_name: str | None = None, seeds: list[int] | None = None) -> dict:
    """Assemble the results.json dictionary; every task gets its own ``created`` time in ``tasks``. ``run_name``
    names the run in leaderboards and comparisons (``--name``, else the output folder's name); ``seeds`` the
    ``--seeds`` of a run of several (recorded only then)."""
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    tasks = {name: {**tasks.get(name, {}), "created": created} for name in results}
    document = {
        "format": RESULTS_FORMAT,
        "format_version": RESULTS_FORMAT_VERSION,
        "run_name": run_name,
        "model": model,
        "results": results,
        "tasks": tasks,
        "comparability": comparability or {},
        "efficiency": efficiency or {},
        "seed": seed,
        "limit": limit,
        "data_root": data_root,
        "git_revision": git_revision(),
        "versions": package_versions(),
        "created": created,
        "command": command,
    }
    if seeds and len(seeds) > 1:
        document["seeds"] = list(seeds)
    return document


def leaderboard_record(slot: LeaderboardSlot | None) -> dict | None:
    """A task's declared paper cell as results.json records it in ``tasks[task]["leaderboard"]`` (None: the task has
    no column in the paper's tables), so the leaderboard places the number without importing task classes."""
    if slot is None:
        return None
    record = {"table": slot.table, "column": slot.column}
    if slot.row_task is not None:
        record["row_task"] = slot.row_task
    return record


def leaderboard_slot(document: dict, task: str) -> LeaderboardSlot | None:
    """The paper cell a results document recorded for ``task`` (as validated by :func:`load_results`), or None when it
    recorded none (a task without a paper column, or a file written before tasks declared theirs)."""
    record = ((document.get("tasks") or {}).get(task) or {}).get("leaderboard")
    if not isinstance(record, dict):
        return None
    return LeaderboardSlot(record["table"], record["column"], record.get("row_task"))


class ResultsFileError(MostEvalError, ValueError):
    """A results file that cannot be used. ``str(err)`` is one line: ``<path>: <reason>``."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = " ".join(str(reason).split())  # one line, whatever the underlying error printed
        super().__init__(f"{self.path}: {self.reason}")


def load_results(path: str | Path) -> dict:
    """Read and validate a ``results.json``; raise :class:`ResultsFileError` (one line naming the file) if it is
    unreadable, truncated, not JSON, not a most-eval results file of a supported version, or malformed in a part
    its readers use (``model.name``, ``results``, ``tasks`` and their leaderboard cells)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ResultsFileError(path, f"cannot read file ({type(err).__name__}: {err})") from None
    if not text.strip():
        raise ResultsFileError(path, "empty file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        stripped = text.rstrip()
        # A file cut short (interrupted write, partial copy) ends before its top-level value closes.
        truncated = err.pos >= len(stripped) - 1 or (stripped.lstrip()[:1] in "{[" and stripped[-1:] not in "}]")
        hint = "truncated JSON" if truncated else "invalid JSON"
        raise ResultsFileError(path, f"{hint}: {err.msg} (line {err.lineno}, column {err.colno})") from None
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ResultsFileError(
            path, f"not a most-eval results file (expected format {RESULTS_FORMAT!r}, found {found!r})")
    if data.get("format_version") not in RESULTS_FORMAT_VERSIONS:
        raise ResultsFileError(
            path,
            f"unsupported format_version {data.get('format_version')!r} (supported: {list(RESULTS_FORMAT_VERSIONS)})")
    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not model["name"]:
        raise ResultsFileError(path, "missing model.name")
    if not isinstance(data.get("results"), dict):
        raise ResultsFileError(path, "missing or malformed 'results' object")
    for task in [*data["results"], *(data.get("tasks") or {} if isinstance(data.get("tasks"), dict) else {})]:
        if any(ord(c) < 32 or ord(c) == 127 for c in task):  # a newline would break every table row it names
            raise ResultsFileError(path, f"task name {task!r} contains a control character")
    for task, entry in data["results"].items():
        if not isinstance(entry, dict):
            raise ResultsFileError(path, f"results[{task!r}] is not an object")
        for field, value in entry.items():  # an impossible number is refused here, for every reader
            problem = range_problem(field, value)
            if problem:
                raise ResultsFileError(path, f"results[{task!r}].{field} {problem}")
    if "tasks" in data and not isinstance(data["tasks"], dict):
        raise ResultsFileError(path, "malformed 'tasks' object")
    for task, info in (data.get("tasks") or {}).items():
        cell = info.get("leaderboard") if isinstance(info, dict) else None
        if cell is not None and not (isinstance(cell, dict) and all(isinstance(cell.get(k), str) and cell[k]
                                                                    for k in ("table", "column"))
                                     and isinstance(cell.get("row_task", ""), str)):
            raise ResultsFileError(path, f"tasks[{task!r}].leaderboard is not a {{table, column[, row_task]}} object")
    return data


#: what two runs must share for results.json to merge their tasks (else the newer file replaces the older)
MERGE_KEYS = ("seed", "limit", "data_root", "git_revision", "versions")


def merge_previous(document: dict, output_dir: Path) -> dict:
    """``document`` plus the tasks of an earlier ``results.json`` in ``output_dir`` that this run did not run, when
    that file is of the same model fingerprint, seed, ``--seeds``, limit, data root, git revision and package
    versions; else
    ``document`` alone, and the samples
    files of tasks it does not list are removed (the samples files always match results.json)."""
    output_dir = Path(output_dir)
    try:  # read and validated by the one reader; an unusable earlier file is replaced, not merged
        previous = load_results(output_dir / "results.json") if (output_dir / "results.json").exists() else None
    except ResultsFileError:
        previous = None
    same = previous is not None \
        and (previous.get("model") or {}).get("fingerprint") == document["model"]["fingerprint"] \
        and all(k in previous and previous[k] == document.get(k) for k in MERGE_KEYS) \
        and previous.get("seeds") == document.get("seeds")
    if same:
        kept = {t: r for t, r in previous["results"].items() if t not in document["results"]}
        document["results"] = {**kept, **document["results"]}
        document["tasks"] = {**{t: i for t, i in (previous.get("tasks") or {}).items() if t in kept},
                             **document["tasks"]}
        for block in ("comparability", "efficiency"):
            old = previous.get(block) if isinstance(previous.get(block), dict) else {}
            document[block] = {**{t: c for t, c in old.items() if t in kept}, **document.get(block, {})}
    listed = {task_file_name(t) + ".jsonl" for t, r in document["results"].items() if not _no_samples(r)}
    for path in (output_dir / "samples").glob("*.jsonl") if (output_dir / "samples").is_dir() else ():
        if path.name not in listed:
            path.unlink(missing_ok=True)
    return document


def _no_samples(result: dict) -> bool:
    """Tasks that list nothing (not supported, dataset error) have no samples file."""
    return result.get("status") in ("not supported", "dataset error")


