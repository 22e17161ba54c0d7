"""The evaluation loop: samples -> length-bucketed batches -> model -> per-sample records -> metrics -> results.json.

Per task: read the samples, skip those already in the cache (resume), sort the rest by length and cut them into
batches, load each batch's audio once at the model's sample rate, call the model, score, append the records to the
cache, show progress. A sample that fails (unreadable audio, reader error, model failure) becomes an error record
naming the file and the reason; the run goes on. Finally the task aggregates its items and the run writes
``samples/<task>.jsonl``, the task's side files (:meth:`Task.side_files`) and ``results.json`` atomically.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn
from rich.text import Text

from most_eval.core.adapter import Model, Prepared, SampleFailure
from most_eval.core.audio import Audio, AudioError, load_audio
from most_eval.scoring.comparability import assess
from most_eval.run.cache import STAMP, CacheStats, SampleCache, read_records
from most_eval.data.files import output_path
from most_eval.run.distributed import Dist
from most_eval.results.efficiency import TaskMeter
from most_eval.core.fingerprints import ContentDigests
from most_eval.results.store import (atomic_write_bytes, atomic_write_text, dataset_sha256, error_summary, leaderboard_record, merge_previous,
                               results_document, task_file_name, write_jsonl)
from most_eval.core.task import Sample, Task
from most_eval.core.errors import DatasetError


class SamplesPerSecond(ProgressColumn):
    """Progress column: samples per second of this task."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} samples/s" if speed else "", style="cyan")


@dataclass
class TaskOutcome:
    """What running one task produced."""

    metrics: dict
    items: list[dict]
    error_records: list[dict]
    listed: int
    dataset_sha256: str | None = None
    warnings: list[str] = field(default_factory=list)  # problems of the model's outputs beyond single samples
    status: str | None = None  # "not supported" / "dataset error" when the task could not run
    capability: str | None = None
    detail: str | None = None
    reused: int = 0  # records taken from the cache instead of running the model
    #: the task's side files (:meth:`Task.side_files`) under the output folder: content, or None to remove
    side_files: dict[Path, str | bytes | None] = field(default_factory=dict)


@dataclass
class RunOutcome:
    """The whole run: the results document plus counts the CLI uses for its exit code."""

    document: dict
    errors: int = 0
    unsupported: list[str] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (when a model has imported it; importing it here would cost a second)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def error_record(sample_id: str, reason: str) -> dict:
    """The record of a sample that could not be scored."""
    return {"id": sample_id, "error": reason}


def prepare(model: Model, task_name: str, samples: Sequence[Sample]) -> tuple[list[Sample], list[Prepared], list[dict]]:
    """Load each sample's audio at the model's rate; failures become error records."""
    ready, prepared, errors = [], [], []
    for sample in samples:
        req = sample.request
        try:
            audio = load_audio(req.audio, model.sample_rate) if (req.audio and model.needs_audio) else None
            prompt = load_audio(req.prompt, model.sample_rate) if (req.prompt and model.needs_audio) else None
        except AudioError as exc:
            errors.append(error_record(sample.id, str(exc)))
            continue
        ready.append(sample)
        prepared.append(Prepared(task=task_name, id=sample.id, request=req, audio=audio, prompt=prompt))
    return ready, prepared, errors


def process_batch(model: Model, task: Task, samples: list[Sample], meter: TaskMeter | None = None) -> list[dict]:
    """Records (successes and error records) for one batch; the model's time and audio go to ``meter``."""
    ready, prepared, records = prepare(model, task.name, samples)
    if not prepared:
        return records
    started = time.perf_counter()
    try:
        outputs = list(task.predict(model, prepared))
        if meter is not None:  # audio consumed (inputs) or produced (speech outputs)
            audio = sum(p.audio.duration for p in prepared if p.audio is not None)
            audio += sum(o.duration for o in outputs if isinstance(o, Audio))
            meter.model_call(time.perf_counter() - started, len(prepared), audio)
    except Exception as exc:  # a model failure fails this batch's samples, not the run
        reason = f"model error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return records + [error_record(s.id, reason) for s in ready]
    if len(outputs) != len(ready):
        reason = f"model returned {len(outputs)} outputs for {len(ready)} inputs"
        return records + [error_record(s.id, reason) for s in ready]
    ok_samples, ok_outputs = [], []
    for sample, output in zip(ready, outputs):
        if isinstance(output, SampleFailure):
            records.append(error_record(sample.id, output.reason))
        else:
            ok_samples.append(sample)
            ok_outputs.append(output)
    if ok_samples:
        try:
            records.extend(task.score(ok_samples, ok_outputs))
        except Exception as exc:
            reason = f"scoring error: {type(exc).__name__}: {exc}"
            records.extend(error_record(s.id, reason) for s in ok_samples)
    return records


