"""Setting up a run: every check and every helper model a run needs, in the order that makes a bad input fail
before any model work. The Python API (:func:`most_eval.evaluate`) and ``most-eval run`` both go through
:func:`run_evaluation`.

Order: numbers in range; the task names; the model name and its ``--model-args`` keys; the judge (``--judge
paper``: each task's reference judge folder must exist); the task options; on rank 0 the output folder, the data
root and the output lock (every rank learns the verdict); then the helper models -- speaker embedders, spoken QA's
LLM judge, the judge ASR(s) -- each built once and lent to the tasks through :class:`~most_eval.core.task.TaskContext`;
the model last; then :func:`most_eval.run.runner.run_tasks`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

from most_eval.core.adapter import Model
from most_eval.core.audio import DEFAULT_MAX_SECONDS
from most_eval.core.errors import MostEvalError
from most_eval.core.options import OptionError, parse_options, split_pairs
from most_eval.core.task import Task, TaskContext
from most_eval.registry import get_model_class, resolve_tasks
from most_eval.run.outcome import RunOutcome
from most_eval.scoring.paper import PAPER_GROUP_NAMES, REFERENCE_JUDGES, judge_folder, models_folder

#: where the bundled mini suite lives (the default data root)
MINI_SUITE = Path(__file__).resolve().parents[1] / "mini_suite"

Note = Callable[[str], None]


class RunSetupError(MostEvalError):
    """A bad run input found while setting up (a path, a number, a judge, a helper model); one line."""


class NoDatasetsError(MostEvalError):
    """The data root holds none of the selected tasks' datasets: nothing could be measured, so no model is loaded."""


def has_dataset(task: Task) -> bool:
    """Whether the task's dataset is where it reads it from (its ``source=PATH``, else its folder under the data
    root); a task without a dataset folder (text benchmarks) always has one."""
    source = getattr(task.options, "source", None)
    if source:
        return Path(source).exists()
    if not task.dataset_folder:
        return True
    try:
        return task.root.is_dir()
    except MostEvalError:  # e.g. no cv-corpus-* folder at all
        return False


def check_datasets(tasks: list[Task], data_root: Path) -> None:
    """NoDatasetsError when not one selected task finds its dataset (a typo'd or empty --data-root): said before
    the model loads. Some missing is not an error here: those tasks report a dataset error and the others run."""
    if tasks and not any(has_dataset(t) for t in tasks):
        folders = ", ".join(dict.fromkeys(f"{t.dataset_folder}/" for t in tasks if t.dataset_folder))
        raise NoDatasetsError(f"--data-root {data_root} holds none of the selected tasks' datasets (expected "
                              f"{folders}): fetch them with `most-eval data download NAME` (`most-eval data list`) "
                              f"or see docs/datasets.md for each layout")


def build_model(name: str, args: str | dict | None, device: str = "cpu", seed: int = 0) -> Model:
    """:func:`most_eval.registry.build_model`, its build failures as a RunSetupError (one line)."""
    from most_eval.registry import ModelBuildError, build_model as build

    try:
        return build(name, args, device, seed)
    except ModelBuildError as exc:
        raise RunSetupError(str(exc)) from exc


def default_judge(device: str, seed: int, note: Note) -> Model:
    """Whisper-large-v3 when a local copy is configured (``MOST_EVAL_JUDGE_PATH``), else the offline baseline (with
    a note that its numbers are not the paper's)."""
    path = os.environ.get("MOST_EVAL_JUDGE_PATH")
    if path:
        return build_model("hf-whisper", f"path={path}", device, seed)
    note("judge ASR = offline-baseline (pocketsphinx): TTS and speech-to-speech QA numbers are not comparable with "
         "the paper; for the reference judges pass --judge paper --judge-args models=DIR (or set $MOST_EVAL_MODELS)")
    return build_model("offline-baseline", None, device, seed)


