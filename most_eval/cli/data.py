"""``most-eval data list|download|verify``: dataset download and verification:

    app.add_typer(data_app, name="data")

    most-eval data list [--root DIR]                     # what the manifest knows (and what DIR holds)
    most-eval data download NAME --root DIR [--force]    # fetch (resumable), check the digest, extract safely
    most-eval data verify NAME --root DIR                # check the extracted tree and any downloaded archive

Exit codes: 0 ok; 2 failed or refused (download error, failed verification, unknown name, a --root that is a file, a
dataset without a public archive: its instructions are printed first). Errors are one line on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import fail, os_error_line, path_problem
from most_eval.data.catalog import (CATALOG_ENV, DatasetDownloadError, ManualDatasetError, dataset_status,
                                    get_dataset, human_size, instructions, load_catalog, catalog_path)
from most_eval.data.download import DEFAULT_RETRIES, DEFAULT_TIMEOUT, download_dataset
from most_eval.data.verify import verify_dataset

data_app = typer.Typer(help="Download and verify evaluation datasets (LibriSpeech from OpenSLR; instructions for the "
                            "rest).", no_args_is_help=True, add_completion=False)

NameArg = Annotated[str, typer.Argument(help="Dataset name (see `most-eval data list`).", show_default=False)]
RootOpt = Annotated[Path, typer.Option("--root", help="Data root: the folder runs take as --data-root.",
                                       show_default=False)]
ManifestOpt = Annotated[Optional[Path], typer.Option("--manifest", help="Dataset manifest.",
                                                    show_default=f"${CATALOG_ENV}, else the bundled one")]


def _check_root(root: Path | None) -> None:
    """Refuse (exit 2, one line) a --root that is a file or lies under one."""
    problem = path_problem("--root", root, folder=True)
    if problem:
        raise fail(problem)


def _note(message: str) -> None:
    typer.echo(f"note: {message}", err=True)


@data_app.callback()
def _data_group() -> None:
    """Dataset commands."""


@data_app.command("list")
def list_command(
    root: Annotated[Optional[Path], typer.Option("--root", help="Also show what this data root holds.",
                                                 show_default="none")] = None,
    manifest: ManifestOpt = None,
) -> None:
    """List the datasets: download size (or 'manual'), folder under the data root, tasks."""
    from rich.console import Console
    from rich.table import Table

    _check_root(root)
    try:
        specs = load_catalog(manifest)
    except DatasetDownloadError as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"datasets ({catalog_path(manifest)})", title_justify="left")
    for column in ("name", "source", "folder", "tasks") + (("status",) if root else ()):
        table.add_column(column, overflow="fold")
    for spec in specs.values():
        source = f"download {human_size(spec.download_size)}" if spec.downloadable else "manual"
        row = [spec.name, source, f"{spec.folder}/", ", ".join(spec.tasks)]
        table.add_row(*row, *([dataset_status(spec, root)] if root else []))
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)


@data_app.command("download")
def download_command(
    name: NameArg,
    root: RootOpt,
    force: Annotated[bool, typer.Option("--force", help="Download and replace data already in place.",
                                        show_default="off")] = False,
    keep_archive: Annotated[bool, typer.Option("--keep-archive/--delete-archive",
                                               help="Keep ROOT/archives/<file> after extraction.")] = True,
    retries: Annotated[int, typer.Option(help="Retries after a dropped connection (the budget refills on progress).",
                                         min=0)] = DEFAULT_RETRIES,
    timeout: Annotated[float, typer.Option(help="Seconds without data before a connection counts as dropped.",
                                           min=1)] = DEFAULT_TIMEOUT,
    max_extract_gb: Annotated[Optional[float], typer.Option(
        help="Cap on the total uncompressed size in GB.", min=0, show_default="4 x the archive size")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    manifest: ManifestOpt = None,
) -> None:
    """Download NAME into --root: resumable, digest-checked, safely extracted (instructions where none is public)."""
    _check_root(root)
    try:
        result = download_dataset(name, root, manifest=manifest, force=force, keep_archives=keep_archive,
                                  retries=retries, timeout=timeout, progress=progress, log=_note,
                                  max_extract_bytes=int(max_extract_gb * 1e9) if max_extract_gb else None)
    except ManualDatasetError as exc:
        typer.echo(instructions(exc.spec, root))
        raise fail(str(exc)) from None
    except DatasetDownloadError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{name}: {os_error_line(exc)}") from None
    if result.already_present:
        typer.echo(f"{result.name}: already in place at {result.folder} and verified (--force to download again)")
        return
    for path, checked in result.archives:
        typer.echo(f"{path.name}: size and {checked} verified")
    typer.echo(f"{result.name}: extracted to {result.folder}")


@data_app.command("verify")
def verify_command(
    name: NameArg,
    root: RootOpt,
    archives: Annotated[bool, typer.Option("--archives/--no-archives",
                                           help="Also check downloaded archives against their digests.")] = True,
    manifest: ManifestOpt = None,
) -> None:
    """Check NAME under --root: its folder, file counts where known, transcripts, and any downloaded archive."""
    _check_root(root)
    try:
        spec = get_dataset(name, manifest)
        report = verify_dataset(spec, root, check_archives=archives)
    except DatasetDownloadError as exc:
        raise fail(str(exc)) from None
    for r in report.results:
        typer.echo(f"  {'note' if r.note else 'ok' if r.ok else 'FAIL'}  {r.message}")
    if not report.ok:
        if not spec.downloadable and not any(p.is_dir() for p in Path(root).glob(spec.folder)):
            typer.echo("\n" + instructions(spec, root))
        raise fail(f"{spec.name}: {len(report.failures)} check(s) failed under {root}: {report.failures[0]}")
    typer.echo(f"{spec.name}: ok")