def input_key(sample: Sample, digests: ContentDigests) -> str:
    """Digest of what a sample's record depends on besides the model and task config: its request, its reference
    and the *content* of its input files. A cached record is reused only when this still matches (a changed
    transcript, or audio replaced at an unchanged path, runs the sample again)."""
    request = sample.request
    inputs = [p for p in (request.audio, request.prompt) if p] if request else []
    if request and not inputs:  # no audio (text tasks): the sample's own files are its input
        inputs = list(sample.files)
    contents = [digests.digest(p).hex() for p in inputs]
    blob = json.dumps([sample.reference, repr(request), contents], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def split_duplicates(samples: list[Sample]) -> tuple[list[Sample], list[dict]]:
    """The first sample of each id, and an error record for every later one (an id is scored once)."""
    seen, unique, errors = set(), [], []
    for s in samples:
        if s.id in seen:
            errors.append(error_record(s.id, f"sample id {s.id} listed more than once "
                                             f"({', '.join(str(f) for f in s.files[:1]) or 'dataset'}); scored once"))
        else:
            seen.add(s.id)
            unique.append(s)
    return unique, errors


def length_buckets(samples: list[Sample], batch_size: int) -> list[list[Sample]]:
    """Batches of similar length (longest first, so memory trouble shows at once)."""
    ordered = sorted(samples, key=lambda s: s.length, reverse=True)
    return [ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size)]


def limit_samples(task: Task, samples: list[Sample], limit: int) -> list[Sample]:
    """``--limit N``: every sample of the first N scored items (:meth:`Task.item_key`: a pair or word group for
    spoken-LM tasks, where a sample is one wav; the sample itself elsewhere), in the task's order."""
    kept: set = set()
    out = []
    for s in samples:
        k = task.item_key(s)
        if k not in kept and len(kept) < limit:
            kept.add(k)
        if k in kept:
            out.append(s)
    return out


