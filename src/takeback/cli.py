"""The `takeback` command.

Exit codes (also in the README):

* 0 — everything given was hashed (files that are not images or videos are skipped, not failures);
* 1 — some files could not be hashed; the list is still written, with an error section;
* 2 — usage error (unknown option, bad value);
* 3 — the hash list could not be written;
* 4 — internal error (a bug: please report it);
* 5 — the match server could not be reached (`match`, `bank`, `client`), or the Ray cluster (`hash --ray`, `sweep`);
* 6 — the match server refused the request: its status, error code and message are printed;
* 10 — `match --fail-on-match` found a match.

The match-service commands (`serve`, `match`, `bank`, `client`) live in `takeback.cli_service`.
"""

from __future__ import annotations

import importlib
import sys
import time
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from typer.core import TyperGroup

from takeback import __version__, config
from takeback.exit_codes import (
    EXIT_INTERNAL,
    EXIT_MATCHED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_SOME_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    EXIT_WRITE_FAILED,
)
from takeback.protect.batch import BatchReport, hash_paths
from takeback.protect.batch import Progress as BatchProgress
from takeback.protect.cache import HashCache
from takeback.protect.hash_file import HashOptions
from takeback.protect.report import to_hash_list
from takeback.protect.results import Status
from takeback.signals import hashlist
from takeback.signals.variants import UnknownMode, modes_text, parse_modes

__all__ = ["EXIT_MATCHED", "EXIT_REFUSED", "app", "run"]

#: The other commands, by the module that registers them.  A module is imported only when one of its commands runs
#: (or when --help lists them all): together they pull in the web app, the database, the crawler and Ray, seconds of
#: imports that `takeback hash` on a person's laptop needs none of.
LAZY_COMMANDS = {
    "takeback.cli_service": ("serve", "match", "bank", "client"),
    "takeback.cli_accounts": ("user",),
    "takeback.cli_watch": ("watch", "names"),
    "takeback.cli_scan": ("case", "scan", "findings"),
    "takeback.cli_jobs": ("worker", "jobs"),
    "takeback.cli_sweep": ("sweep",),
    "takeback.cli_notices": ("notices", "evidence"),
    "takeback.cli_petition": ("petition",),
}


