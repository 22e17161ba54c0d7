"""Name -> class lookup for models and task families.

Both come from entry points (``most_eval.models``: ``name = "module:Class"``; ``most_eval.tasks``:
``family = "module:FAMILY"``), loaded lazily so a heavy backend is imported only when it is used, plus anything
registered in-process with :func:`register_model` / :func:`register_family`. A name clash is an error; an unknown
name raises :class:`UnknownNameError` whose message lists the close matches.

:func:`model_info` describes a model (capabilities, description) from its module's source when that module is not
imported yet, so ``most-eval list models`` never imports torch or transformers: a backend's heavy imports happen
only when one of its models is built.
"""

from __future__ import annotations

import ast
import difflib
import re
import functools
import importlib.util
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from most_eval.core.adapter import CAPABILITIES, Model
from most_eval.core.task import TaskFamily, Task
from most_eval.core.errors import ModelFilesError, MostEvalError

MODEL_GROUP = "most_eval.models"
TASK_GROUP = "most_eval.tasks"

_models: dict[str, type[Model]] = {}
_families: dict[str, TaskFamily] = {}
_broken: dict[str, str] = {}  # entry points that failed to load: name -> reason


class UnknownNameError(MostEvalError, KeyError):
    """An unknown model or task name; ``str()`` is one line with the close matches."""

    def __init__(self, what: str, name: str, known: list[str]):
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(known)[:12])}"
        self.message = f"unknown {what} {name!r}{hint}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def register_model(cls: type[Model] | None = None, *, name: str | None = None):
    """Class decorator registering a model under ``name`` (default ``cls.name``)."""

    def wrap(model_cls: type[Model]) -> type[Model]:
        key = name or model_cls.name
        if key in _models and _models[key] is not model_cls:
            raise ValueError(f"model name {key!r} is already registered by {_models[key].__qualname__}")
        _models[key] = model_cls
        return model_cls

    return wrap(cls) if cls is not None else wrap


def register_family(family: TaskFamily) -> TaskFamily:
    """Register a task family in-process (third-party packages use the entry-point group instead)."""
    if family.name in _families and _families[family.name] is not family:
        raise ValueError(f"task family {family.name!r} is already registered")
    _families[family.name] = family
    return family


@functools.lru_cache(maxsize=None)
def _entry_points(group: str):
    """Name -> entry point of ``group``; read once per process (each scan of the installed packages costs ~30 ms)."""
    return {ep.name: ep for ep in entry_points(group=group)}


def model_names() -> list[str]:
    """All model names, registered or discoverable."""
    return sorted(set(_models) | set(_entry_points(MODEL_GROUP)))


def canonical_name(name: str, known) -> str:
    """``name`` as registered when it differs only in case from exactly one known name (``MoST`` -> ``most``,
    ``ASR`` -> ``asr``), else ``name`` itself."""
    if name in known:
        return name
    matches = [k for k in known if k.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else name


def get_model_class(name: str) -> type[Model]:
    """The model class registered as ``name``, whatever its case (imports its module on first use)."""
    if name not in _models:
        eps = _entry_points(MODEL_GROUP)
        name = canonical_name(name, list(eps))
        if name in _models:
            return _models[name]
        if name not in eps:
            raise UnknownNameError("model", name, model_names())
        cls = eps[name].load()
        cls.name = cls.name or name
        _models[name] = cls
    return _models[name]


@dataclass(frozen=True)
class ModelInfo:
    """What ``most-eval list models`` shows of one model."""

    name: str
    capabilities: frozenset[str] | None  # None: decided per instance from its files (e.g. precomputed)
    description: str


def model_info(name: str) -> ModelInfo:
    """Capabilities and description of ``name``; read from its module's source, without importing it, when the
    module is not imported yet and its class is plain enough to read (else the class is imported)."""
    if name not in _models:
        eps = _entry_points(MODEL_GROUP)
        if name not in eps:
            raise UnknownNameError("model", name, model_names())
        module, _, attr = eps[name].value.partition(":")
        if module.strip() not in sys.modules:
            info = _info_from_source(name, module.strip(), attr.strip())
            if info is not None:
                return info
    cls = get_model_class(name)
    own = cls.__dict__.get("capabilities")
    caps = cls.capabilities() if own is None or isinstance(own, classmethod) else None
    return ModelInfo(name, caps, cls.description)


def _module_classes(module: str) -> tuple[dict[str, ast.ClassDef], dict[str, tuple[str, str]]] | None:
    """The top-level classes of ``module``'s source and its ``from X import Name`` imports (name -> (X, Name),
    relative imports resolved), without importing it; None when its source cannot be read."""
    try:
        spec = importlib.util.find_spec(module)
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except Exception:  # no spec, no source file, a syntax error: importing will say what is wrong
        return None
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    imports = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{source}" if source else base
            for alias in node.names:
                imports[alias.asname or alias.name] = (source, alias.name)
    return classes, imports


def _info_from_source(name: str, module: str, attr: str) -> ModelInfo | None:
    """:class:`ModelInfo` from the source of ``module``: the class ``attr`` and the classes it derives from (in
    this module or imported by name from others), down to :class:`most_eval.core.adapter.Model`. None when that cannot
    be told without running the code (a computed description, a ``capabilities`` classmethod, an unreadable
    source, a base that is not a plain name)."""
    description, methods, per_instance = None, set(), False
    todo, seen = [(module, attr)], set()
    while todo:  # depth first, bases left to right (Python's lookup order where no class is reached twice)
        where, cls_name = todo.pop(0)
        if (where, cls_name) == ("most_eval.core.adapter", "Model") or (where, cls_name) in seen:
            continue
        seen.add((where, cls_name))
        parsed = _module_classes(where)
        if parsed is None:
            return None
        classes, imports = parsed
        cls = classes.get(cls_name)
        if cls is None:
            if cls_name not in imports:
                return None
            todo.insert(0, imports[cls_name])  # re-exported: follow the import
            continue
        for node in cls.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and description is None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "description" for t in targets):
                    try:
                        description = ast.literal_eval(node.value)
                    except ValueError:
                        return None
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in methods:
                if node.name == "capabilities":
                    if any(isinstance(d, ast.Name) and d.id == "classmethod" for d in node.decorator_list):
                        return None  # computed by the class: import it
                    per_instance = True
                methods.add(node.name)
        bases = []
        for base in cls.bases:
            if not isinstance(base, ast.Name):
                return None
            bases.append(imports.get(base.id, (where, base.id)))
        todo = bases + todo
    caps = None if per_instance else frozenset(c for c in CAPABILITIES if c in methods)
    return ModelInfo(name, caps, description if isinstance(description, str) else "")