def paper_judge_folders(task_classes: list[type[Task]], judge_args: str | None) -> dict[str, Path]:
    """``--judge paper``: the reference judge's local folder for each task that needs a judge (checked to exist)."""
    models = models_folder(judge_args)
    folders = {}
    for cls in task_classes:
        if "judge" not in cls.needs:
            continue
        if cls.reference_judge not in REFERENCE_JUDGES:
            raise RunSetupError(f"--judge paper: task {cls.name} names no reference judge")
        try:
            folders[cls.name] = judge_folder(REFERENCE_JUDGES[cls.reference_judge], models)
        except ValueError as exc:
            raise RunSetupError(str(exc)) from None
    return folders


def build_tasks(spec: str | list[str], data_root: Path, task_args: str | None, context: TaskContext,
                embedder: str | None, num_fewshot: int | None = None) -> list[Task]:
    """Task instances for ``--tasks`` with their typed options; ``--task-args`` keys go to the tasks that have them
    (``--embedder`` and lm-eval's ``--num_fewshot`` are task args with their own flags)."""
    classes = resolve_tasks(spec)
    raw = split_pairs(task_args or "")
    if embedder:
        raw["embedder"] = embedder
    if num_fewshot is not None:
        if not any("num_fewshot" in getattr(c.Options, "__dataclass_fields__", {}) for c in classes):
            raise OptionError(f"--num_fewshot {num_fewshot}: only text:<lm-eval task> tasks take it")
        if raw.get("num_fewshot", str(num_fewshot)) != str(num_fewshot):
            raise OptionError(f"--num_fewshot {num_fewshot} and --task-args num_fewshot={raw['num_fewshot']} differ")
        raw["num_fewshot"] = str(num_fewshot)
    known = set()
    tasks = []
    for cls in classes:
        fields = set(getattr(cls.Options, "__dataclass_fields__", {}))
        known |= fields
        mine = {k: v for k, v in raw.items() if k in fields}
        tasks.append(cls(data_root, parse_options(mine, cls.Options, what=f"--task-args key for {cls.name}"), context))
    unknown = set(raw) - known
    if unknown:
        raise OptionError(f"--task-args key(s) {', '.join(sorted(unknown))} not used by any selected task "
                          f"(their keys: {', '.join(sorted(known)) or 'none'})")
    return tasks


def build_embedders(tasks: list[Task], device: str) -> dict:
    """The speaker embedder of each distinct ``embedder`` option among the tasks that need one (TTS SIM), built once;
    the caller lends each task its own through ``TaskContext.embedder``. A folder that holds no such model is a
    RunSetupError (one line)."""
    from most_eval.models.speaker_embedders import build_embedder

    built = {}
    for spec in dict.fromkeys(t.options.embedder for t in tasks if "embedder" in t.needs):
        try:
            built[spec] = build_embedder(spec, device)
        except Exception as exc:  # a folder that is not that embedder's: one line, before any model work
            raise RunSetupError(f"--embedder {spec}: cannot load it: {type(exc).__name__}: "
                                f"{' '.join(str(exc).split())}") from exc
    return built


def build_mos_scorers(tasks: list[Task]) -> dict:
    """The speech-quality scorer of each distinct ``mos`` option among the tasks that generate speech, built once
    (None for ``mos=none``); a scorer that cannot be built is one line, before any model work."""
    from most_eval.models.speech_quality import build_mos

    built = {}
    for spec in dict.fromkeys(t.options.mos for t in tasks if "mos" in t.needs):
        try:
            built[spec] = build_mos(spec)
        except Exception as exc:
            raise RunSetupError(f"--task-args mos={spec}: {exc}") from None
    return built


