"""Reading a finished run: its validated results.json (:func:`most_eval.results.store.load_results`) and, lazily,
each task's per-sample records keyed so that the same sample gets the same key in two runs. ``compare``,
``check`` and the leaderboard read runs through here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from most_eval.results.fields import METRICS, range_problem
from most_eval.scoring.speech_quality import MOS_FIELDS
from most_eval.results.store import ResultsFileError, load_results


#: the per-sample fields the metrics are computed from (and the WER's edit counts), range-checked when read
METRIC_FIELDS = ("errors", "ref_words", "substitutions", "deletions", "insertions", "correct", "sim", *MOS_FIELDS)


def item_of(record: dict[str, Any]) -> str:
    """The unit an accuracy is averaged over first: ``record["item"]`` when given, else ``type/subtype/id`` when the
    record has ``type`` and ``subtype`` (sBLIMP: the official per-(type, subtype, id) averaging), else its ``id``
    (sWUGGY: per-id averaging over voices). Records with unique items make accuracy the plain mean."""
    if "item" in record:
        return str(record["item"])
    if "type" in record and "subtype" in record:
        return f"{record['type']}/{record['subtype']}/{record['id']}"
    return str(record["id"])


@dataclass
class Run:
    """A loaded results folder. ``samples(task)`` reads the task's per-sample records lazily."""

    results_path: Path
    data: dict[str, Any]
    _samples: dict[str, tuple[dict[str, dict[str, Any]], set[str]]] = field(default_factory=dict, repr=False)
    _seeded: set[str] = field(default_factory=set, repr=False)  # tasks whose records carry a seed

    @property
    def dir(self) -> Path:
        """The results folder (samples paths are relative to it)."""
        return self.results_path.parent

    @property
    def model(self) -> str:
        """The model name the run recorded."""
        return self.data["model"]["name"]

    @property
    def label(self) -> str:
        """How tables name the run (:func:`run_label`)."""
        return run_label(self.data)

    def scored_tasks(self) -> list[str]:
        """Tasks with at least one of the metrics in :data:`METRICS` (``"status": "not supported"`` ones excluded)."""
        return sorted(t for t, e in self.data["results"].items() if any(m in e for m in METRICS))

    def ran(self, task: str) -> bool:
        """``task`` has a results entry that is not a ``"status"`` one (it ran, whatever metrics it reports)."""
        entry = self.data["results"].get(task)
        return isinstance(entry, dict) and "status" not in entry

    def task_info(self, task: str) -> dict[str, Any]:
        """The task's ``tasks`` block of results.json (config, dataset hash, samples file); empty if absent."""
        info = (self.data.get("tasks") or {}).get(task) or {}
        return info if isinstance(info, dict) else {}

    def dataset_sha256(self, task: str) -> str | None:
        """The digest of the task's dataset files, or None when the run did not record one."""
        value = self.task_info(task).get("dataset_sha256")
        return value if isinstance(value, str) and value else None

    def samples_path(self, task: str) -> Path:
        """The task's samples file: as results.json names it, else the harness's default name."""
        rel = self.task_info(task).get("samples_file") or f"samples/{task.replace(':', '_')}.jsonl"
        return self.dir / rel

    def samples(self, task: str) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """``(scored records by sample key, keys of error records)`` for ``task``.

        The key is the record's ``id`` when ids are unique in the file. Where they repeat (ZeroSpeech pairs: one item
        id per voice), it is :func:`item_of` plus ``@voice`` (plus ``#k`` for the k-th remaining repeat), so that
        the same pair gets the same key in both runs. A record of a ``--seeds`` run (a ``seed`` field) has
        ``@seed<s>`` after that (:func:`sample_of` takes it off). Error records (an ``"error"`` key, no metric
        fields) are returned as keys only. A missing or malformed file raises :class:`ResultsFileError` naming the
        file."""
        if task in self._samples:
            return self._samples[task]
        path = self.samples_path(task)
        if not path.is_file():
            raise ResultsFileError(path, f"samples file for task {task!r} not found")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ResultsFileError(path, f"cannot read file ({type(err).__name__}: {err})") from None
        records = []
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise ResultsFileError(path, f"line {lineno}: invalid JSON ({err.msg}); truncated file?") from None
            if not isinstance(rec, dict) or "id" not in rec:
                raise ResultsFileError(path, f"line {lineno}: not a sample record (no 'id')")
            problem = next((f"{field} {p}" for field in METRIC_FIELDS if (p := range_problem(field, rec.get(field)))),
                           None)
            if problem:  # e.g. a negative edit count, which would lower the WER
                raise ResultsFileError(path, f"line {lineno}: sample {rec['id']!r}: {problem}")
            records.append(rec)
        ids = [str(r["id"]) for r in records]
        unique = len({(i, r.get("seed")) for i, r in zip(ids, records)}) == len(ids)
        scored: dict[str, dict[str, Any]] = {}
        errors: set[str] = set()
        seen: dict[tuple, int] = {}
        for rec, sid in zip(records, ids):
            key = sid
            if not unique:
                key = item_of(rec) + (f"@{rec['voice']}" if "voice" in rec else "")
                k = seen[key, rec.get("seed")] = seen.get((key, rec.get("seed")), -1) + 1
                key = key if k == 0 else f"{key}#{k}"
            if "seed" in rec:
                key = f"{key}{SEED_MARK}{rec['seed']}"
            if "error" in rec:
                errors.add(key)
            else:
                scored[key] = rec
        disagreement = self._disagreement(task, records)
        if disagreement:
            raise ResultsFileError(path, f"disagrees with {self.results_path.name}: {disagreement}")
        self._samples[task] = (scored, errors)
        if any("seed" in rec for rec in records):
            self._seeded.add(task)
        return scored, errors

    def _disagreement(self, task: str, records: list[dict]) -> str | None:
        """How the samples file and results.json disagree on what they both state (the error count, the WER's
        edit and word totals), or None: a number is never compared when its two sources differ."""
        entry = self.data["results"].get(task, {})
        errors = sum(1 for r in records if "error" in r)
        if isinstance(entry.get("errors"), int) and entry["errors"] != errors:
            return f"{errors} error record(s) in the samples, {entry['errors']} in results.json"
        for name in ("substitutions", "deletions", "insertions", "ref_words"):
            if isinstance(entry.get(name), int):
                total = sum(r.get(name, 0) for r in records if "error" not in r)
                if total != entry[name]:
                    return f"{name} sum to {total} in the samples, {entry[name]} in results.json"
        return None

    def by_sample(self, task: str) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
        """``(scored records per sample, samples with an error record)``, a sample being a :meth:`samples` key
        without its seed: one record per seed of a ``--seeds`` run, one record otherwise. A sample with an error
        record in any seed counts as an error sample, not a scored one."""
        scored, errors = self.samples(task)
        base = sample_of if task in self._seeded else (lambda key: key)
        failed = {base(key) for key in errors}
        grouped: dict[str, list[dict[str, Any]]] = {}
        for key, rec in scored.items():
            if base(key) not in failed:
                grouped.setdefault(base(key), []).append(rec)
        return grouped, failed

    def seed_count(self, task: str) -> int:
        """How many seeds the task's records come from (1 for a run without ``--seeds``)."""
        scored, _ = self.samples(task)
        return len({rec.get("seed") for rec in scored.values()}) or 1

    def metric_ids(self, task: str, metric: str) -> set[str]:
        """Samples (:meth:`by_sample`) whose records, in every seed, carry the fields of ``metric``."""
        need = METRICS[metric][0]
        grouped, _ = self.by_sample(task)
        return {sid for sid, recs in grouped.items() if all(r.get(k) is not None for r in recs for k in need)}

    def wer_aggregation(self, task: str) -> str:
        """``"corpus"`` (sum errors / sum ref words) or ``"utterance_mean"`` for the seed-tts-eval protocol."""
        entry = self.data["results"].get(task, {})
        config = self.task_info(task).get("config") or {}
        hints = [task, entry.get("protocol"), entry.get("wer_protocol")]
        if isinstance(config, dict):
            hints += [config.get("protocol"), config.get("variant"), config.get("wer_protocol")]
        return "utterance_mean" if any(isinstance(h, str) and "seed-tts" in h.lower() for h in hints) else "corpus"


#: what :meth:`Run.samples` puts between a sample's key and its seed (``utt1@seed2``)
SEED_MARK = "@seed"


def sample_of(key: str) -> str:
    """A :meth:`Run.samples` key without its seed: the sample it is a record of."""
    base, mark, seed = key.rpartition(SEED_MARK)
    return base if mark and seed.isdigit() else key


def run_label(data: dict[str, Any]) -> str:
    """How a run is named in tables: ``<run name> (<model>)``, the run name being what ``most-eval run`` recorded
    (``--name``, else its output folder's name); the model alone for a file that records none (older runs) or a
    run named after its model."""
    model = data["model"]["name"]
    name = data.get("run_name")
    return f"{name} ({model})" if isinstance(name, str) and name.strip() and name != model else model


def load_run(path: str | Path) -> Run:
    """Load a run from a results folder or a ``results.json`` path (validated, see :func:`load_results`)."""
    path = Path(path)
    results_path = path / "results.json" if path.is_dir() else path
    if not results_path.exists():
        raise ResultsFileError(results_path, "not found")
    return Run(results_path, load_results(results_path))
