"""Data flows one way (CLI -> registry -> runner -> adapter -> task scoring -> results -> leaderboard / check): the
import graph of the source tree, read from every module's import statements (top level and inside functions),
has no circle and no edge that goes back up the layers of :data:`LAYERS`."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"most_eval": REPO / "most_eval", "most_eval_tasks": REPO / "tasks", "most_reference": REPO / "reference_impl"}


def _modules() -> dict[str, Path]:
    """Import name -> file, for every module of the three packages."""
    out = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            out[".".join((package, *parts))] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports (absolute and relative, wherever the statement is)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


GRAPH = {name: _imports(name, path) for name, path in _modules().items()}


def _edges(source_prefix: str, target_prefixes: tuple[str, ...], exempt: tuple[str, ...] = ()) -> list[str]:
    return sorted(f"{src} -> {dst}" for src, deps in GRAPH.items()
                  if src.startswith(source_prefix) and src not in exempt
                  for dst in deps if dst.startswith(target_prefixes))


def test_the_graph_is_read():
    assert "most_eval.run.runner" in GRAPH and "most_eval_tasks.tts.task" in GRAPH and "most_reference.model" in GRAPH
    assert "most_eval.core.adapter" in GRAPH["most_eval.models.dummy"]  # relative and absolute imports both resolve
    assert "most_reference.model" in GRAPH["most_reference.adapter"]


def test_no_task_imports_a_model_adapter():
    assert _edges("most_eval_tasks", ("most_eval.models",)) == []


def test_no_model_imports_the_runner_or_the_results_writer():
    models = ("most_eval.models", "most_reference.adapter")
    edges = [e for prefix in models for e in _edges(prefix, ("most_eval.run.runner", "most_eval.results.store"))]
    assert edges == []


def test_no_library_code_imports_the_cli():
    cli = ("most_eval.cli", "most_eval.__main__")
    edges = [e for prefix in ("most_eval", "most_eval_tasks", "most_reference")
             for e in _edges(prefix, cli) if not e.startswith(cli)]
    assert edges == []


# ------------------------------------------------------------------------------------------------- the layer map

#: every module's layer, lowest first: (import-name prefix, rank); the first matching prefix decides. A module may
#: import its own layer and the layers below it, never one above. ``most_reference`` (the MoST reference
#: implementation) and ``most_eval_tasks`` are plugins beside the model adapters; ``most_reference.commands`` is the
#: reference implementation's own subcommands, at the command-line level (it still never imports the CLI).
LAYERS = (
    ("most_eval.core", 0),  # contracts: adapter, task, audio, options, errors, fingerprints, HF loading
    ("most_eval.data", 1),  # dataset files, tables, corpus readers, catalog / download / extract / verify
    ("most_eval.scoring", 2),  # WER, bootstrap, comparability, the paper's tables
    ("most_eval.models", 3),  # adapters
    ("most_eval_tasks", 3),  # task families
    ("most_reference.commands", 8),  # `most-eval train` / `routing`
    ("most_reference", 3),  # the MoST model, data and training recipe
    ("most_eval.results", 4),  # the results store, runs reader, table, efficiency
    ("most_eval.registry", 5),  # name -> class
    ("most_eval.run", 6),  # runner, cache, distributed, output lock, run set-up
    ("most_eval.report", 7),  # compare, check, leaderboard
    ("most_eval.api", 8),  # evaluate / load_model / list_tasks
    ("most_eval.cli", 9),
    ("most_eval.__main__", 9),
    ("most_eval", 0),  # the package itself: its version and lazy API names
)


def _rank(module: str) -> int:
    return next(rank for prefix, rank in LAYERS if module == prefix or module.startswith(prefix + "."))


def _module_edges() -> dict[str, set[str]]:
    """Module -> the modules it imports (names resolved to the module that defines them; an import of a module's
    own parent package, which Python runs anyway, is not an edge)."""
    def resolve(name: str) -> str | None:
        while name and name not in GRAPH:
            name = name.rpartition(".")[0]
        return name or None

    edges = {}
    for src, deps in GRAPH.items():
        targets = {resolve(d) for d in deps} - {None, src}
        edges[src] = {t for t in targets if not src.startswith(t + ".")}
    return edges


EDGES = _module_edges()


def test_every_module_has_a_layer_and_the_packages_are_few():
    """Each module is in a layer; at most four modules lie directly in most_eval/, the rest in subpackages."""
    assert all(isinstance(_rank(m), int) for m in GRAPH)
    top = sorted(p.name for p in PACKAGES["most_eval"].glob("*.py"))
    assert len(top) <= 4, top
    assert {"core", "data", "scoring", "models", "results", "run", "report", "cli"} <= {
        p.name for p in PACKAGES["most_eval"].iterdir() if (p / "__init__.py").is_file()}


def _upward(edges: dict[str, set[str]]) -> list[str]:
    """Every edge from a module to one of a higher layer."""
    return sorted(f"{src} ({_rank(src)}) -> {dst} ({_rank(dst)})" for src, dsts in edges.items() for dst in dsts
                  if _rank(dst) > _rank(src))


def test_no_import_goes_up_a_layer():
    assert _upward(EDGES) == []


def test_the_check_sees_an_upward_edge():
    """The rule is not vacuous: a planted upward edge is found; a downward one and one inside a layer are not (tasks
    -> models is caught by the task rule below)."""
    planted = {"most_eval.core.task": {"most_eval.registry"}, "most_eval_tasks.asr": {"most_eval.models.dummy"},
               "most_eval.models.dummy": {"most_eval.core.adapter"}}
    assert _upward(planted) == ["most_eval.core.task (0) -> most_eval.registry (5)"]
    assert "most_eval.core.adapter" in EDGES["most_eval.models.dummy"]  # a real edge, downward


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the finder finds one
    assert _cycles(EDGES) == []


def test_tasks_import_only_core_data_and_scoring():
    """Task families read datasets and score; they never import model adapters, the registry, the runner, the results
    store, the reports, the CLI or the MoST reference implementation."""
    allowed = ("most_eval.core", "most_eval.data", "most_eval.scoring", "most_eval_tasks")
    bad = sorted(f"{src} -> {dst}" for src, dsts in EDGES.items() if src.startswith("most_eval_tasks")
                 for dst in dsts if not dst.startswith(allowed))
    assert bad == []


def test_the_reference_implementation_never_imports_tasks_nor_the_cli():
    """most_reference reads its data through most_eval.data (the corpus readers), uses the adapter contract and the
    CausalTextLM library class, and registers its subcommands by entry point, not by importing the CLI."""
    assert _edges("most_reference", ("most_eval_tasks", "most_eval.cli")) == []
    core = sorted(f"{src} -> {dst}" for src, dsts in EDGES.items()
                  if src.startswith("most_reference") and src != "most_reference.commands"
                  for dst in dsts if dst.startswith(("most_eval.run", "most_eval.report", "most_eval.api",
                                                     "most_eval.registry", "most_eval.results")))
    assert core == []


def test_the_reference_subcommands_come_through_their_entry_point_group():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["most_eval.commands"] == {
        "train": "most_reference.commands:train_command", "routing": "most_reference.commands:routing_command"}
    assert not [e for e in _edges("most_eval", ("most_reference",))]


def test_one_base_error_class():
    """Every exception class the packages define for users derives from MostEvalError (private retry signals
    aside)."""
    from most_eval.core.errors import MostEvalError
    import importlib

    found = []
    for module, tree in TREES.items():
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Refused", "Busy", "Failed",
                                                                          "NotComparable")):
                found.append((module, node.name))
    assert len(found) >= 10
    for module, name in found:
        if name.startswith("_"):
            continue
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, MostEvalError), f"{module}.{name}"


def test_no_source_file_over_600_lines():
    sources = [p for root in (*PACKAGES.values(), REPO / "scripts", REPO / "benchmarks") for p in root.rglob("*.py")]
    long = sorted(f"{p.relative_to(REPO)}: {n}" for p in sources
                  if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600)
    assert long == []


def test_readers_of_results_files_import_no_task_classes_nor_the_runner():
    """The leaderboard and the run comparison place and compare numbers from results.json alone (a task's paper cell
    is recorded there), so they never import task classes, the registry or the runner."""
    readers = ("most_eval.report.leaderboard.build", "most_eval.report.comparison", "most_eval.results.store")
    below = ("most_eval_tasks", "most_eval.registry", "most_eval.run.runner", "most_eval.models")
    assert [e for r in readers for e in _edges(r, below)] == []


# ------------------------------------------------------------------------------------------- one definition each

def _trees() -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in _modules().items()}


TREES = _trees()


def _defined(names: set[str]) -> dict[str, list[str]]:
    """Module-level functions, classes and assigned constants among ``names`` -> the modules defining them."""
    found: dict[str, list[str]] = {}
    for module, tree in TREES.items():
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                targets = [node.name]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                nodes = node.targets if isinstance(node, ast.Assign) else [node.target]
                targets = [t.id for t in nodes if isinstance(t, ast.Name)]
            else:
                continue
            for target in targets:
                if target in names:
                    found.setdefault(target, []).append(module)
    return found


def test_the_results_format_is_defined_only_in_results_py():
    """results.json has one definition: its loader, error type and format constants live in most_eval.results.store
    (the leaderboard and the run comparison import them), and no other module spells the format name."""
    names = {"load_results", "ResultsFileError", "RESULTS_FORMAT", "RESULTS_FORMAT_VERSION", "RESULTS_FORMAT_VERSIONS"}
    assert _defined(names) == {name: ["most_eval.results.store"] for name in names}
    spelled = sorted(module for module, tree in TREES.items() for node in ast.walk(tree)
                     if isinstance(node, ast.Constant) and node.value == "most-eval-results")
    assert spelled == ["most_eval.results.store"]


def _draws_resample_indices(node: ast.AST) -> bool:
    """A call ``<rng>.integers(..., size=(B, n))``: a matrix of resampled positions, the heart of a bootstrap."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "integers"
            and any(k.arg == "size" and isinstance(k.value, ast.Tuple) and len(k.value.elts) == 2
                    for k in node.keywords))


def _bootstrap_functions_that_draw_or_take_percentiles(tree: ast.Module) -> list[str]:
    """Functions named like a bootstrap that draw random numbers or take percentiles themselves."""
    own = {"integers", "choice", "percentile", "nanpercentile", "quantile", "nanquantile"}
    out = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef) and ("bootstrap" in fn.name or "resampl" in fn.name):
            calls = {n.func.attr for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
            if calls & own:
                out.append(fn.name)
    return out


def test_one_bootstrap_resampling_loop():
    """Every interval (a run's WER CI, the paired delta of compare/check) comes from most_eval.scoring.bootstrap:
    no other module draws resample index matrices or has a bootstrap function of its own that draws or takes
    percentiles."""
    loops = sorted(module for module, tree in TREES.items() if any(map(_draws_resample_indices, ast.walk(tree))))
    assert loops == ["most_eval.scoring.bootstrap"]  # found there: the check sees what it looks for
    own = {module: names for module, tree in TREES.items()
           if (names := _bootstrap_functions_that_draw_or_take_percentiles(tree))}
    assert own == {"most_eval.scoring.bootstrap": ["resample"]}