def check_run_paths(output: Path, data_root: Path, task_classes: list[type[Task]], embedder: str | None) -> None:
    """Output folder, data root and embedder checked before any model work; RunSetupError (one line) otherwise."""
    if output.exists() and not output.is_dir():
        raise RunSetupError(f"--output {output}: is a file, not a folder")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunSetupError(f"--output {output}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(output, os.W_OK | os.X_OK):
        raise RunSetupError(f"--output {output}: folder is not writable")
    link = output_symlink(output)
    if link is not None:
        raise RunSetupError(f"--output {output}: {link} is a symbolic link; a run writes only inside its output "
                            f"folder (remove the link)")
    if any(c.dataset_folder for c in task_classes) and not data_root.is_dir():
        raise RunSetupError(f"--data-root {data_root}: " + ("is not a folder" if data_root.exists() else "not found"))
    kind, _, path = (embedder or "").partition(":")
    if path and not Path(path).expanduser().exists():
        raise RunSetupError(f"--embedder {embedder}: {path} not found (a local {kind} model folder is needed)")


#: the folders a run writes under its output folder
OUTPUT_FOLDERS = ("samples", "cache", "audio", "zerospeech", "data")


def output_symlink(output: Path) -> Path | None:
    """The first symbolic link at or under the folders a run writes into (:data:`OUTPUT_FOLDERS`), else None: a link
    there would lead the run's writes (cache appends, generated audio, extracted data) out of ``output``."""
    for name in OUTPUT_FOLDERS:
        top = output / name
        if top.is_symlink():
            return top
        for folder, subfolders, files in os.walk(top):
            for entry in (*subfolders, *files):
                if os.path.islink(os.path.join(folder, entry)):
                    return Path(folder) / entry
    return None


def check_device(device: str) -> None:
    """``--device`` names a device this torch can use (cpu, cuda[:N], mps); RunSetupError (one line) otherwise,
    before anything loads: a CPU build asked for CUDA says how to install one, not torch's AssertionError."""
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not index.isdigit()) or (kind != "cuda" and index):
        raise RunSetupError(f"--device {device}: use cpu, cuda, cuda:N or mps")
    if kind == "cpu":
        return
    import torch

    if kind == "mps":
        if not torch.backends.mps.is_available():
            raise RunSetupError(f"--device mps: this machine or this torch ({torch.__version__}) has no MPS")
        return
    if not torch.version.cuda:
        raise RunSetupError(f"--device {device}: this torch ({torch.__version__}) is built without CUDA; install a "
                            f"CUDA build with `bash install.sh --gpu` (docs/install.md)")
    count = torch.cuda.device_count()
    if count == 0 or (index and int(index) >= count):
        raise RunSetupError(f"--device {device}: {count} CUDA GPU(s) visible to torch {torch.__version__} (CUDA "
                            f"{torch.version.cuda}); check the driver and CUDA_VISIBLE_DEVICES")


def check_numbers(limit: int | None, batch_size: int, seed: int,
                  max_audio_seconds: float = DEFAULT_MAX_SECONDS) -> None:
    """Numeric options in range, before anything loads; RunSetupError (one line) otherwise."""
    if not max_audio_seconds > 0 or max_audio_seconds == float("inf"):
        raise RunSetupError(f"--max-audio-seconds {max_audio_seconds}: must be a positive number of seconds")
    if limit is not None and limit < 1:
        raise RunSetupError(f"--limit {limit}: must be at least 1")
    if batch_size < 1:
        raise RunSetupError(f"--batch-size {batch_size}: must be at least 1")
    if seed < 0:
        raise RunSetupError(f"--seed {seed}: must be 0 or more")


def run_seeds_option(seeds: str | list[int] | None, seed: int) -> list[int] | None:
    """``--seeds`` as a list of seeds, or None for a run of one seed: a text is read by
    :func:`~most_eval.results.seeds.parse_seeds` (a count from ``seed`` on, or seeds separated by commas), a list
    (the Python API) is taken as the seeds themselves. RunSetupError (one line) for a bad value."""
    from most_eval.results.seeds import parse_seeds

    if seeds is None:
        return None
    try:
        if isinstance(seeds, (list, tuple)):
            if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds) \
                    or len(set(seeds)) != len(seeds):
                raise ValueError(f"seeds {list(seeds)!r}: give distinct whole numbers >= 0")
            return list(seeds)
        return parse_seeds(str(seeds), seed)
    except ValueError as exc:
        raise RunSetupError(str(exc)) from None