def task_cache_key(task: Task) -> str:
    """Digest of the task config that cached records depend on (see :meth:`Task.cache_config`)."""
    blob = json.dumps(task.cache_config(), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_dir(output_dir: Path, model: Model, task: Task) -> Path:
    """Cache folder of (model fingerprint, task config): a different model or task config never reuses records.

    It holds ``rank<r>.jsonl`` per process (one in a plain run) and ``errors.rank<r>.json`` of the last run.
    """
    key = json.dumps({"model": model.fingerprint(), "task": task.cache_config()}, sort_keys=True, default=str)
    return output_dir / "cache" / task_file_name(task.name) / hashlib.sha256(key.encode()).hexdigest()[:16]


def load_all_ranks(folder: Path, own: SampleCache, stats: CacheStats, keys: dict[str, str]) -> dict[str, dict]:
    """Usable records of every rank's file whose input digest still matches ``keys`` (this rank's file through its
    own cache); skipped lines counted in stats. Filtering each file before merging makes every rank agree on what
    is done, whichever file it reads last."""
    def current(records: dict[str, dict]) -> dict[str, dict]:
        return {i: r for i, r in records.items() if r[STAMP].get("input") == keys.get(i)}

    records = {}
    for path in sorted(folder.glob("rank*.jsonl")):
        if path != own.path:
            records.update(current(read_records(path, own.model, own.task, stats)[0]))
    records.update(current(own.load()))
    stats.add(own.stats)
    return records


def _clear_cache(folder: Path) -> None:
    """``--no-cache``: forget every earlier record of this model and task config."""
    for path in folder.glob("rank*.jsonl"):
        path.unlink(missing_ok=True)


def _strip(record: dict) -> dict:
    """A record as the samples file shows it: without the cache stamp."""
    return {k: v for k, v in record.items() if k != STAMP}


def run_task(model: Model, task: Task, output_dir: Path, *, batch_size: int = 8, limit: int | None = None,
             progress: Progress | None = None, dist: Dist = Dist(), use_cache: bool = True,
             meter: TaskMeter | None = None) -> TaskOutcome | None:
    """Run one task with resume; returns its metrics, items and error records (None on ranks other than 0).

    Every listed sample ends as a scored record or an error record, whatever fails later (aggregation included):
    the samples are listed (:func:`_listed`), this rank's shard of the pending ones runs through the model into the
    cache (:func:`_run_shard`), rank 0 gathers every rank's records (:func:`_gather`) and scores them
    (:func:`_score`).
    """
    refusal = _refusal(model, task)
    if refusal is not None:
        return refusal
    try:
        samples = task.samples()
    except DatasetError as exc:
        return TaskOutcome({}, [], [], 0, status="dataset error", detail=str(exc))
    if limit is not None:
        samples = limit_samples(task, samples, limit)
    listed = len(samples)
    samples, duplicate_errors = split_duplicates(samples)
    digests = ContentDigests()  # content hashes of the input files: input keys and the dataset digest
    keys = {s.id: input_key(s, digests) for s in samples}
    reader_errors = {s.id: error_record(s.id, s.error) for s in samples if s.error or s.request is None}
    shard = _run_shard(model, task, samples, keys, reader_errors, output_dir, batch_size=batch_size,
                       progress=progress, dist=dist, use_cache=use_cache, meter=meter)
    if not dist.is_main:
        return None
    records, errors = _gather(shard, samples, keys, reader_errors, duplicate_errors, dist)
    warnings = model.output_warnings(task.name, {s.id for s in samples})
    if shard.stats.warning():
        warnings = [shard.stats.warning(), *warnings]
    digest = dataset_sha256([f for s in samples for f in s.files], task.data_root, digests)
    return _score(task, records, samples, errors, output_dir, listed=listed, digest=digest, warnings=warnings,
                  reused=shard.reused)


def _refusal(model: Model, task: Task) -> TaskOutcome | None:
    """The outcome of a task the model (or its judge) cannot serve, else None; a missing embedder is the caller's
    wiring, not the model's fault (ValueError)."""
    if not model.supports(task.name, task.capability):
        return TaskOutcome({}, [], [], 0, status="not supported", capability=task.capability)
    task.context.score_reduction = model.score_reduction
    judge = task.context.judge
    if "judge" in task.needs and (judge is None or not judge.supports(task.name, "transcribe")):
        return TaskOutcome({}, [], [], 0, status="not supported", capability="judge:transcribe")
    if "embedder" in task.needs and task.context.embedder is None:
        raise ValueError(f"{task.name} needs a speaker embedder lent through TaskContext.embedder; none was given")
    return None


@dataclass
class _Shard:
    """What this rank's pass over its shard leaves for rank 0: the cache folder and file, the counts."""

    folder: Path
    cache: SampleCache
    stats: CacheStats
    reused: int


def _run_shard(model: Model, task: Task, samples: list[Sample], keys: dict[str, str], reader_errors: dict,
               output_dir: Path, *, batch_size: int, progress: Progress | None, dist: Dist, use_cache: bool,
               meter: TaskMeter | None) -> _Shard:
    """Read every rank's cache, run this rank's shard of the pending samples through the model in length buckets,
    append each batch's records to this rank's cache file and its error records to ``errors.rank<r>.json``."""
    folder = cache_dir(output_dir, model, task)
    task.context.cache_key = folder.name
    cache = SampleCache(folder / f"rank{dist.rank}.jsonl", model=model.fingerprint(), task=task_cache_key(task))
    if not use_cache and dist.is_main:
        _clear_cache(folder)
    dist.barrier()  # the cache is cleared (--no-cache) before any rank reads it
    stats = CacheStats()
    done = load_all_ranks(folder, cache, stats, keys)
    dist.barrier()  # every rank has read the same cache before any appends: the shards agree
    pending = [s for s in samples if s.id not in done and s.id not in reader_errors]
    reused = sum(1 for s in samples if s.id in done and s.id not in reader_errors)
    run_errors: dict[str, dict] = {}
    # rank 0's bar stands for the job: its own progress times the number of ranks
    bar = progress.add_task(task.name, total=len(samples), completed=len(samples) - len(pending)) \
        if progress else None
    try:
        for batch in length_buckets(dist.shard(pending), batch_size):
            records = process_batch(model, task, batch, meter)
            for r in records:
                r[STAMP] = cache.stamp(keys[r["id"]])
            cache.append([r for r in records if "error" not in r])
            run_errors.update((r["id"], _strip(r)) for r in records if "error" in r)
            if progress is not None:
                progress.advance(bar, len(batch) * dist.world_size)
    finally:
        cache.close()
    atomic_write_text(folder / f"errors.rank{dist.rank}.json", json.dumps(run_errors))
    dist.barrier()  # every shard is finished and flushed
    return _Shard(folder, cache, stats, reused)


def _gather(shard: _Shard, samples: list[Sample], keys: dict[str, str], reader_errors: dict,
            duplicate_errors: list[dict], dist: Dist) -> tuple[list[dict], list[dict]]:
    """Rank 0: every rank's usable records and error records, one per listed sample (a sample with neither gets a
    "lost output" error record)."""
    cache = shard.cache
    done = load_all_ranks(shard.folder, SampleCache(cache.path, cache.model, cache.task), CacheStats(), keys)
    run_errors: dict[str, dict] = {}
    for r in range(dist.world_size):
        run_errors.update(json.loads((shard.folder / f"errors.rank{r}.json").read_text()))
    records = [_strip(done[s.id]) for s in samples
               if s.id in done and s.id not in reader_errors]  # now unreadable: an error instead
    errors = [reader_errors.get(s.id) or run_errors[s.id] for s in samples
              if s.id in reader_errors or (s.id in run_errors and s.id not in done)] + duplicate_errors
    accounted = {r["id"] for r in records} | {e["id"] for e in errors}
    errors += [error_record(s.id, "no record was produced for this sample (lost output)")
               for s in samples if s.id not in accounted]
    return records, errors


def _score(task: Task, records: list[dict], samples: list[Sample], errors: list[dict], output_dir: Path, *,
           listed: int, digest: str, warnings: list[str], reused: int) -> TaskOutcome:
    """The task's items, metrics and side files from the records; a scoring failure makes every record an error
    record (none is scored) and the task a "scoring error", so the other tasks still run."""
    try:
        items = task.items(records, samples) if records else []
        metrics = task.aggregate(items) if items else {}
        side_files = {output_path(output_dir, name): content
                      for name, content in (task.side_files(records) if items else {}).items()}
    except Exception as exc:  # e.g. scores in units the task cannot compare
        detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        errors = errors + [error_record(r["id"], f"scoring error: {detail}") for r in records]
        return TaskOutcome({}, [], errors, listed, dataset_sha256=digest, warnings=warnings, status="scoring error",
                           detail=detail, reused=reused)
    return TaskOutcome(metrics, items, errors, listed, dataset_sha256=digest, warnings=warnings, reused=reused,
                       side_files=side_files)


def results_entry(outcome: TaskOutcome, seconds: float) -> dict:
    """A scored task's entry in results.json: its metrics, the scored / listed / error / reused counts and its
    time, the first error reason and the warnings; a scoring error says so first (every sample then has its error
    record)."""
    entry = {**outcome.metrics, "scored": outcome.listed - len(outcome.error_records), "listed": outcome.listed,
             "errors": len(outcome.error_records), "reused": outcome.reused, "seconds": round(seconds, 3)}
    if outcome.status:
        entry = {"status": outcome.status, "detail": outcome.detail, **entry}
    summary = error_summary(outcome.error_records)
    if summary:
        entry["first_error"] = summary
    if outcome.warnings:
        entry["warnings"] = outcome.warnings
    return entry


def write_side_file(path: Path, content: str | bytes | None) -> None:
    """Write one of a task's side files atomically (text as UTF-8), or remove it when ``content`` is None."""
    if content is None:
        path.unlink(missing_ok=True)
    elif isinstance(content, str):
        atomic_write_text(path, content)
    else:
        atomic_write_bytes(path, content)


def make_progress(console: Console | None = None, enabled: bool = True) -> Progress:
    """The per-task progress bar with samples/s."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), SamplesPerSecond(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not enabled,
                    transient=False)


def run_tasks(model: Model, tasks: list[Task], output_dir: Path, *, batch_size: int = 8, limit: int | None = None,
              seed: int = 0, show_progress: bool = True, console: Console | None = None,
              command: str | None = None, dist: Dist = Dist(), use_cache: bool = True,
              data_root: Path | None = None) -> RunOutcome | None:
    """Run every task, write ``samples/*.jsonl`` and ``results.json`` under ``output_dir``; return the outcome.

    An earlier ``results.json`` of the same model, seed and limit keeps its other tasks (merged by task); otherwise
    it is replaced and the samples files of tasks it no longer lists are removed, so the samples files always match
    results.json. Launched distributed, every rank takes its shard and rank 0 alone writes and returns.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    results, task_info, comparability, efficiency, unsupported, n_errors = {}, {}, {}, {}, [], 0
    samples_files: dict[Path, list[dict]] = {}  # written with results.json, so a killed run leaves both as they were
    side_files: dict[Path, str | bytes | None] = {}  # the tasks' side files, written (or removed) with them
    with make_progress(console, show_progress and dist.is_main) as progress:
        for task in tasks:
            started = time.perf_counter()
            meter = TaskMeter()
            outcome = run_task(model, task, output_dir, batch_size=batch_size, limit=limit, progress=progress,
                               dist=dist, use_cache=use_cache, meter=meter)
            meter.add_ranks(dist)  # every rank: the job's samples, model and audio seconds, not rank 0's share
            if outcome is None:
                continue
            samples_file = Path("samples") / f"{task_file_name(task.name)}.jsonl"
            if outcome.status in ("not supported", "dataset error"):  # nothing was listed: no samples file
                results[task.name] = {"status": outcome.status, "capability": outcome.capability}
                if outcome.detail:
                    results[task.name]["detail"] = outcome.detail
                unsupported.append(task.name)  # its old samples file goes with results.json (merge_previous)
                comparability[task.name] = assess(task, results[task.name], limit)
                efficiency[task.name] = {**meter.result(), "ranks": dist.world_size}
                continue
            samples_files[output_dir / samples_file] = outcome.items + outcome.error_records
            side_files.update(outcome.side_files)
            n_errors += len(outcome.error_records)
            results[task.name] = entry = results_entry(outcome, time.perf_counter() - started)
            if outcome.status:  # scoring error
                unsupported.append(task.name)
            task_info[task.name] = {"config": task.config(), "dataset_sha256": outcome.dataset_sha256,
                                    "samples_file": samples_file.as_posix(),
                                    "leaderboard": leaderboard_record(task.leaderboard)}
            comparability[task.name] = assess(task, entry, limit)
            efficiency[task.name] = {**meter.result(), "ranks": dist.world_size}
    if not dist.is_main:
        return None
    model_info = {"name": model.name, "args": model.identity().get("args", {}), "fingerprint": model.fingerprint()}
    document = results_document(model_info, results, task_info, seed, command, limit=limit,
                                data_root=str(data_root) if data_root is not None else None,
                                comparability=comparability, efficiency=efficiency)
    document = merge_previous(document, output_dir)
    for path, records in samples_files.items():
        write_jsonl(path, records)
    for path, content in side_files.items():
        write_side_file(path, content)
    atomic_write_text(output_dir / "results.json", json.dumps(document, indent=2, ensure_ascii=False, default=str))
    return RunOutcome(document, n_errors, unsupported)
