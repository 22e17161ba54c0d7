"""The evaluation loop: samples -> length-bucketed batches -> model -> per-sample records -> metrics -> results.json.

Per task: read the samples, skip those whose output is already in the cache (resume), sort the rest by length and cut
them into batches, load each batch's audio once at the model's sample rate, call the model, append its outputs to the
cache, show progress. Then every output, cached or new, is scored with the current task code: the cache holds what
the model said, never a number derived from it. A sample that fails (unreadable audio, reader error, model failure,
an output of the wrong type) becomes an error record naming the file and the reason; the run goes on. Finally the
task aggregates its items and the run writes
``samples/<task>.jsonl``, the task's side files (:meth:`Task.side_files`) and ``results.json`` atomically.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn
from rich.text import Text

from most_eval.core.adapter import Model, Prepared, SampleFailure
from most_eval.core.audio import DEFAULT_MAX_SECONDS, Audio, AudioError, load_audio
from most_eval.scoring.comparability import assess
from most_eval.data.model_outputs import SPEECH, OutputError, encode_output, output_kind, read_output, speech_file
from most_eval.run.cache import STAMP, CacheStats, SampleCache, choose_records, read_records
from most_eval.run.judge_cache import CachedJudge
from most_eval.data.files import output_path
from most_eval.run.distributed import Dist
from most_eval.results.efficiency import TaskMeter
from most_eval.core.fingerprints import ContentDigests
from most_eval.results.store import (atomic_write_bytes, atomic_write_text, dataset_sha256, leaderboard_record, merge_previous,
                               results_document, task_file_name, write_jsonl)
from most_eval.core.task import Sample, Task
from most_eval.results.seeds import DECLARED_IDENTICAL
from most_eval.run.outcome import RunOutcome, TaskOutcome, results_entry
from most_eval.run.seeded import GENERATING, combine_seeds, seeds_to_run
from most_eval.core.errors import DatasetError, MostEvalError


class SamplesPerSecond(ProgressColumn):
    """Progress column: samples per second of this task."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} samples/s" if speed else "", style="cyan")


class RunInterrupted(MostEvalError):
    """Ctrl-C (SIGINT) during a task's model pass: what is saved, and how to go on; one line."""

    def __init__(self, task: str, saved: int, total: int):
        self.task, self.saved, self.total = task, saved, total
        super().__init__(f"{saved} of {total} samples of {task} saved; re-run the same command to resume")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (when a model has imported it; importing it here would cost a second)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def error_record(sample_id: str, reason: str) -> dict:
    """The record of a sample that could not be scored."""
    return {"id": sample_id, "error": reason}


def prepare(model: Model, task_name: str, samples: Sequence[Sample],
            max_seconds: float = DEFAULT_MAX_SECONDS) -> tuple[list[Sample], list[Prepared], list[dict]]:
    """Load each sample's audio at the model's rate (files over ``max_seconds`` refused); failures become error
    records."""
    ready, prepared, errors = [], [], []
    rate = model.sample_rate
    for sample in samples:
        req = sample.request
        try:
            audio = load_audio(req.audio, rate, max_seconds) if (req.audio and model.needs_audio) else None
            prompt = load_audio(req.prompt, rate, max_seconds) if (req.prompt and model.needs_audio) else None
        except AudioError as exc:
            errors.append(error_record(sample.id, str(exc)))
            continue
        ready.append(sample)
        prepared.append(Prepared(task=task_name, id=sample.id, request=req, audio=audio, prompt=prompt))
    return ready, prepared, errors


