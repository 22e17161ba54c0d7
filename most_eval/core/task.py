"""The task contract: read a dataset in its official layout, ask the model, score each sample, aggregate.

A task is a small class:

* :meth:`Task.samples` reads the dataset under ``data_root/<dataset_folder>`` and returns every listed sample with a
  stable id. A sample the reader cannot use (transcript line without audio, path escaping the root, ...) is still
  returned, with ``error`` set: nothing is dropped silently.
* each sample carries a :class:`~most_eval.core.adapter.Request` naming the capability it needs.
* :meth:`Task.score` turns a batch of model outputs into per-request records (plain JSON-able dicts with ``id``).
  The runner caches the outputs (most_eval.data.model_outputs), never the records, so a killed run resumes where it
  stopped and every run scores again with the current code.
* :meth:`Task.items` groups request records into scored items (one item per record, or per pair for sLM tasks);
  :meth:`Task.aggregate` turns items into the metrics of ``results.json`` (WER and accuracy in percent) from its
  argument alone (and the task's options): no state kept from ``items``, no file written, so a resumed or merged
  run that re-aggregates cached records gets the same numbers.
* :meth:`Task.side_files` names the files a task's results come with besides the samples file (the official
  ZeroSpeech submission); the runner writes them under the output folder, scoring never writes.

Tasks are grouped into families (``asr``, ``tts``, ``slm``, ``sqa``) registered through the ``most_eval.tasks``
entry-point group; a family name selects its default tasks.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Hashable

from most_eval.core.adapter import Request
from most_eval.core.audio import DEFAULT_MAX_SECONDS
from most_eval.core.errors import DatasetError

if TYPE_CHECKING:
    from most_eval.core.adapter import Model


@dataclass
class Sample:
    """One listed sample of a task."""

    id: str  # stable id from the dataset (LibriSpeech utterance id, wav stem, ...)
    request: Request | None  # what to ask the model; None when the sample is broken
    reference: Any = None  # what scoring compares against (a transcript, answer aliases, pair info)
    error: str | None = None  # reader's reason this sample cannot be used ("<file>: <reason>")
    length: float = 0.0  # sort key for length-bucketed batching (seconds of audio, or characters)
    files: tuple[Path, ...] = ()  # files this sample reads (hashed into the dataset fingerprint)


@dataclass(frozen=True)
class NoOptions:
    """Tasks without options use this."""


@dataclass
class TaskContext:
    """What the runner lends a task: where to write, and helper models (judge ASR, speaker embedder)."""

    output_dir: Path
    device: str = "cpu"
    batch_size: int = 8
    seed: int = 0
    #: the longest input or prompt audio read (seconds; ``--max-audio-seconds``): longer files are error records
    max_audio_seconds: float = DEFAULT_MAX_SECONDS
    judge: "Model | None" = None  # transcribe-capable model used by TTS and speech->speech QA
    llm_judge: "Model | None" = None  # score_text-capable model for spoken QA's optional LLM-judge scorer
    #: speaker embedder for TTS SIM (``similarity(a, b) -> list[float]`` and ``name``), built from the task's
    #: ``embedder`` option by the CLI (most_eval.models.speaker_embedders); tasks never build helper models
    embedder: Any = None
    #: speech-quality scorer of generated speech (``score(audios) -> list[dict]`` of DNSMOS fields, and ``name``),
    #: built from the task's ``mos`` option by the run set-up (most_eval.models.speech_quality); None: ``mos=none``
    mos: Any = None
    score_reduction: str = "sum"  # how the model's plain-float score_audio values are reduced (set by the runner)
    #: whether the model conditions its speech on the speaker prompt (set by the runner from the model)
    model_uses_speaker_prompt: bool = False
    #: the cache folder's key of (model, task config), set by the runner: generated audio goes under
    #: ``audio/<task>/<cache_key>/`` so another model's run into the same output never overwrites what records cite
    cache_key: str = ""
    #: the cache folder itself, set by the runner: tasks whose outputs another tool caches (lm-eval's responses for
    #: text benchmarks) keep that cache there, under the same model and task config
    cache_dir: Path | None = None
    #: set by the runner while a progress bar is shown: tasks call it with the sub-step scoring is in ("judge",
    #: "speaker embedder") so a long scoring pass says what it is doing; :meth:`step` calls it when set
    on_step: "Callable[[str], None] | None" = None

    def step(self, name: str) -> None:
        """Say which sub-step of scoring runs now (shown beside the scoring bar); nothing without a bar."""
        if self.on_step is not None:
            self.on_step(name)


@dataclass(frozen=True)
class LeaderboardSlot:
    """The paper-table cell a task's headline number fills. A task owns this fact: the runner records it in
    results.json (``tasks[task]["leaderboard"]``) and the leaderboard places the number from there, without alias
    tables and without importing task classes."""

    table: str  # the paper table's file stem (leaderboards/data/paper/<table>.csv), e.g. asr_tts_wer
    column: str  # the column as printed in that table, e.g. librispeech_clean, stopic_storycloze, triviaqa_s2s
    row_task: str | None = None  # the table's `task` column, where it has one (asr_tts_wer: "asr" or "tts")


#: task name -> its declared ``submission_file``, filled as task classes are defined
_SUBMISSION_FILES: dict[str, str] = {}


class Task:
    """Base class of every task. Subclasses set the class attributes and implement ``samples``/``score``/``aggregate``."""

    name: ClassVar[str] = ""  # "family:task", e.g. "asr:librispeech-test-clean"
    capability: ClassVar[str] = ""  # the Request kind its samples use
    dataset_folder: ClassVar[str] = ""  # official folder name under --data-root
    description: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions  # typed task options (``--task-args``)
    #: helper models the task needs from the context: subset of {"judge", "embedder"}
    needs: ClassVar[frozenset[str]] = frozenset()
    #: the judge ASR its protocol names (a key of most_eval.scoring.paper.REFERENCE_JUDGES), for tasks that need a judge
    reference_judge: ClassVar[str | None] = None
    #: the paper-table cell its headline number fills; None: the paper's tables have no column for it
    leaderboard: ClassVar[LeaderboardSlot | None] = None
    #: where an official submission layout keeps this task's per-file scores (ZeroSpeech: ``lexical/dev.txt``); the
    #: ``precomputed`` model reads a user's submission from there (:func:`submission_file`)
    submission_file: ClassVar[str | None] = None
    #: the metric the paper's cell holds and ``paper_comparable`` speaks for
    headline_metric: ClassVar[str] = "accuracy"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name and cls.submission_file:
            _SUBMISSION_FILES[cls.name] = cls.submission_file

    def __init__(self, data_root: str | os.PathLike, options: Any = None, context: TaskContext | None = None):
        self.data_root = Path(data_root)
        self.options = options if options is not None else self.Options()
        self.context = context or TaskContext(output_dir=Path("."))

    @property
    def root(self) -> Path:
        """The dataset folder of this task: ``data_root / dataset_folder``."""
        return self.data_root / self.dataset_folder

    def samples(self) -> list[Sample]:
        """Every sample the dataset lists, in a stable order, broken ones included (with ``error`` set)."""
        raise NotImplementedError

    def predict(self, model: "Model", prepared: list) -> list:
        """Model outputs for a batch of prepared requests; tasks that drive the model themselves override it."""
        return model.run_batch(prepared)

    def score(self, samples: list[Sample], outputs: list) -> list[dict]:
        """Per-request records for a batch of model outputs; each dict has ``"id"`` and is JSON-serialisable."""
        raise NotImplementedError

    def items(self, records: list[dict], samples: list[Sample]) -> list[dict]:
        """Scored items (what ``samples/<task>.jsonl`` holds); by default one item per successful record."""
        return records

    def aggregate(self, items: list[dict]) -> dict[str, Any]:
        """Metrics of this task from its items (errors already removed): a function of ``items`` and the task's
        options only (no state kept from :meth:`items`, no file written), so calling it twice, or in a fresh task
        on records read back from the cache, gives the same metrics."""
        raise NotImplementedError

    def side_files(self, records: list[dict]) -> dict[str, str | bytes | None]:
        """Files the results come with besides the samples file (an official submission file, ...): a path relative
        to the output folder (``/``-separated plain names) -> its content, or None to remove an earlier run's file of
        that name, so a stale file never stands beside new results. Called with the successful records once
        aggregation succeeded; the runner writes them (most_eval.data.files.output_path). None by default."""
        return {}

    def config(self) -> dict:
        """This task's configuration as written into results.json."""
        options = asdict(self.options) if is_dataclass(self.options) else dict(self.options or {})
        return {"name": self.name, "capability": self.capability, "dataset_folder": self.dataset_folder,
                "options": options, "version": getattr(self, "version", 1)}

    def cache_config(self) -> dict:
        """The part of :meth:`config` that cached records depend on: options marked
        ``field(metadata={"scoring": True})`` act only in items/aggregate, so changing them re-scores the cache
        instead of re-running the model."""
        config = self.config()
        if is_dataclass(self.options):
            scoring = {f.name for f in fields(self.options) if f.metadata.get("scoring")}
            config["options"] = {k: v for k, v in config["options"].items() if k not in scoring}
        return config

    def item_key(self, sample: Sample) -> Hashable:
        """The scored item ``sample`` belongs to (``--limit`` counts items): the sample itself by default; spoken-LM
        tasks, where one sample is one wav, group the wavs of a pair or word group."""
        return sample.id

    def protocol_differences(self) -> list[str]:
        """How this task, as configured, departs from the paper's or the official scorer's protocol for its headline
        metric (empty: not at all): a task names its own facts (judge, embedder, reduction, normalisation). See
        most_eval.scoring.comparability."""
        return []

    def metric_differences(self) -> dict[str, list[str]]:
        """For metrics besides the headline (:attr:`headline_metric`) that have a verdict of their own, how each
        departs from the protocol its number would stand beside (TTS SIM: the embedder, or the paper reporting no
        SIM at all). The common reasons (limit, sample count, errors) apply to every metric."""
        return {}

    def protocol_notes(self) -> list[str]:
        """What a reader must know to read the number, without making it incomparable: whose convention a rule is
        where the paper does not state it, which of the official scorer's numbers fills the paper's cell."""
        return []

    def require_root(self) -> Path:
        """The dataset folder, or a DatasetError saying where it was expected."""
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset folder not found (expected '{self.dataset_folder}/' "
                               f"under --data-root {self.data_root})")
        return self.root


def submission_file(task: str) -> str | None:
    """The submission file a defined task class declares (``slm:swuggy-dev`` -> ``lexical/dev.txt``), else None: the
    task owns the fact, and a model that serves submissions asks here, without importing task classes."""
    return _SUBMISSION_FILES.get(task)


def task_file_name(task: str) -> str:
    """File-system stem of a task's files (samples, cache, audio): ``asr:librispeech-test-clean`` ->
    ``asr_librispeech-test-clean``."""
    return task.replace(":", "_")


@dataclass
class TaskFamily:
    """A task family: its tasks by name and the ones that the bare family name selects."""

    name: str
    tasks: dict[str, type[Task]]
    defaults: list[str]
    description: str = ""
    #: builds the task class for names not listed in ``tasks`` (e.g. ``text:<any lm-eval task>``)
    dynamic: "Callable[[str], type[Task]] | None" = None
