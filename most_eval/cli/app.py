"""The ``most-eval`` command: the subcommands, each a thin layer over a library function.

    run                  most_eval.cli.run      -> most_eval.evaluate
    list tasks|models    most_eval.cli.listing  -> most_eval.registry
    data ...             most_eval.cli.data     -> most_eval.data
    leaderboard build    most_eval.cli.reports  -> most_eval.report.leaderboard
    compare, check       most_eval.cli.reports  -> most_eval.report.compare / .check

Packages add subcommands through the ``most_eval.commands`` entry-point group (the reference implementation's
``train`` and ``routing``): each entry point names a typer command function, registered under its name.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from most_eval.cli.data import data_app
from most_eval.cli.listing import list_models, list_tasks
from most_eval.cli.reports import check_command, compare_command, leaderboard_app
from most_eval.cli.run import run

#: entry-point group of subcommands added by other packages
COMMAND_GROUP = "most_eval.commands"

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
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


def _register_plugin_commands() -> None:
    """The subcommands of the ``most_eval.commands`` group, in name order; a name clash with a built-in command is
    an error of the plugin, shown instead of its command."""
    builtin = {"run", "list", "data", "leaderboard", "compare", "check"}
    for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        if ep.name in builtin:
            raise RuntimeError(f"entry point {ep.value} names the built-in command {ep.name!r}")
        app.command(ep.name)(ep.load())


_register_plugin_commands()


def main() -> None:
    """Console-script entry point."""
    app()
