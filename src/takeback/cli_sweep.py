"""`takeback sweep`: bulk hashing and matching on Ray, for an organisation's own backlog (see `takeback.bulk`).

Exit codes (the numbers mean the same as for the other commands):

* 0 — the sweep ran (matched or not); 1 — some files or URLs could not be hashed or fetched (the rest were swept);
* 2 — usage error; 3 — the output could not be written;
* 5 — the Ray cluster or the match server could not be reached; 6 — the match server refused a request;
* 10 — `--fail-on-match` only: something matched.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from takeback import config
from takeback.cli_service import (
    EXIT_MATCHED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    EXIT_WRITE_FAILED,
    KeyOption,
    UrlOption,
    connect,
    err,
    fail,
    service_errors,
)
from takeback.client import DEFAULT_URL
from takeback.protect.hash_file import HashOptions
from takeback.protect.results import FileResult, Status

PRIVACY = (
    "For an organisation sweeping its own backlog (a platform's uploads, an archive it holds) on a Ray cluster: the "
    "files are read by the cluster's machines. A person's private photos and videos are hashed on her own device "
    "with `takeback hash` instead."
)


def _check_query_modes(value: str) -> str:
    from takeback.signals.variants import UnknownMode, modes_text, parse_query_modes

    try:
        return modes_text(parse_query_modes(value))  # "default": the query side's defaults, not the bank's
    except UnknownMode as exc:
        raise typer.BadParameter(str(exc)) from None


def sweep_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files and folders to sweep (walked by this machine, read by the cluster's workers)."),
    ] = None,
    url_list: Annotated[
        Path | None,
        typer.Option("--urls", help="A file of URLs to fetch and sweep, one per line ('-' reads standard input)."),
    ] = None,
    ray_address: Annotated[
        str,
        typer.Option(
            "--ray",
            envvar="TAKEBACK_RAY_ADDRESS",
            help="Ray cluster address HOST:PORT (as printed by `ray start --head`), or 'local' for a private "
            "single-machine Ray.",
        ),
    ] = "local",
    store: Annotated[
        bool,
        typer.Option(
            "--store",
            help="Match against this machine's takeback store (TAKEBACK_DATA_DIR or TAKEBACK_DATABASE_URL) "
            "instead of a match server.",
        ),
    ] = False,
    banks: Annotated[
        list[str] | None, typer.Option("--bank", "-b", help="Only these banks (repeatable; default all).")
    ] = None,
    threshold: Annotated[
        int | None, typer.Option(min=0, max=256, help="PDQ distance threshold (default: the server's or settings').")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the matches (JSON lines) here (default: stdout).")
    ] = None,
    chunk: Annotated[int, typer.Option("--chunk", min=1, max=10_000, help="Files or URLs per Ray task.")] = 16,
    window: Annotated[
        int | None,
        typer.Option("--window", min=1, max=100_000, help="Ray tasks in flight at most (default 2 per cluster CPU)."),
    ] = None,
    exact: Annotated[bool, typer.Option("--exact", help="Bit-exact reference hashing (slower).")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.01, max=3600, help="Seconds between hashed video frames.")
    ] = 1.0,
    fail_on_match: Annotated[
        bool, typer.Option("--fail-on-match", help=f"Exit {EXIT_MATCHED} when anything matched (for scripts).")
    ] = False,
    query_modes: Annotated[
        str,
        typer.Option(
            "--query-modes",
            callback=_check_query_modes,
            help="Extra query hashes per file: borders (default: a letterboxed or framed copy, at most one more "
            "hash), smooth, grid (cropped or watermarked copies, ~1,150 more hashes per photo), default, none "
            "(docs/robustness.md).",
        ),
    ] = "borders",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary.")] = False,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Hash a media collection or a list of URLs on Ray and match it against banks; matches as JSON lines."""
    from takeback.bulk.cluster import RayUnavailable
    from takeback.bulk.cluster import connect as ray_connect
    from takeback.bulk.sweep import ServiceMatcher, StoreMatcher, SweepError, read_url_list, sweep
    from takeback.discover.fetch import FetchPolicy

    if not paths and url_list is None:
        raise fail("give files or folders to sweep, or --urls FILE", EXIT_USAGE)
    for path in paths or []:
        if not path.exists():
            raise fail(f"no such file or folder: {path}", EXIT_USAGE)
    settings = config.load()
    try:
        urls = _read_urls(url_list, read_url_list)
    except SweepError as exc:
        raise fail(f"--urls {url_list}: {exc}", EXIT_USAGE) from None
    except OSError as exc:
        raise fail(f"cannot read --urls {url_list}: {exc.strerror or exc}", EXIT_USAGE) from None

    if store:
        try:
            matcher: Any = StoreMatcher.open(settings, banks, threshold)
        except SweepError as exc:
            raise fail(str(exc), EXIT_USAGE) from None
        client = None
    else:
        client = connect(url, key)
        matcher = ServiceMatcher(client, banks, threshold)
    try:
        sink = _open_output(output)
    except OSError as exc:
        raise fail(f"could not write the matches to {output}: {exc.strerror or exc}", EXIT_WRITE_FAILED) from None

    # modes="": the bank modes' extra hashes are for bank entries; the query modes' are for matching a found copy.
    options = HashOptions(
        exact=exact, interval=interval, max_pixels=settings.max_image_pixels, modes="", query_modes=query_modes
    )
    failures: list[FileResult] = []
    progress = Progress(
        SpinnerColumn(), TextColumn("sweeping: {task.completed} done"), TimeElapsedColumn(), console=err, disable=quiet
    )

    def write(line: dict[str, Any]) -> None:
        sink.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
        sink.flush()

    try:
        with progress, service_errors():
            task = progress.add_task("sweep", total=None)

            def on_result(result: FileResult) -> None:
                progress.advance(task)
                if result.status is Status.FAILED:
                    failures.append(result)
                    err.print(f"[red]failed[/red] {escape(result.path)}: {escape(result.reason or 'error')}")

            with ray_connect(ray_address) as cpus:
                report = sweep(
                    paths or [],
                    urls,
                    matcher,
                    write,
                    options=options,
                    cpus=cpus,
                    chunk_files=chunk,
                    window=window,
                    fetch_policy=FetchPolicy.from_settings(settings),
                    on_result=on_result,
                )
    except RayUnavailable as exc:
        raise fail(exc.message, EXIT_UNREACHABLE) from None
    except OSError as exc:
        raise fail(
            f"could not write the matches to {output or 'stdout'}: {exc.strerror or exc}", EXIT_WRITE_FAILED
        ) from None
    finally:
        if sink is not sys.stdout:
            sink.close()
        if client is not None:
            client.close()
    if not quiet:
        err.print(
            f"swept {report.sources} sources ({report.hashed} hashed, {report.failed} failed, {report.skipped} not "
            f"media): {report.matches} matches for {report.matched_sources} sources, {report.signals} signals checked"
        )
    if failures:
        raise typer.Exit(EXIT_SOME_FAILED)
    raise typer.Exit(EXIT_MATCHED if fail_on_match and report.matches else EXIT_OK)


def _read_urls(url_list: Path | None, parse: Any) -> list[str]:
    if url_list is None:
        return []
    if str(url_list) == "-":
        return parse(sys.stdin)
    with url_list.open(encoding="utf-8", errors="replace") as fh:
        return parse(fh)


def _open_output(output: Path | None) -> IO[str]:
    """Matches name files of the backlog: private (0600), and written as found (not atomically) so an interrupted
    sweep keeps what it had."""
    if output is None:
        return sys.stdout
    output.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


def register(app: typer.Typer) -> None:
    """Attach `sweep` to the main `takeback` app."""
    app.command(
        "sweep", help=f"Hash a media collection or a list of URLs on Ray and match it against banks. {PRIVACY}"
    )(sweep_command)
