"""The domain-watch commands: `takeback watch CASE… --feed FILE` and `takeback names check TEXT…`.

`watch` reads a new-domain feed (a recorded file, a gzip file, or `-` for standard input, e.g. a certstream relay
piped in), matches every domain against the cases' names, prints the hits and records them as `domain` findings in
the configured database.  `names check` shows how a name would match a few domains, URLs or titles, with or
without a database.

Exit codes: 0 done (whether or not anything matched); 1 the database could not be opened or written;
2 usage error (unknown case, a case without names, unreadable feed, bad option).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from takeback import config
from takeback.discover.domains import InvalidDomain, clean_domain
from takeback.discover.feeds import READERS, FeedError, FeedStats, iter_feed
from takeback.discover.names import DEFAULT_THRESHOLD, InvalidName, NameHit, NameMatcher
from takeback.discover.watch import NoNames, UnknownCase, WatchHit, load_matchers, watch, watch_into_store
from takeback.store import StoreError, open_store

EXIT_OK = 0
EXIT_STORE = 1
EXIT_USAGE = 2

names_app = typer.Typer(help="Check how a case's names match domains, URLs and titles.", no_args_is_help=True)

ThresholdOption = Annotated[
    int | None,
    typer.Option(
        "--threshold",
        "-t",
        min=0,
        max=100,
        help=f"Lowest score reported (default: TAKEBACK_NAME_MATCH_THRESHOLD, else {DEFAULT_THRESHOLD}).",
    ),
]


def _fail(console: Console, message: str, code: int) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def _hit_row(hit: NameHit) -> list[str]:
    return [escape(hit.name), escape(hit.variant), hit.match, str(hit.score), escape(hit.matched), hit.where]


def watch_command(
    case_ids: Annotated[list[int], typer.Argument(help="Case id(s) whose names to watch for.", min=1)],
    feed: Annotated[str, typer.Option("--feed", "-f", help="Feed file (plain or .gz), or - for standard input.")],
    feed_format: Annotated[
        str, typer.Option("--format", help=f"Feed format: {' | '.join(READERS)}.", show_default=True)
    ] = "certstream",
    threshold: ThresholdOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the hits without recording findings.")] = False,
    max_rows: Annotated[int, typer.Option("--max-rows", min=0, help="Hits shown in the table.")] = 200,
) -> None:
    """Match a new-domain feed against cases' names and record the hits as domain findings."""
    console = Console(stderr=False)
    if feed_format not in READERS:
        raise _fail(console, f"unknown --format {feed_format!r} (one of {', '.join(READERS)})", EXIT_USAGE)
    if feed != "-" and not Path(feed).is_file():
        raise _fail(console, f"feed file not found: {feed}", EXIT_USAGE)
    settings = config.load()
    threshold = settings.name_match_threshold if threshold is None else threshold
    try:
        _engine, factory = open_store(settings)
        with factory() as session:
            matchers = load_matchers(session, case_ids, threshold=threshold)
    except (UnknownCase, NoNames, InvalidName) as exc:
        raise _fail(console, str(exc), EXIT_USAGE) from None
    except (SQLAlchemyError, StoreError, OSError) as exc:
        raise _fail(console, f"cannot open the database: {type(exc).__name__}", EXIT_STORE) from None

    stats = FeedStats()
    feed_name = "stdin" if feed == "-" else Path(feed).name
    source = sys.stdin if feed == "-" else feed
    table = Table(title=f"Domain watch: {escape(feed_name)}")
    for column in ("domain", "case", "name", "variant", "match", "score", "matched", "finding"):
        table.add_column(column, overflow="fold")
    shown = 0

    def show(hit: WatchHit, created: bool | None) -> None:
        nonlocal shown
        shown += 1
        if shown <= max_rows:
            best = hit.best
            state = "dry run" if created is None else ("new" if created else "seen again")
            table.add_row(
                escape(hit.entry.domain),
                str(hit.case_id),
                escape(best.name),
                escape(best.variant),
                best.match,
                str(best.score),
                escape(best.matched),
                state,
            )

    try:
        hits = watch(iter_feed(source, feed_format, stats), matchers, feed=feed_name)
        if dry_run:
            for hit in hits:
                show(hit, None)
            created = updated = 0
        else:
            summary = watch_into_store(factory, hits, on_hit=show)
            created, updated = summary.created, summary.updated
    except FeedError as exc:
        raise _fail(console, str(exc), EXIT_USAGE) from None
    except (SQLAlchemyError, StoreError) as exc:
        raise _fail(console, f"cannot record findings: {type(exc).__name__}: {exc}", EXIT_STORE) from None

    if shown:
        console.print(table)
        if shown > max_rows:
            console.print(f"… and {shown - max_rows} more hits")
    console.print(
        f"{stats.lines} lines, {stats.entries} domains, {stats.malformed} malformed, {shown} hits"
        + ("" if dry_run else f" ({created} new findings, {updated} seen again)")
    )
    for line, reason in stats.examples[:5]:
        console.print(f"  malformed line {line}: {escape(reason)}", style="yellow")
    raise typer.Exit(EXIT_OK)


