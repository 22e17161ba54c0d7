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
    assert "most_eval.runner" in GRAPH and "most_eval_tasks.tts.task" in GRAPH and "most_reference.model" in GRAPH
    assert "most_eval.adapter" in GRAPH["most_eval.models.dummy"]  # relative and absolute imports both resolve
    assert "most_reference.model" in GRAPH["most_reference.adapter"]


def test_no_task_imports_a_model_adapter():
    assert _edges("most_eval_tasks", ("most_eval.models",)) == []


def test_no_model_imports_the_runner_or_the_results_writer():
    models = ("most_eval.models", "most_reference.adapter")
    edges = [e for prefix in models for e in _edges(prefix, ("most_eval.runner", "most_eval.results"))]
    assert edges == []


def test_no_library_code_imports_the_cli():
    cli = ("most_eval.cli", "most_eval.__main__")
    edges = [e for prefix in ("most_eval", "most_eval_tasks", "most_reference")
             for e in _edges(prefix, cli, exempt=("most_eval.cli", "most_eval.cli_data", "most_eval.cli_leaderboard",
                                                   "most_eval.__main__"))]
    assert edges == []