class _LazyCommands(TyperGroup):
    """The root command group: `hash` and `demo` are its own, the rest come from `LAZY_COMMANDS` on demand."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        own = super().list_commands(ctx)
        return own + [name for names in LAZY_COMMANDS.values() for name in names if name not in own]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        module = next((m for m, names in LAZY_COMMANDS.items() if cmd_name in names), None)
        return None if module is None else commands_of(module).get_command(ctx, cmd_name)


def commands_of(module: str) -> TyperGroup:
    """The commands `module` registers, as one group (imports the module)."""
    holder = typer.Typer()
    holder.callback()(_no_options)  # a group even when the module registers a single command
    importlib.import_module(module).register(holder)
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    return group


def _no_options() -> None:
    """Placeholder callback of a lazily built group."""


app = typer.Typer(
    cls=_LazyCommands,
    name="takeback",
    help="Take back control of images and videos of you online. Hashing runs on this device: media never leave it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class OutputFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"
    te = "te"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"takeback {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """takeback: protect, match, discover, act."""


class _FilesPerSecond(TextColumn):
    def __init__(self) -> None:
        super().__init__("")
        self.started = time.perf_counter()

    def render(self, task):  # type: ignore[no-untyped-def]
        elapsed = max(time.perf_counter() - self.started, 1e-6)
        return f"{task.completed / elapsed:6.1f} files/s"


def run_hash(
    paths: list[Path],
    output: Path | None,
    fmt: OutputFormat,
    exact: bool,
    keep_names: bool,
    force: bool,
    no_cache: bool,
    interval: float,
    workers: int | None,
    quiet: bool,
    modes: str | None = None,
    ray_address: str | None = None,
) -> int:
    settings = config.load()
    console = Console(stderr=True, highlight=False)
    options = HashOptions(exact=exact, interval=interval, max_pixels=settings.max_image_pixels)
    options = options if modes is None else replace(options, modes=modes)
    cache = None if no_cache else HashCache(settings.cache_path)
    workers = settings.workers if workers is None else workers
    started = time.perf_counter()
    progress = Progress(
        TextColumn("hashing"),
        BarColumn(),
        MofNCompleteColumn(),
        _FilesPerSecond(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=False,
        # Locally, refreshed by `advance` on this thread: no display thread, so the hashing workers can be forked
        # (`batch.start_method`); `hash_paths` calls back at least every `batch.TICK_SECONDS`.  Ray starts no
        # local workers, so there the display keeps its own clock.
        auto_refresh=ray_address is not None,
    )
    with progress:
        task = progress.add_task("hash", total=None)

        def advance(p: BatchProgress) -> None:
            progress.update(task, total=p.total, completed=p.done, refresh=True)

        try:
            if ray_address is None:
                report = hash_paths(paths, options, workers=workers, cache=cache, force=force, on_progress=advance)
            else:
                from takeback.bulk.ray_hash import hash_on_ray

                report = hash_on_ray(ray_address, paths, options, cache=cache, force=force, on_progress=advance)
        except Exception as exc:
            from takeback.bulk.cluster import RayUnavailable

            if not isinstance(exc, RayUnavailable):
                raise
            console.print(f"[red]takeback:[/red] {escape(exc.message)}")
            return EXIT_UNREACHABLE
        finally:
            if cache is not None:
                cache.close()
    elapsed = time.perf_counter() - started
    extra = {"modes": options.modes} if options.modes else {}
    listing = to_hash_list(
        report.results, keep_names=keep_names, options={"exact": exact, "interval": interval, **extra}
    )
    try:
        hashlist.write(listing, output, fmt.value)
    except OSError as exc:
        console.print(
            f"[red]could not write the hash list to {escape(str(output))}: {escape(exc.strerror or str(exc))}"
        )
        return EXIT_WRITE_FAILED
    _print_summary(console, report, elapsed, output, quiet)
    return EXIT_SOME_FAILED if report.failed else EXIT_OK


def _print_summary(console: Console, report: BatchReport, elapsed: float, output: Path | None, quiet: bool) -> None:
    failed = report.failed
    if not quiet:
        table = Table(title=f"takeback hash — {len(report.results)} files in {elapsed:.1f}s", title_justify="left")
        table.add_column("type")
        for status in Status:
            table.add_column(status.value, justify="right")
        for kind, row in sorted(report.by_kind().items()):
            table.add_row(kind, *(str(row[s.value]) for s in Status))
        console.print(table)
        if output is not None:
            console.print(f"hash list written to {escape(str(output))}")
    for r in failed:
        console.print(f"[red]failed[/red] {escape(r.path)}: {escape(r.reason or r.error_code or 'error')}")
    for r in report.results:
        if r.warning and r.ok:
            console.print(f"[yellow]warning[/yellow] {escape(r.path)}: {escape(r.warning)}")


def _check_modes(value: str) -> str:
    try:
        return modes_text(parse_modes(value))
    except UnknownMode as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command("hash")
def hash_command(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to hash (folders are walked).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the hash list here (default: standard output).")
    ] = None,
    fmt: Annotated[
        OutputFormat,
        typer.Option("--format", "-f", help="jsonl (takeback hash list), csv, or te (ThreatExchange/HMA lines)."),
    ] = OutputFormat.jsonl,
    exact: Annotated[
        bool, typer.Option("--exact", help="Decode every pixel: bit-exact with the pdqhash/vpdq references, slower.")
    ] = False,
    keep_names: Annotated[
        bool,
        typer.Option("--keep-names", help="Include file paths in the list (off by default: names identify people)."),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Hash again even files unchanged since the last run.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the on-device cache.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.01, max=3600, help="Seconds between hashed video frames.")
    ] = 1.0,
    workers: Annotated[
        int | None, typer.Option("--workers", "-j", min=0, max=512, help="Worker processes (default: all cores).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary table.")] = False,
    modes: Annotated[
        str,
        typer.Option(
            "--modes",
            callback=_check_modes,
            help="Extra hashes so mirrored, rotated, framed, cropped, resized or trimmed copies match: any of "
            "dihedral, borders, crops, grid, smooth, dense (videos), or default (all of them), all, none "
            "(docs/robustness.md: what each costs and catches).",
        ),
    ] = "default",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Hash on a Ray cluster (HOST:PORT, or 'local') instead of this device's cores: for an organisation's "
            "own backlog on storage every node reads, never for a person's private media. Needs the 'scale' extra.",
        ),
    ] = None,
) -> None:
    """Hash photos and videos on this device into a hash list (PDQ, vPDQ, MD5, SHA-256)."""
    code = run_hash(
        paths, output, fmt, exact, keep_names, force, no_cache, interval, workers, quiet, modes, ray_address
    )
    raise typer.Exit(code)


@app.command("demo")
def demo_command(
    folder: Annotated[Path, typer.Option(help="Where to write the benign demo photos and video.")] = Path("demo-media"),
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the demo hash list.")] = Path(
        "demo-hashes.jsonl"
    ),
) -> None:
    """Make benign sample photos and a short video, then hash them (needs `takeback[demo]`)."""
    try:
        from takeback import samples
    except ImportError:  # pragma: no cover - scikit-image missing
        typer.echo("the demo needs scikit-image: pip install 'takeback[demo]'", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(f"writing benign sample media to {folder}/ …", err=True)
    samples.write_demo_photos(folder)
    clip = folder / "clip.mp4"
    if not clip.exists():
        samples.write_video(clip, seconds=20, size=(640, 360))
    code = run_hash([folder], output, OutputFormat.jsonl, False, False, True, True, 1.0, None, False)
    if code == EXIT_OK:
        listing = hashlist.read(output)
        typer.echo(
            f"{listing.summary.images} photos and {listing.summary.videos} video hashed; "
            f"first photo's PDQ: {listing.records[0].pdq if listing.records else '-'}",
            err=True,
        )
    raise typer.Exit(code)


def run() -> None:
    """Console-script entry point: usage errors exit 2, and no traceback ever reaches the person."""
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:
        sys.stderr.write(f"takeback: internal error: {type(exc).__name__}: {exc}\n")
        sys.exit(EXIT_INTERNAL)