def model_outputs(model: Model, task: Task, samples: list[Sample],
                  meter: TaskMeter | None = None) -> tuple[list[tuple[Sample, object]], list[dict]]:
    """What the model said for one batch: (sample, output) pairs and error records (unreadable audio, a model
    failure, a :class:`SampleFailure`); the model's time and audio go to ``meter``."""
    ready, prepared, errors = prepare(model, task.name, samples, task.context.max_audio_seconds)
    if not prepared:
        return [], errors
    started = time.perf_counter()
    try:
        outputs = list(task.predict(model, prepared))
        if meter is not None:  # audio consumed (inputs) or produced (speech outputs)
            audio = sum(p.audio.duration for p in prepared if p.audio is not None)
            audio += sum(o.duration for o in outputs if isinstance(o, Audio))
            meter.model_call(time.perf_counter() - started, len(prepared), audio)
    except Exception as exc:  # a model failure fails this batch's samples, not the run
        reason = f"model error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return [], errors + [error_record(s.id, reason) for s in ready]
    if len(outputs) != len(ready):
        reason = f"model returned {len(outputs)} outputs for {len(ready)} inputs"
        return [], errors + [error_record(s.id, reason) for s in ready]
    said = []
    for sample, output in zip(ready, outputs):
        if isinstance(output, SampleFailure):
            errors.append(error_record(sample.id, output.reason))
        else:
            said.append((sample, output))
    return said, errors


def score_batch(task: Task, samples: list[Sample], outputs: list) -> list[dict]:
    """The task's records of one batch of outputs; a scoring failure makes each an error record naming it."""
    try:
        return task.score(samples, outputs)
    except Exception as exc:
        reason = f"scoring error: {type(exc).__name__}: {exc}"
        return [error_record(s.id, reason) for s in samples]


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


def cache_dir(output_dir: Path, model: Model, task: Task, seed: int | None = None) -> Path:
    """Cache folder of (model fingerprint, task config[, seed]): a different model or task config never reuses
    records, nor does another seed of a ``--seeds`` run (``seed`` None: a run of one seed, keyed as before).

    It holds ``rank<r>.jsonl`` per process (one in a plain run: the model's outputs) and ``scored.rank<r>.json``,
    the records and error records of the last run's scoring.
    """
    key = {"model": model.fingerprint(), "task": task.cache_config()}
    if seed is not None:
        key["seed"] = seed
    key = json.dumps(key, sort_keys=True, default=str)
    return output_dir / "cache" / task_file_name(task.name) / hashlib.sha256(key.encode()).hexdigest()[:16]


def load_all_ranks(folder: Path, own: SampleCache, stats: CacheStats, keys: dict[str, str],
                   problem: Callable[[dict], str | None] = lambda record: None) -> dict[str, dict]:
    """Per id, the first usable record of every rank's file whose input digest still matches ``keys``
    (:func:`~most_eval.run.cache.choose_records`; this rank's file read through its own cache); skipped lines,
    unusable outputs and conflicts counted in stats. Every rank reads the files in the same order, so every rank
    agrees on what is done."""
    records = []
    for path in sorted(folder.glob("rank*.jsonl")):
        records += own.load() if path == own.path else read_records(path, own.model, own.task, stats)[0]
    stats.add(own.stats)
    return choose_records(records, keys, problem, stats)


def output_problem(kinds: dict[str, str | None], output_dir: Path) -> Callable[[dict], str | None]:
    """Why a cached record cannot stand for its sample's output (wrong type, audio missing or changed), or None."""
    def problem(record: dict) -> str | None:
        kind = kinds.get(record["id"])
        if kind is None:
            return "not a cached kind of output"
        try:
            read_output(kind, record, output_dir)
        except OutputError as exc:
            return str(exc)
        return None
    return problem


def _clear_cache(folder: Path) -> None:
    """``--no-cache``: forget every earlier output of this model and task config (lm-eval's response cache too)."""
    for path in [*folder.glob("rank*.jsonl"), *folder.glob("lm_eval_rank*.db")]:
        path.unlink(missing_ok=True)