def failed_tasks(document: dict) -> list[tuple[str, str]]:
    """(task, why) for every task that ran badly: error records, a scoring or dataset error, nothing scored."""
    failed = []
    for name, res in document["results"].items():
        if res.get("status") == "not supported":
            continue
        if res.get("status"):
            failed.append((name, f"{res['status']}: {res.get('detail', '')}"))
        elif res.get("errors"):
            failed.append((name, f"{res['errors']} error record(s)"))
        elif not res.get("scored"):
            failed.append((name, "no sample was scored"))
    return failed


def unmeasured_tasks(document: dict, names: list[str]) -> list[tuple[str, str]]:
    """(task, why) for each of this run's ``names`` that ran and measured nothing: a dataset or scoring error, or
    not one sample scored (every sample an error record). The run then exits 1 whatever its flags; a task the model
    does not support is not among them (``--strict`` is about those)."""
    out = []
    for name in names:
        res = document["results"].get(name, {})
        if res.get("status") == "not supported":
            continue
        if res.get("status"):
            out.append((name, f"{res['status']}: {res.get('detail', '')}"))
        elif not res.get("scored"):
            out.append((name, f"no sample was scored ({res.get('errors', 0)} error record(s))"))
    return out


@dataclasses.dataclass
class JudgePlan:
    """Which judge ASR the tasks get: each task's reference judge (``paper``), one named judge, or the default."""

    needed: bool  # some task transcribes generated speech
    paper: bool  # --judge paper (or a paper group, which implies it)
    folders: dict[str, Path]  # task -> reference judge folder, with ``paper``
    name: str | None  # the named judge, else None (the default judge)
    args: str | None


def plan_judges(task_classes: list[type[Task]], tasks: str | list[str], judge: str | None,
                judge_args: str | None) -> JudgePlan:
    """The judge set-up for these tasks, every name, key and folder checked before any model is built."""
    names = tasks.split(",") if isinstance(tasks, str) else list(tasks)
    needed = any("judge" in c.needs for c in task_classes)
    paper = needed and (judge == "paper" or (  # a paper group implies --judge paper
        judge is None and any(p.strip().lower() in PAPER_GROUP_NAMES for p in names)))
    folders = paper_judge_folders(task_classes, judge_args) if paper else {}
    if judge_args and not judge and not paper:
        raise RunSetupError("--judge-args needs --judge NAME: the default judge (offline-baseline, or hf-whisper "
                            "from $MOST_EVAL_JUDGE_PATH) takes no arguments")
    if judge and judge != "paper" and not paper:
        parse_options(judge_args, get_model_class(judge).Args, what=f"--judge-args key for {judge}")
    return JudgePlan(needed, paper, folders, judge if judge != "paper" else None, judge_args)


def lend_helpers(task_objs: list[Task], context: TaskContext, plan: JudgePlan, device: str, seed: int,
                 note: Note) -> None:
    """Build the helper models once and lend each task its own: speaker embedders and speech-quality scorers first
    (a bad one fails before the judge), spoken QA's LLM judge, then the judge ASR(s)."""
    embedders = build_embedders(task_objs, device)
    mos_scorers = build_mos_scorers(task_objs)
    judge_lms = {getattr(t.options, "judge_lm", None) for t in task_objs
                 if getattr(t.options, "scorer", None) == "llm-judge"}
    if judge_lms:  # spoken QA's optional LLM judge: a helper model the task borrows from its context
        if len(judge_lms) > 1:
            raise RunSetupError(f"one --task-args judge_lm per run, got {', '.join(sorted(map(str, judge_lms)))}")
        context.llm_judge = build_model("hf-causal-lm", f"path={judge_lms.pop()}", device, seed)
    if plan.paper:  # each task its protocol's judge, each judge built once
        built: dict[Path, Model] = {}
        for task in task_objs:
            if task.name in plan.folders:
                folder = plan.folders[task.name]
                if folder not in built:
                    adapter = REFERENCE_JUDGES[type(task).reference_judge].adapter
                    built[folder] = build_model(adapter, f"path={folder}", device, seed)
                task.context = dataclasses.replace(context, judge=built[folder])
    elif plan.needed:  # the judge before the model: a bad judge fails before any model work
        context.judge = (build_model(plan.name, plan.args, device, seed) if plan.name
                         else default_judge(device, seed, note))
    for task in task_objs:  # each task's own context: the judge wiring above may share one among tasks
        if "embedder" in task.needs:
            task.context = dataclasses.replace(task.context, embedder=embedders[task.options.embedder])
        if "mos" in task.needs:
            task.context = dataclasses.replace(task.context, mos=mos_scorers[task.options.mos])


