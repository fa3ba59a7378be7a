"""The discover commands: `takeback case create|list|names|add-name`, `takeback scan CASE [--seed URL…]`,
`takeback scan CASE --recheck` and `takeback findings CASE`.

They work on the configured database directly (like `takeback serve`, not through the API): a scan fetches pages
and media from the web through the guarded fetcher, hashes what it fetched in memory, matches it against the case's
banks and names, and records findings with evidence.  Nothing fetched is written to disk.

Exit codes: 0 done (whether or not anything was found); 1 the database could not be opened or written;
2 usage error (unknown case, no or bad seed URLs, bad option).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from takeback import config, store
from takeback.discover.crawl import CrawlOptions, CrawlStats
from takeback.discover.recheck import recheck_case
from takeback.discover.scan import ScanError, scan_case

EXIT_OK = 0
EXIT_STORE = 1
EXIT_USAGE = 2

case_app = typer.Typer(help="Cases: the person, her names, aliases and usernames.", no_args_is_help=True)


def _fail(console: Console, message: str, code: int) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def _open(console: Console) -> tuple[config.Settings, sessionmaker[Session]]:
    settings = config.load()
    try:
        _engine, factory = store.open_store(settings)
    except (SQLAlchemyError, OSError, store.StoreError) as exc:
        raise _fail(console, f"cannot open the database: {type(exc).__name__}", EXIT_STORE) from None
    return settings, factory


def _case_id(console: Console, factory: sessionmaker[Session], case: str) -> int:
    """A case by id or by exact name."""
    with factory.begin() as session:
        if case.isdigit() and store.get_case(session, int(case)) is not None:
            return int(case)
        named = [c for c in store.list_cases(session) if c.name == case]
    if len(named) == 1:
        return named[0].id
    if len(named) > 1:
        raise _fail(console, f"several cases are named {case!r}: use the id", EXIT_USAGE)
    raise _fail(console, f"no case {case!r}", EXIT_USAGE)


NamesOption = Annotated[list[str] | None, typer.Option("--name", help="Her name as written (repeatable).")]
AliasOption = Annotated[list[str] | None, typer.Option("--alias", help="An alias or stage name (repeatable).")]
UserOption = Annotated[list[str] | None, typer.Option("--username", help="A username (repeatable).")]


def _add_names(
    console: Console,
    factory: sessionmaker[Session],
    case_id: int,
    names: list[str],
    aliases: list[str],
    users: list[str],
) -> int:
    added = 0
    try:
        with factory.begin() as session:
            for kind, values in (("name", names), ("alias", aliases), ("username", users)):
                for value in values:
                    store.add_case_name(session, case_id, value, kind)
                    added += 1
    except store.InvalidInput as exc:
        raise _fail(console, f"{exc.field}: {exc.message}", EXIT_USAGE) from None
    return added


@case_app.command("create")
def case_create(
    name: Annotated[str, typer.Argument(help="A label for the case (only you see it).")],
    names: NamesOption = None,
    aliases: AliasOption = None,
    usernames: UserOption = None,
) -> None:
    """Create a case and the names to look for."""
    console = Console()
    _settings, factory = _open(console)
    try:
        with factory.begin() as session:
            case = store.create_case(session, name)
    except store.InvalidInput as exc:
        raise _fail(console, f"{exc.field}: {exc.message}", EXIT_USAGE) from None
    added = _add_names(console, factory, case.id, names or [], aliases or [], usernames or [])
    console.print(f"case {case.id} created ({escape(case.name)}), {added} name(s)")


@case_app.command("add-name")
def case_add_name(
    case: Annotated[str, typer.Argument(help="Case id or name.")],
    names: NamesOption = None,
    aliases: AliasOption = None,
    usernames: UserOption = None,
) -> None:
    """Add names, aliases or usernames to a case."""
    console = Console()
    _settings, factory = _open(console)
    case_id = _case_id(console, factory, case)
    added = _add_names(console, factory, case_id, names or [], aliases or [], usernames or [])
    console.print(f"{added} name(s) added to case {case_id}")


@case_app.command("list")
def case_list() -> None:
    """The cases, with their names and finding counts."""
    console = Console()
    _settings, factory = _open(console)
    table = Table(title="Cases")
    for column in ("id", "case", "names", "open findings", "removed"):
        table.add_column(column)
    with factory.begin() as session:
        for case in store.list_cases(session):
            names = ", ".join(f"{n.value} ({n.kind})" for n in store.list_case_names(session, case.id))
            table.add_row(
                str(case.id),
                escape(case.name),
                escape(names) or "-",
                str(store.count_findings(session, case.id, status="open")),
                str(store.count_findings(session, case.id, status="removed")),
            )
    console.print(table)


def _findings_table(
    factory: sessionmaker[Session], case_id: int, *, ids: set[int] | None = None, limit: int = 200
) -> Table:
    table = Table(title=f"Findings of case {case_id}")
    for column in ("id", "kind", "status", "url", "what matched", "http", "last seen"):
        table.add_column(column, overflow="fold")
    with factory.begin() as session:
        findings = store.list_findings(session, case_id, limit=10_000)
    shown = [f for f in findings if ids is None or f.id in ids][:limit]
    for f in shown:
        table.add_row(
            str(f.id),
            f.kind,
            f.status,
            escape(f.url),
            escape(_what(f.evidence)),
            str(f.http_status or "-"),
            f.last_seen_at.strftime("%Y-%m-%d %H:%M"),
        )
    return table


def _what(evidence: dict) -> str:
    matches = evidence.get("matches")
    if isinstance(matches, list) and matches:
        m = matches[0]
        return f"{m.get('signal_type')} {m.get('bank')}#{m.get('signal_id')} d={m.get('distance')}"
    names = evidence.get("names")
    if isinstance(names, list) and names:
        n = names[0]
        return f"name {n.get('name')!s} as {n.get('matched')!s} ({n.get('where')}, {n.get('score')})"
    return ""


def scan_command(
    case: Annotated[str, typer.Argument(help="Case id or name.")],
    seeds: Annotated[
        list[str] | None, typer.Option("--seed", "-s", help="Start URL (repeatable; default: the last scan's).")
    ] = None,
    max_pages: Annotated[int, typer.Option("--max-pages", min=1, max=1_000_000, help="Pages fetched at most.")] = 200,
    depth: Annotated[int, typer.Option("--depth", min=0, max=50, help="Links followed from a seed.")] = 3,
    max_media: Annotated[int, typer.Option("--max-media", min=0, help="Media files fetched at most.")] = 2000,
    no_sitemaps: Annotated[bool, typer.Option("--no-sitemaps", help="Do not read robots.txt/sitemap.xml.")] = False,
    recheck: Annotated[
        bool, typer.Option("--recheck", help="Re-check the case's findings instead of crawling.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Crawl seed URLs for a case's protected media and names, and record findings with evidence."""
    console = Console(stderr=as_json)
    settings, factory = _open(console)
    case_id = _case_id(console, factory, case)
    if recheck:
        with Progress(SpinnerColumn(), TextColumn("re-checking findings…"), console=console, transient=True) as bar:
            bar.add_task("recheck", total=None)
            summary = recheck_case(factory, settings, case_id)
        if as_json:
            typer.echo(json.dumps({"case_id": case_id, **summary.as_dict(), "outcomes": summary.outcomes}))
            return
        console.print(
            f"{summary.checked} checked: {summary.still_there} still there, {summary.removed} newly removed, "
            f"{summary.reopened} back again, {summary.errors} could not be checked"
        )
        console.print(_findings_table(factory, case_id, ids={o["finding_id"] for o in summary.outcomes}))
        return
    options = CrawlOptions(
        max_pages=max_pages,
        max_depth=depth,
        max_media=max_media,
        use_sitemaps=not no_sitemaps,
        hash_processes=settings.scan_hash_processes,
    )
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting…", total=None)

        def progress(stats: CrawlStats) -> None:
            bar.update(
                task,
                description=(
                    f"pages {stats.pages}/{stats.queued_pages} · media {stats.media_fetched}/{stats.queued_media} · "
                    f"hashed {stats.media_hashed} · matched {stats.media_matched} · names {stats.name_hits} · "
                    f"errors {stats.errors}"
                ),
            )

        try:
            result = scan_case(
                factory, settings, case_id, seeds or [], options=options, on_progress=progress
            )
        except ScanError as exc:
            raise _fail(console, exc.message, EXIT_USAGE) from None
    if as_json:
        typer.echo(json.dumps({"run_id": result.run_id, "case_id": case_id, **result.stats}))
        return
    stats = result.stats
    console.print(
        f"scan {result.run_id}: {stats['pages']} pages, {stats['media_fetched']} media fetched, "
        f"{stats['media_hashed']} hashed, {stats['errors']} errors; "
        f"{len(result.new_findings)} new findings, {len(result.seen_findings)} seen again"
    )
    found = set(result.new_findings) | set(result.seen_findings)
    if found:
        console.print(_findings_table(factory, case_id, ids=found))
    for error in stats.get("error_log", [])[:10]:
        console.print(f"[yellow]fetch error[/yellow] {escape(error['code'])}: {escape(error['url'])}")


def findings_command(
    case: Annotated[str, typer.Argument(help="Case id or name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print findings with full evidence as JSON lines.")] = False,
) -> None:
    """List a case's findings."""
    console = Console()
    _settings, factory = _open(console)
    case_id = _case_id(console, factory, case)
    if as_json:
        with factory.begin() as session:
            for f in store.list_findings(session, case_id, limit=10_000):
                record = {
                    "id": f.id, "url": f.url, "kind": f.kind, "status": f.status, "http_status": f.http_status,
                    "first_seen_at": f.first_seen_at.isoformat(), "last_seen_at": f.last_seen_at.isoformat(),
                    "evidence": f.evidence,
                }  # fmt: skip
                typer.echo(json.dumps(record))
        return
    console.print(_findings_table(factory, case_id, limit=10_000))


def register(app: typer.Typer) -> None:
    """Attach the discover commands to the main `takeback` app."""
    app.add_typer(case_app, name="case")
    app.command("scan")(scan_command)
    app.command("findings")(findings_command)