def run_task(model: Model, task: Task, output_dir: Path, *, batch_size: int = 8, limit: int | None = None,
             progress: Progress | None = None, dist: Dist = Dist(), use_cache: bool = True,
             meter: TaskMeter | None = None, seed: int | None = None) -> TaskOutcome | None:
    """Run one task with resume; returns its metrics, items and error records (None on ranks other than 0).
    ``seed``: one seed of a ``--seeds`` run (its own cache folder and bars), None for a run of one seed.

    Every listed sample ends as a scored record or an error record, whatever fails later (aggregation included):
    the samples are listed, this rank's shard of the pending ones runs through the model into the cache and this
    rank scores its share of every output, cached or new (:func:`_run_shard`), rank 0 gathers every rank's records
    (:func:`_gather`) and aggregates them (:func:`_aggregate`).
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
                       progress=progress, dist=dist, use_cache=use_cache, meter=meter, seed=seed)
    if not dist.is_main:
        return None
    records, errors = _gather(shard.folder, samples, reader_errors, duplicate_errors, dist)
    warnings = [*shard.stats.warnings(), *model.output_warnings(task.name, {s.id for s in samples})]
    digest = dataset_sha256([f for s in samples for f in s.files], task.data_root, digests)
    return _aggregate(task, records, samples, errors, output_dir, listed=listed, digest=digest, warnings=warnings,
                      reused=shard.reused)


def _refusal(model: Model, task: Task) -> TaskOutcome | None:
    """The outcome of a task the model (or its judge) cannot serve, else None; a missing embedder is the caller's
    wiring, not the model's fault (ValueError)."""
    if not model.supports(task.name, task.capability):
        return TaskOutcome({}, [], [], 0, status="not supported", capability=task.capability)
    task.context.score_reduction = model.score_reduction
    task.context.model_uses_speaker_prompt = model.uses_speaker_prompt()
    judge = task.context.judge
    if "judge" in task.needs and (judge is None or not judge.supports(task.name, "transcribe")):
        return TaskOutcome({}, [], [], 0, status="not supported", capability="judge:transcribe")
    if "embedder" in task.needs and task.context.embedder is None:
        raise ValueError(f"{task.name} needs a speaker embedder lent through TaskContext.embedder; none was given")
    return None


@dataclass
class _Shard:
    """What this rank's pass leaves for rank 0: the cache folder (holding ``scored.rank<r>.json``), the counts."""

    folder: Path
    stats: CacheStats
    reused: int


def _run_shard(model: Model, task: Task, samples: list[Sample], keys: dict[str, str], reader_errors: dict,
               output_dir: Path, *, batch_size: int, progress: Progress | None, dist: Dist, use_cache: bool,
               meter: TaskMeter | None, seed: int | None = None) -> _Shard:
    """Read every rank's cache, run this rank's shard of the pending samples through the model in length buckets,
    append each batch's outputs to this rank's cache file, then score this rank's share of every output and write
    the records and error records to ``scored.rank<r>.json``."""
    folder = cache_dir(output_dir, model, task, seed)
    label = task.name if seed is None else f"{task.name} seed {seed}"
    task.context.cache_key, task.context.cache_dir = folder.name, folder
    cache = SampleCache(folder / f"rank{dist.rank}.jsonl", model=model.fingerprint(), task=task_cache_key(task))
    if not use_cache and dist.is_main:
        _clear_cache(folder)
    dist.barrier()  # the cache is cleared (--no-cache) before any rank reads it
    kinds = {s.id: output_kind(s.request) for s in samples if s.request is not None}
    stats = CacheStats()
    done = load_all_ranks(folder, cache, stats, keys, output_problem(kinds, output_dir))
    dist.barrier()  # every rank has read the same cache before any appends: the shards agree
    usable = [s for s in samples if s.id not in reader_errors]
    pending = [s for s in usable if s.id not in done]
    reused = [s for s in usable if s.id in done]
    # rank 0's bar stands for the job: its own progress times the number of ranks
    bar = _model_bar(progress, label, len(samples), len(samples) - len(pending))
    failed: dict[str, dict] = {}
    stored: dict[str, dict] = {}  # this run's new cache records
    fresh: list[tuple[Sample, object]] = []  # outputs the cache does not keep (text benchmarks: lm-eval does)
    try:
        for batch in length_buckets(dist.shard(pending), batch_size):
            if progress is not None:  # the model answers a batch at once: say what is in flight meanwhile
                progress.update(bar, description=f"{label} · model: {len(batch)} in flight",
                                refresh=True)
            said, errors = model_outputs(model, task, batch, meter)
            new = []
            for sample, output in said:
                kind = kinds[sample.id]
                if kind is None:
                    fresh.append((sample, output))
                    continue
                try:
                    place = speech_file(task.name, folder.name, sample.id) if kind == SPEECH else None
                    new.append({"id": sample.id, **encode_output(kind, output, output_dir, place),
                                STAMP: cache.stamp(keys[sample.id])})
                except (OutputError, ValueError) as exc:
                    where = sample.request.audio or sample.id
                    errors.append(error_record(sample.id, f"{where}: model output: {exc}"))
            cache.append(new)
            stored.update((r["id"], r) for r in new)
            failed.update((r["id"], r) for r in errors)
            if progress is not None:
                progress.update(bar, advance=len(batch) * dist.world_size, description=label)
    except KeyboardInterrupt:  # every appended batch is flushed: say what is kept
        raise RunInterrupted(task.name, len(reused) + len(stored), len(usable)) from None
    finally:
        cache.close()
    mine = [(s, done[s.id]) for s in dist.shard(reused)] + [(s, stored[s.id]) for s in pending if s.id in stored]
    records = score_outputs(task, mine, fresh, kinds, output_dir, batch_size=batch_size, rank=dist.rank,
                            progress=progress if task.needs else None, label=label)
    failed.update((r["id"], r) for r in records if "error" in r)
    scored = [r for r in records if "error" not in r]
    atomic_write_text(folder / f"scored.rank{dist.rank}.json", json.dumps({"records": scored, "errors": failed},
                                                                          ensure_ascii=False))
    dist.barrier()  # every shard is scored and written
    return _Shard(folder, stats, len(reused))


