"""The petition commands: `takeback petition create|list|counts|flags|resolve|remove|export`.

They work on the configured database directly (like `takeback scan`), for organisers on the server machine;
the same operations are in the API (manage scope) for everyone else.

Exit codes: 0 done; 1 the database could not be opened; 2 usage error (unknown case, petition or flag, invalid
input); 3 the export could not be written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from takeback import config
from takeback.petition import export as export_mod
from takeback.petition.service import PetitionError, PetitionService
from takeback.store import petitions
from takeback.store.errors import InvalidInput

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_WRITE_FAILED = 3

petition_app = typer.Typer(help="Petitions: create, counts, review flags, removals, export.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str, code: int) -> typer.Exit:
    err.print(f"[red]takeback:[/red] {escape(message)}")
    return typer.Exit(code)


def _service() -> PetitionService:
    from takeback.store.db import open_store

    settings = config.load()
    try:
        _, sessions = open_store(settings)
        return PetitionService(settings, sessions)
    except (OSError, SQLAlchemyError) as exc:
        raise _fail(f"cannot open the database: {str(exc).splitlines()[0]}", EXIT_FAILED) from None


def _petition(svc: PetitionService, slug: str) -> petitions.PetitionInfo:
    try:
        return svc.petition(slug)
    except PetitionError as exc:
        raise _fail(exc.message, EXIT_USAGE) from None


@petition_app.command("create")
def create(
    case_id: Annotated[int, typer.Option("--case", help="The case the petition belongs to.")],
    slug: Annotated[str, typer.Option(help="Its address: /p/<slug> (a-z, 0-9, '-').")],
    title: Annotated[str, typer.Option()],
    target: Annotated[str, typer.Option(help="Who the petition is addressed to.")],
    goal: Annotated[int, typer.Option(min=1)],
    text_file: Annotated[Path, typer.Option("--text", help="A UTF-8 text file with the petition's text.")],
    closes: Annotated[datetime | None, typer.Option(help="When signing closes (UTC).")] = None,
) -> None:
    """Create a petition for a case."""
    try:
        text = text_file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {text_file}: {exc}", EXIT_USAGE) from None
    svc = _service()
    try:
        with svc.sessions.begin() as session:
            info = petitions.create_petition(
                session,
                case_id,
                slug,
                title,
                text,
                target,
                goal,
                closes_at=closes.replace(tzinfo=UTC) if closes and closes.tzinfo is None else closes,
            )
    except (petitions.PetitionExists, petitions.UnknownCase, InvalidInput) as exc:
        raise _fail(f"{type(exc).__name__}: {exc}", EXIT_USAGE) from None
    out.print(f"created petition {info.slug!r} (id {info.id}); public page: /p/{info.slug}")


@petition_app.command("list")
def list_command(case_id: Annotated[int | None, typer.Option("--case")] = None) -> None:
    """Petitions with their verified and pending counts."""
    svc = _service()
    table = Table("slug", "title", "goal", "verified", "pending", "closes")
    with svc.read_sessions() as session:
        for p in petitions.list_petitions(session, case_id):
            c = petitions.get_counts(session, p.id)
            closes = p.closes_at.isoformat() if p.closes_at else "-"
            table.add_row(escape(p.slug), escape(p.title), f"{p.goal:,}", f"{c.verified:,}", f"{c.pending:,}", closes)
    out.print(table)


@petition_app.command("counts")
def counts(
    slug: str,
    check: Annotated[bool, typer.Option("--check", help="Recount the rows and compare with the counters.")] = False,
) -> None:
    """Verified/pending totals and by country; --check proves the counters equal the rows."""
    svc = _service()
    p = _petition(svc, slug)
    with svc.read_sessions() as session:
        total = petitions.get_counts(session, p.id)
        out.print(f"{p.slug}: {total.verified:,} verified, {total.pending:,} pending (goal {p.goal:,})")
        for country, c in petitions.breakdown(session, p.id, "country"):
            out.print(f"  {country}: {c.verified:,} verified, {c.pending:,} pending")
        if check:
            exact = petitions.counter_table(session, p.id) == petitions.recount(session, p.id)
            out.print("counters equal the rows" if exact else "[red]counters differ from the rows[/red]")
            if not exact:
                raise typer.Exit(EXIT_FAILED)


@petition_app.command("flags")
def flags(slug: str) -> None:
    """Detect and list review flags (bursts from one network or postcode within an hour)."""
    svc = _service()
    p = _petition(svc, slug)
    table = Table("id", "kind", "key", "hour (UTC)", "signatures", "status")
    for f in svc.flags(p):
        table.add_row(str(f.id), f.kind, escape(f.key), f.window_start.isoformat(), str(f.signatures), f.status)
    out.print(table)


@petition_app.command("resolve")
def resolve(
    slug: str,
    flag_id: int,
    action: Annotated[str, typer.Argument(help="dismiss | remove")],
    note: Annotated[str, typer.Option(help="Why (kept in the removal log).")] = "",
    actor: Annotated[str, typer.Option(help="Who decided.")] = "cli",
) -> None:
    """Dismiss a flag, or remove every signature it covers (logged)."""
    svc = _service()
    p = _petition(svc, slug)
    try:
        flag, removed = svc.resolve_flag(p, flag_id, action, actor, note)
    except (PetitionError, InvalidInput) as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    out.print(f"flag {flag.id}: {flag.status}; signatures removed: {removed}")


@petition_app.command("remove")
def remove(
    slug: str,
    ids: Annotated[list[int], typer.Argument(help="Signature ids.")],
    reason: Annotated[str, typer.Option(help="Why (required, kept in the removal log).")],
    actor: Annotated[str, typer.Option()] = "cli",
) -> None:
    """Remove signatures (fraud, abuse), with a reason; they stop counting and the log keeps who and why."""
    svc = _service()
    p = _petition(svc, slug)
    try:
        removed = svc.remove(p, ids, reason, actor)
    except InvalidInput as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    out.print(f"removed {len(removed)} signature(s)")


@petition_app.command("export")
def export(
    slug: str,
    output: Annotated[Path, typer.Option("--output", "-o", help="The CSV or PDF file; the summary goes next to it.")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv or pdf (default: from the output's suffix, csv unless it is .pdf)."),
    ] = None,
) -> None:
    """Verified signatures as CSV or PDF (name per consent, country) and <output>.summary.json (count, SHA-256 of
    the file's exact bytes, Ed25519 signature)."""
    chosen = (fmt or ("pdf" if output.suffix.lower() == ".pdf" else "csv")).lower()
    if chosen not in export_mod.FORMATS:
        raise _fail(f"--format: one of {', '.join(export_mod.FORMATS)}, not {fmt!r}", EXIT_USAGE)
    svc = _service()
    p = _petition(svc, slug)
    built, summary = svc.export(p, chosen)
    summary_path = output.with_name(output.name + ".summary.json")
    try:
        output.write_bytes(built.data)
        summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", "utf-8")
    except OSError as exc:
        raise _fail(f"cannot write the export: {exc}", EXIT_WRITE_FAILED) from None
    out.print(
        f"{built.rows:,} verified signatures -> {escape(str(output))} ({built.format}, sha256 {built.sha256}); "
        f"summary -> {escape(str(summary_path))}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(petition_app, name="petition")