def run_evaluation(model: str | Model, tasks: str | list[str], *, model_args: str | dict | None = None,
                   output: Path | None = None, data_root: Path | None = None, limit: int | None = None,
                   batch_size: int = 8, device: str = "cpu", seed: int = 0, judge: str | None = None,
                   judge_args: str | None = None, embedder: str | None = None, task_args: str | None = None,
                   num_fewshot: int | None = None, use_cache: bool = True, show_progress: bool = False,
                   max_audio_seconds: float = DEFAULT_MAX_SECONDS, run_name: str | None = None,
                   verbose: bool = False, console=None, command: str | None = None,
                   note: Note | None = None, seeds: str | list[int] | None = None) -> RunOutcome | None:
    """Check every input, build the helpers and the model, run the tasks (see the module docstring); the outcome,
    or None on a rank other than 0 (its shard is in the cache). ``model`` is a registry name or a built
    :class:`~most_eval.core.adapter.Model` (then ``model_args`` must be None). ``seeds``: ``--seeds`` (a count,
    ``"0,1,2"`` or a list): the tasks that generate run once per seed. Bad input raises a one-line
    :class:`~most_eval.core.errors.MostEvalError` (UnknownNameError, OptionError, DatasetError, RunSetupError)."""
    from most_eval.core import hf_loading
    from most_eval.run import distributed, runner
    from most_eval.run.output_lock import OutputBusy, OutputLock

    note = note or (lambda text: None)
    hf_loading.offline_unless_opted_in()  # before anything imports huggingface_hub: no network unless opted in
    name = model if isinstance(model, str) else model.name
    output = Path(output) if output is not None else Path("runs") / name
    data_root = Path(data_root) if data_root is not None else MINI_SUITE
    lock = OutputLock(output)
    dist = None
    try:
        check_numbers(limit, batch_size, seed, max_audio_seconds)
        seed_list = run_seeds_option(seeds, seed)
        check_device(device)
        dist, device = distributed.init_distributed(device)
        hf_loading.configure_output(verbose=verbose and dist.is_main)  # before any model (and transformers) import
        task_classes = resolve_tasks(tasks)
        if isinstance(model, str):  # an unknown model name or --model-args key before anything else
            parse_options(model_args, get_model_class(model).Args, what=f"--model-args key for {model}")
        elif model_args is not None:
            raise RunSetupError("model_args: only for a model given by name, not a built Model")
        plan = plan_judges(task_classes, tasks, judge, judge_args)
        context = TaskContext(output_dir=output, device=device, batch_size=batch_size, seed=seed,
                              max_audio_seconds=max_audio_seconds)
        task_objs = build_tasks(tasks, data_root, task_args, context, embedder, num_fewshot=num_fewshot)
        refusal = None
        if dist.is_main:  # rank 0 checks and locks; every rank learns the verdict (none is left waiting)
            try:
                check_run_paths(output, data_root, task_classes, embedder)
                lock.acquire()
            except (OutputBusy, RunSetupError) as exc:
                refusal = str(exc)
        if not dist.all_agree(refusal is None):
            raise RunSetupError(refusal or f"{output}: rank 0 could not take the output folder")
        check_datasets(task_objs, data_root)
        lend_helpers(task_objs, context, plan, device, seed, note)
        the_model = build_model(model, model_args, device, seed) if isinstance(model, str) else model
        return runner.run_tasks(the_model, task_objs, output, batch_size=batch_size, limit=limit, seed=seed,
                                show_progress=show_progress, console=console, command=command, dist=dist,
                                use_cache=use_cache, data_root=data_root, run_name=run_name, seeds=seed_list)
    finally:
        lock.release()
        distributed.finish_distributed()