def score_outputs(task: Task, stored: list[tuple[Sample, dict]], fresh: list[tuple[Sample, object]],
                  kinds: dict[str, str | None], output_dir: Path, *, batch_size: int = 8, rank: int = 0,
                  progress: Progress | None = None, label: str | None = None) -> list[dict]:
    """Score outputs with the current task code: cached records read back with their exact types (in batches,
    longest first) and outputs kept in memory. The task's judge is lent through :class:`CachedJudge`, so its
    transcripts of generated speech are cached under its own fingerprint. With ``progress``, a bar of its own
    (``<label> scoring``, the label being the task's name unless given) advances per batch: judging and embedding
    speech can take as long as making it."""
    label = label or task.name
    judge = task.context.judge
    cached_judge = CachedJudge(judge, output_dir, rank) if judge is not None and "judge" in task.needs else None
    if cached_judge is not None:
        task.context.judge = cached_judge
    records: list[dict] = []
    bar = progress.add_task(f"{label} scoring", total=len(stored) + len(fresh)) if progress else None
    if progress is not None:  # the task names its sub-step (judge, speaker embedder) as it goes
        task.context.on_step = lambda step: progress.update(bar, description=f"{label} scoring · {step}",
                                                          refresh=True)
    try:
        ordered = sorted(stored, key=lambda pair: pair[0].length, reverse=True)
        for i in range(0, len(ordered), batch_size):
            samples, outputs = [], []
            for sample, record in ordered[i:i + batch_size]:
                try:
                    outputs.append(read_output(kinds[sample.id], record, output_dir))
                    samples.append(sample)
                except OutputError as exc:  # changed since the cache was read
                    records.append(error_record(sample.id, f"cached output: {exc}"))
            if samples:
                records += score_batch(task, samples, outputs)
            if progress is not None:
                progress.advance(bar, len(ordered[i:i + batch_size]))
        if fresh:
            records += score_batch(task, [s for s, _ in fresh], [o for _, o in fresh])
        inputs = {s.id: s.request for s, _ in [*stored, *fresh] if s.request is not None}
        for record in records:  # where the input speech and the speaker prompt are, for a reader (report.html)
            request = inputs.get(record.get("id"))
            if request is not None and "error" not in record:
                for name, path in (("input_audio", request.audio), ("prompt_audio", request.prompt)):
                    if path:
                        record.setdefault(name, data_relative(Path(path), task.data_root))
    finally:
        task.context.on_step = None
        if progress is not None:
            progress.update(bar, description=f"{label} scoring")
        if cached_judge is not None:
            task.context.judge = judge
            cached_judge.close()
    return records


def data_relative(path: Path, data_root: Path | None) -> str:
    """``path`` relative to the data root where it lies under it (records then read the same whichever folder holds
    the datasets; results.json names the root), else as given."""
    path = path.absolute()  # not resolve(): a dataset folder may be a symlink into the data root
    if data_root is not None:
        try:
            return path.relative_to(Path(data_root).absolute()).as_posix()
        except ValueError:
            pass
    return str(path)