def families() -> dict[str, TaskFamily]:
    """Every task family, loading entry points on first use."""
    for name, ep in _entry_points(TASK_GROUP).items():
        if name not in _families and name not in _broken:
            try:
                family = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                _broken[name] = f"{ep.value}: {type(exc).__name__}: {exc}"
                continue
            _families[family.name] = family
    return dict(_families)


def paper_groups() -> dict[str, tuple[str, ...]]:
    """The paper's tables as ``--tasks`` groups (most_eval.scoring.paper.PAPER_TABLE_GROUPS), each the tasks whose
    ``leaderboard`` slot names that table, in registration order; ``paper`` is every table's tasks."""
    from most_eval.scoring.paper import ALL_PAPER_TABLES, PAPER_TABLE_GROUPS

    by_table: dict[str, list[str]] = {table: [] for table in PAPER_TABLE_GROUPS}
    for fam in families().values():
        for name, cls in fam.tasks.items():
            if cls.leaderboard is not None and cls.leaderboard.table in by_table:
                by_table[cls.leaderboard.table].append(name)
    groups = {PAPER_TABLE_GROUPS[table]: tuple(names) for table, names in by_table.items()}
    groups[ALL_PAPER_TABLES] = tuple(name for names in by_table.values() for name in names)
    return groups


def resolve_tasks(spec: str | list[str]) -> list[type[Task]]:
    """Expand ``"asr,slm:swuggy-dev"`` (family names select their defaults; ``paper``, ``paper-asr-tts``, ... the
    tasks behind the paper's tables) into task classes, de-duplicated."""
    parts = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec) if p.strip()]
    groups = paper_groups()
    parts = [name for p in parts for name in groups.get(p, (p,))]  # the paper's tables as task groups
    fams = families()
    all_tasks = {name: cls for fam in fams.values() for name, cls in fam.tasks.items()}
    chosen: dict[str, type[Task]] = {}
    known = [*fams, *all_tasks, *groups]
    for part in parts:
        family, colon, rest = part.partition(":")
        if colon and family.lower() in fams and fams[family.lower()].dynamic and f"{family}:{rest}" not in all_tasks:
            part = f"{family.lower()}:{rest}"  # text:<lm-eval task>: the family in any case, lm-eval's name as it is
        part = canonical_name(part, known)
        if part in groups:  # a paper group named in another case
            for name in groups[part]:
                chosen.setdefault(name, all_tasks[name])
            continue
        if part in fams:
            for name in fams[part].defaults:
                chosen.setdefault(name, fams[part].tasks[name])
        elif part in all_tasks:
            chosen.setdefault(part, all_tasks[part])
        elif ":" in part and part.split(":")[0] in fams and fams[part.split(":")[0]].dynamic:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", part.split(":", 1)[1]) or ".." in part:
                raise UnknownNameError("task", part, [])  # a task name also names files: one plain name only
            chosen.setdefault(part, fams[part.split(":")[0]].dynamic(part))
        elif part.split(":")[0] in _broken:
            raise UnknownNameError("task", part, []) from RuntimeError(_broken[part.split(":")[0]])
        else:
            raise UnknownNameError("task", part, list(all_tasks) + list(fams) + list(groups))
    if not chosen:
        raise UnknownNameError("task", spec if isinstance(spec, str) else ",".join(spec), list(fams))
    return list(chosen.values())


class ModelBuildError(MostEvalError):
    """A model that could not be built from its name and ``--model-args``; ``str()`` is one line."""


def build_model(name: str, args: str | dict | None, device: str = "cpu", seed: int = 0) -> Model:
    """Instantiate a registered model with typed ``--model-args`` (the one place models are built: the CLI, the
    lm-eval bridge and helper models all come here). UnknownNameError / OptionError for bad names and keys,
    ModelBuildError (one line) for anything that fails while building it."""
    from most_eval.core.options import parse_options

    cls = get_model_class(name)
    typed = parse_options(args, cls.Args, what=f"--model-args key for {name}")
    try:
        return cls(typed, device=device, seed=seed)
    except Exception as exc:  # missing checkpoint, bad weights, offline hub id: one line, no traceback
        message = " ".join(str(exc).split())
        raise ModelBuildError(f"model {name}: {message}" if isinstance(exc, ModelFilesError)
                              else f"model {name}: {type(exc).__name__}: {message}") from exc
