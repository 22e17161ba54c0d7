"""What every subcommand shares: the consoles, the one-line error exit, and the path checks of output options."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

#: exit code of bad input: an unknown name, a bad option value, a path that cannot be used, refused runs
EXIT_BAD_INPUT = 2

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # one-line errors stay one line


def wide_console() -> Console:
    """A rich console; when stdout is not a terminal (CI logs, pipes) a wide fixed width instead of rich's 80."""
    out = Console()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(width=160)
    return out


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``error: <message>`` as one line on stderr; the Exit to raise."""
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    return typer.Exit(code)


def path_problem(option: str, path: Path | None, *, folder: bool) -> str | None:
    """One line naming ``path`` when it cannot be used as a folder (``folder``) or a file: something of the other
    kind is there, or one of its parents is a file. None when it can (it need not exist yet)."""
    if path is None:
        return None
    if path.exists() and path.is_dir() != folder:
        return f"{option} {path}: " + ("not a directory" if folder else "is a directory, expected a file path")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        return f"{option} {path}: {parent} is not a directory"
    return None


def os_error_line(err: OSError) -> str:
    """``<path>: <reason>`` for an OSError (one line, no errno noise)."""
    return f"{err.filename}: {err.strerror}" if err.filename and err.strerror else str(err)