def _model_bar(progress: Progress | None, name: str, total: int, cached: int):
    """A task's model bar, starting at the samples whose outputs are cached. A bar with nothing left to run is
    finished at once (labelled ``cached``), so its clock stops instead of running on through later tasks."""
    if progress is None:
        return None
    bar = progress.add_task(f"{name} · cached" if cached == total else name, total=total, completed=cached)
    progress.update(bar)  # sets the finish time of a bar that starts complete
    return bar


def _gather(folder: Path, samples: list[Sample], reader_errors: dict, duplicate_errors: list[dict],
            dist: Dist) -> tuple[list[dict], list[dict]]:
    """Rank 0: every rank's records and error records, one per listed sample in the samples' order (a sample with
    neither gets a "lost output" error record)."""
    scored: dict[str, dict] = {}
    failed: dict[str, dict] = {}
    for r in range(dist.world_size):
        part = json.loads((folder / f"scored.rank{r}.json").read_text(encoding="utf-8"))
        scored.update((record["id"], record) for record in part["records"])
        failed.update(part["errors"])
    records = [scored[s.id] for s in samples if s.id in scored and s.id not in reader_errors]
    errors = [reader_errors.get(s.id) or failed[s.id] for s in samples
              if s.id in reader_errors or (s.id in failed and s.id not in scored)] + duplicate_errors
    accounted = {r["id"] for r in records} | {e["id"] for e in errors}
    errors += [error_record(s.id, "no record was produced for this sample (lost output)")
               for s in samples if s.id not in accounted]
    return records, errors


def _aggregate(task: Task, records: list[dict], samples: list[Sample], errors: list[dict], output_dir: Path, *,
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


def run_seeds(model: Model, task: Task, output_dir: Path, seeds: list[int], **kw) -> TaskOutcome | None:
    """Run ``task`` once per seed (model and RNGs seeded with it, its own cache folder) and combine the seeds into
    one outcome (:func:`combine_seeds`); None on ranks other than 0. The model's seed is restored after."""
    base = model.seed
    outcomes = []
    try:
        for seed in seeds:
            model.seed = seed
            seed_everything(seed)
            outcomes.append((seed, run_task(model, task, output_dir, seed=seed, **kw)))
    finally:
        model.seed = base
        seed_everything(base)  # the tasks after this one start as they would without --seeds
    if any(outcome is None for _, outcome in outcomes):
        return None
    return combine_seeds(outcomes)


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
              data_root: Path | None = None, run_name: str | None = None,
              seeds: list[int] | None = None) -> RunOutcome | None:
    """Run every task, write ``samples/*.jsonl`` and ``results.json`` under ``output_dir``; return the outcome.

    ``seeds`` (``--seeds``): a task that generates runs once per seed where the model samples
    (:func:`seeds_to_run`, :func:`run_seeds`); results.json then holds the mean over seeds with its spread
    (:mod:`most_eval.results.seeds`), and the samples file every seed's records, each with its ``seed``.

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
            per_seed = seeds_to_run(model, task, seeds)
            options = dict(batch_size=batch_size, limit=limit, progress=progress, dist=dist, use_cache=use_cache,
                           meter=meter)
            outcome = (run_seeds(model, task, output_dir, per_seed, **options) if per_seed
                       else run_task(model, task, output_dir, **options))
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
            if seeds and len(seeds) > 1 and per_seed is None and task.capability in GENERATING:
                entry.update(seeds=list(seeds), seeds_identical=DECLARED_IDENTICAL)
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
    facts = model.facts()
    if facts:
        model_info["facts"] = facts
    document = results_document(model_info, results, task_info, seed, command, limit=limit, seeds=seeds,
                                data_root=str(Path(data_root).absolute()) if data_root is not None else None,
                                comparability=comparability, efficiency=efficiency,
                                run_name=run_name or output_dir.resolve().name)
    document = merge_previous(document, output_dir)
    for path, records in samples_files.items():
        write_jsonl(path, records)
    for path, content in side_files.items():
        write_side_file(path, content)
    atomic_write_text(output_dir / "results.json", json.dumps(document, indent=2, ensure_ascii=False, default=str))
    return RunOutcome(document, n_errors, unsupported)
