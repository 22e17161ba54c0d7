"""Data flows one way (CLI -> registry -> runner -> adapter -> task scoring -> results -> leaderboard / check): the
import graph of the source tree, read from every module's import statements (top level and inside functions),
has no edge that goes back up."""

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
             for e in _edges(prefix, cli, exempt=("most_eval.cli", "most_eval.cli_data", "most_eval.cli_leaderboard",
                                                   "most_eval.__main__"))]
    assert edges == []


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