@names_app.command("check")
def names_check_command(
    texts: Annotated[list[str], typer.Argument(help="Domains, URLs or titles to check.")],
    case_id: Annotated[int | None, typer.Option("--case", help="Use this case's stored names.")] = None,
    name: Annotated[list[str] | None, typer.Option("--name", help="A full name (repeatable).")] = None,
    alias: Annotated[list[str] | None, typer.Option("--alias", help="An alias (repeatable).")] = None,
    username: Annotated[list[str] | None, typer.Option("--username", help="A username (repeatable).")] = None,
    threshold: ThresholdOption = None,
) -> None:
    """Show which names match each text (a URL, a domain, or free text such as a page title), and how."""
    console = Console()
    settings = config.load()
    names = [(v, "name") for v in name or []] + [(v, "alias") for v in alias or []]
    names += [(v, "username") for v in username or []]
    if case_id is not None:
        try:
            _engine, factory = open_store(settings)
            with factory() as session:
                names += load_matchers(session, [case_id])[case_id].names
        except (UnknownCase, NoNames, InvalidName) as exc:
            raise _fail(console, str(exc), EXIT_USAGE) from None
        except (SQLAlchemyError, StoreError, OSError) as exc:
            raise _fail(console, f"cannot open the database: {type(exc).__name__}", EXIT_STORE) from None
    if not names:
        raise _fail(console, "give --case or at least one --name/--alias/--username", EXIT_USAGE)
    try:
        matcher = NameMatcher(names, threshold=settings.name_match_threshold if threshold is None else threshold)
    except InvalidName as exc:
        raise _fail(console, str(exc), EXIT_USAGE) from None

    table = Table(title="Name check")
    for column in ("text", "as", "name", "variant", "match", "score", "matched", "where"):
        table.add_column(column, overflow="fold")
    for text in texts:
        kind, hits = _check(matcher, text)
        if not hits:
            table.add_row(escape(text), kind, "[dim]no match[/dim]", "", "", "", "", "")
        for hit in hits:
            table.add_row(escape(text), kind, *_hit_row(hit))
    console.print(table)
    raise typer.Exit(EXIT_OK)


def _check(matcher: NameMatcher, text: str) -> tuple[str, list[NameHit]]:
    """A URL, a domain or free text, told apart by its shape."""
    if "://" in text:
        return "url", matcher.match_url(text)
    if " " not in text.strip() and "." in text:
        try:
            clean_domain(text)
        except InvalidDomain:
            pass
        else:
            return "domain", matcher.match_domain(text)
    return "text", matcher.match_text(text)


def register(app: typer.Typer) -> None:
    app.command("watch")(watch_command)
    app.add_typer(names_app, name="names")
