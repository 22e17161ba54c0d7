"""The ``most-eval`` command: the subcommands, each a thin layer over a library function.

    run                  most_eval.cli.run      -> most_eval.evaluate
    list tasks|models    most_eval.cli.listing  -> most_eval.registry
    data ...             most_eval.cli.data     -> most_eval.data
    leaderboard build    most_eval.cli.reports  -> most_eval.report.leaderboard
    compare, check       most_eval.cli.reports  -> most_eval.report.compare / .check
    report               most_eval.cli.reports  -> most_eval.report.html_report

Packages add subcommands through the ``most_eval.commands`` entry-point group (the reference implementation's
``train`` and ``routing``): each entry point names a typer command function, registered under its name.
"""

from __future__ import annotations

import shutil

from importlib.metadata import entry_points

import typer

from .common import fail
from .data import data_app
from .listing import list_models, list_tasks
from .reports import check_command, compare_command, leaderboard_app, report_command
from .run import run

#: entry-point group of subcommands added by other packages
COMMAND_GROUP = "most_eval.commands"

#: rich's boxed help panels need about 100 columns for the option names, types, help and defaults side by side;
#: narrower terminals get click's plain layout, which wraps the help under each option instead of cutting it
HELP_MARKUP = "rich" if shutil.get_terminal_size((120, 24)).columns >= 100 else None
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=HELP_MARKUP,
                  help="Evaluate speech-text LLMs on ASR, TTS, spoken-LM and spoken-QA benchmarks, offline-first.")
list_app = typer.Typer(no_args_is_help=True, help="List registered tasks or models.")

app.command()(run)
app.add_typer(list_app, name="list")
list_app.command("tasks")(list_tasks)
list_app.command("models")(list_models)
app.add_typer(data_app, name="data")
app.add_typer(leaderboard_app, name="leaderboard")
app.command("compare")(compare_command)
app.command("check")(check_command)
app.command("report")(report_command)


def _register_plugin_commands() -> None:
    """The subcommands of the ``most_eval.commands`` group, in name order. A plugin command that fails to load is
    still listed, and running it says why in one line (exit 2); one that names a built-in command is left out with a
    one-line warning: a broken plugin never takes the other commands down."""
    builtin = {c.name or c.callback.__name__ for c in app.registered_commands} | {
        g.name for g in app.registered_groups}
    for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        if ep.name in builtin:
            typer.echo(f"warning: entry point {ep.value} names the built-in command {ep.name!r}; left out", err=True)
            continue
        try:
            command = ep.load()
        except Exception as exc:  # a plugin's import error: shown when its command is asked for
            command = _broken_command(ep.value, f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        app.command(ep.name)(command)


def _broken_command(value: str, reason: str):
    """A stand-in for a plugin command that could not be loaded: one line naming the entry point and why, exit 2."""

    def broken() -> None:
        raise fail(f"command plugin {value} could not be loaded: {reason}")

    broken.__doc__ = f"(unavailable: {value} could not be loaded)"
    return broken


_register_plugin_commands()


def main() -> None:
    """Console-script entry point."""
    app()
