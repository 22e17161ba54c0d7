"""``most-eval list tasks|models``: what is registered, readable at 80 columns (narrow terminals get fewer,
wrapping columns; ``--long`` shows them all)."""

from __future__ import annotations

import dataclasses

import typer
from rich.markup import escape
from rich.table import Table

from .common import console
from most_eval.registry import families, model_info, model_names


#: below this terminal width ``list tasks`` shows three columns (task, needs, description) unless ``--long``
WIDE_LISTING = 120


def list_tasks(
    options: bool = typer.Option(False, "--options", help="Show each task's --task-args keys: type, default, meaning.",
                                 show_default="off"),
    long: bool = typer.Option(False, "--long", help="Every column (dataset folder, default) at any terminal width.",
                              show_default=f"on from {WIDE_LISTING} columns"),
):
    """Every task, its family, capability, dataset folder and whether the family runs it by default."""
    if options:
        console.print(task_options_table())
        for fam in sorted(families().values(), key=lambda f: f.name):
            if fam.dynamic:
                console.print(f"{fam.name}:{escape(DYNAMIC_PLACEHOLDER)} is available: {fam.description}, any task "
                              f"name of that harness (e.g. {fam.name}:arc_easy), with the options listed for it above"
                              + ("; --num_fewshot N sets num_fewshot" if fam.name == "text" else ""), highlight=False)
        return
    console.print(tasks_table(long or console.width >= WIDE_LISTING))


def tasks_table(full: bool) -> Table:
    """The task listing: every column when ``full``; else task (``*`` = a default of its family), needs and the
    description, which wraps, so that 80 columns stay readable."""
    table = Table(title="tasks", caption=None if full else "* run by the bare family name; --long: every column")
    columns = ("task", "needs", "dataset folder", "default", "description") if full else ("task", "needs",
                                                                                          "description")
    for col in columns:
        table.add_column(col, no_wrap=col != "description", ratio=1 if col == "description" else None)

    def add(name: str, needs: str, folder: str, default: bool, description: str) -> None:
        if full:
            table.add_row(name, needs, folder, "yes" if default else "", description)
        else:
            table.add_row(name + (" *" if default else ""), needs, description)

    for fam in sorted(families().values(), key=lambda f: f.name):
        for name, cls in sorted(fam.tasks.items()):
            add(name, cls.capability, cls.dataset_folder, name in fam.defaults, cls.description)
        if fam.dynamic:  # e.g. text:<lm-eval task>: any name of the family's harness
            cls = fam.dynamic(f"{fam.name}:{DYNAMIC_PLACEHOLDER}")
            add(escape(cls.name), cls.capability, cls.dataset_folder, False,
                f"{fam.description}: any {DYNAMIC_PLACEHOLDER} (e.g. {fam.name}:arc_easy)")
    return table


#: what a dynamic family's task name stands for in listings (``text:<lm-eval task>``)
DYNAMIC_PLACEHOLDER = "<lm-eval task>"


@dataclasses.dataclass(frozen=True)
class OptionDoc:
    """One ``--task-args`` key of a task's Options dataclass."""

    key: str
    type: str
    default: str
    meaning: str


def option_docs(options_cls: type) -> list[OptionDoc]:
    """The fields of an Options dataclass: type, default and meaning. The meaning is the field's ``help`` metadata,
    else its trailing comment, else the comment lines right above it, looked up through the dataclass's bases (a
    subclass that only changes a default keeps its parent's meaning)."""
    if not dataclasses.is_dataclass(options_cls):
        return []
    docs = []
    for f in dataclasses.fields(options_cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        meaning = f.metadata.get("help") or next(
            (c for base in options_cls.__mro__ if f.name in getattr(base, "__annotations__", {})
             for c in [_field_comments(base).get(f.name, "")] if c), "")
        type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        docs.append(OptionDoc(f.name, type_name, "none" if default is None else str(default), meaning))
    return docs


def _field_comments(cls: type) -> dict[str, str]:
    """Field name -> its comment in ``cls``'s own source: the trailing comment of the field's lines, else the comment
    block right above it. Empty when the source cannot be read (a class built at run time)."""
    import ast
    import inspect
    import io
    import textwrap
    import tokenize

    try:
        source = textwrap.dedent(inspect.getsource(cls))
        tree = ast.parse(source)
        comments = {tok.start[0]: tok.string.lstrip("#").strip()
                    for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}
    except (OSError, TypeError, SyntaxError, tokenize.TokenError):
        return {}
    lines = source.splitlines()
    found = {}
    for node in tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        text = " ".join(comments[n] for n in range(node.lineno, node.end_lineno + 1) if n in comments)
        if not text:  # a comment block above the field
            above, n = [], node.lineno - 1
            while n >= 1 and n in comments and lines[n - 1].strip().startswith("#"):
                above.insert(0, comments[n])
                n -= 1
            text = " ".join(above)
        found[node.target.id] = text
    return found


def task_options_table() -> Table:
    """``list tasks --options``: the --task-args keys of every task, tasks sharing one Options class together."""
    groups: dict[type, list[str]] = {}
    for fam in sorted(families().values(), key=lambda f: f.name):
        for name, cls in sorted(fam.tasks.items()):
            groups.setdefault(cls.Options, []).append(name)
        if fam.dynamic:
            cls = fam.dynamic(f"{fam.name}:{DYNAMIC_PLACEHOLDER}")
            groups.setdefault(cls.Options, []).append(cls.name)
    table = Table(title="--task-args keys (key=value,...; a key goes to the selected tasks that have it)")
    for col in ("tasks", "key", "type", "default", "meaning"):
        table.add_column(col, no_wrap=col in ("key", "type"), overflow="fold")
    for options_cls, names in groups.items():
        docs = option_docs(options_cls) or [OptionDoc("(no options)", "", "", "")]
        for i, doc in enumerate(docs):
            table.add_row(escape("\n".join(names)) if i == 0 else "", escape(doc.key), escape(doc.type),
                          escape(doc.default), escape(doc.meaning), end_section=i == len(docs) - 1)
    return table


def list_models():
    """Every registered model with its capabilities (read without importing the backends: no torch needed)."""
    table = Table(title="models")
    for col in ("model", "capabilities", "description"):
        table.add_column(col, no_wrap=col == "model", ratio={"capabilities": 1, "description": 2}.get(col))
    for name in model_names():
        try:
            info = model_info(name)
            caps = ", ".join(sorted(info.capabilities)) if info.capabilities is not None else "from its files"
            table.add_row(name, caps, info.description)
        except Exception as exc:  # a broken third-party plugin must not hide the others
            table.add_row(name, "[red]unavailable[/]", escape(f"{type(exc).__name__}: {exc}"))
    console.print(table)


