"""The takedown commands: `takeback notices bases|parties|draft|list|show|status|export|send|mark|due|escalate|recheck`
and `takeback evidence verify|export`.

They work on the configured database directly (like `takeback scan`).  `parties` and `recheck` reach the network
(RDAP, the site) through bounded, SSRF-guarded clients; `send` and `due --retry` talk to the configured SMTP server.
takeback helps write and send notices; it does not give legal advice (`takeback notices bases` explains each basis).

Exit codes: 0 done; 1 the database could not be opened, or sending failed (the notice stays queued);
2 usage error (unknown finding/notice/case, incomplete or invalid notice, a state change that is not allowed);
3 the export file could not be written; 7 `evidence verify` found the log tampered with.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from takeback import config, store
from takeback.takedown import network, service
from takeback.takedown.directory import DirectoryError, load_directory
from takeback.takedown.dossier import export_case, render_html, render_pdf
from takeback.takedown.notices import BASES, DISCLAIMER, EXPLANATIONS, NOTICE_TYPES, NoticeError
from takeback.takedown.resolution import resolve_finding
from takeback.takedown.status import human, notice_status

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_WRITE_FAILED = 3
EXIT_TAMPERED = 7

notices_app = typer.Typer(help="Takedown notices: draft, send, track to removal, escalate.", no_args_is_help=True)
evidence_app = typer.Typer(help="The hash-chained evidence log of a case.", no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def _open() -> tuple[config.Settings, sessionmaker[Session]]:
    settings = config.load()
    try:
        _engine, factory = store.open_store(settings)
    except (SQLAlchemyError, OSError, store.StoreError) as exc:
        raise _fail(f"cannot open the database: {type(exc).__name__}", EXIT_FAILED) from None
    return settings, factory


def _directory(settings: config.Settings) -> Any:
    try:
        return load_directory(settings.takedown_platforms_file)
    except DirectoryError as exc:
        raise _fail(str(exc)) from None


def _errors(exc: Exception) -> typer.Exit:
    """Known errors as one clear line (and the missing elements one per line)."""
    missing = getattr(exc, "missing", None)
    if missing:
        console.print(f"[red]error:[/red] the {escape(getattr(exc, 'basis', ''))} notice is incomplete; add:")
        for element in missing:
            field = escape(f"[field: {element.field}]")
            console.print(f"  - {escape(element.label)} ({escape(element.citation)}) {field}")
        return typer.Exit(EXIT_USAGE)
    message = getattr(exc, "message", None) or str(exc)
    return _fail(message)


KNOWN = (NoticeError, service.TakedownError, store.StoreError, ValueError)


def _print_notice_line(n: store.NoticeInfo) -> None:
    to = n.recipient or n.web_form or "(no recipient: set --to or --party)"
    console.print(f"notice {n.id}: {n.basis}, {n.state}, to {escape(to)}"
                  + (f", due {n.due_at:%Y-%m-%d %H:%M} UTC" if n.due_at else ""))


@notices_app.command("bases")
def bases_command() -> None:
    """What each legal basis is for and what it requires (plain words; not legal advice)."""
    for basis in BASES:
        kind = NOTICE_TYPES[basis]
        console.print(f"[bold]{basis}[/bold] — {escape(kind.TITLE)} ({escape(kind.CITATION)})")
        console.print(f"  {escape(EXPLANATIONS[basis])}")
        for element in kind.ELEMENTS:
            console.print(f"  • {escape(element.label)}  [dim]{escape(element.citation)} · {element.field}[/dim]")
    console.print(escape(DISCLAIMER))


@notices_app.command("parties")
def parties_command(
    finding_id: Annotated[int, typer.Argument(help="The finding whose removers to look up.")],
    basis: Annotated[str | None, typer.Option(help="Prefer channels for this basis.")] = None,
) -> None:
    """Find who can remove a finding (directory, security.txt and the site's own contact links, RDAP for host,
    upstream provider and registrar) and remember them."""
    settings, factory = _open()
    directory = _directory(settings)
    try:
        _finding, resolution, saved = asyncio.run(resolve_finding(factory, settings, finding_id, directory=directory,
                                                                  basis=basis))
    except KNOWN as exc:
        raise _errors(exc) from None
    table = Table("party", "kind", "name", "contact", "source", "note")
    for party, candidate in zip(saved, resolution.parties, strict=True):
        table.add_row(str(party.id), party.kind, escape(party.name), escape(party.email or party.web_form or "—"),
                      party.source, escape(candidate.note))
    console.print(table)


@notices_app.command("draft")
def draft_command(
    finding_ids: Annotated[list[int], typer.Argument(help="Findings (of one case) this notice covers.")],
    basis: Annotated[str, typer.Option(help=f"Legal basis: {', '.join(BASES)} (see `notices bases`).")],
    details: Annotated[Path | None, typer.Option(help="JSON file with the notice's fields (sender, statements...).")
                       ] = None,
    party: Annotated[int | None, typer.Option(help="Addressee (an id from `notices parties`).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Recipient e-mail (overrides the party's).")] = None,
    name: Annotated[str | None, typer.Option(help="Your name.")] = None,
    email: Annotated[str | None, typer.Option(help="Your e-mail address (replies go there).")] = None,
    address: Annotated[str | None, typer.Option(help="Your postal address (DMCA).")] = None,
    phone: Annotated[str | None, typer.Option(help="Your telephone number.")] = None,
    acting_for: Annotated[str | None, typer.Option(help="Name of the person you act for, if not yourself.")] = None,
    signature: Annotated[str | None, typer.Option(help='Electronic signature, e.g. "/s/ Jane Doe".')] = None,
    work: Annotated[str | None, typer.Option(help="DMCA: the copyrighted work (what you made).")] = None,
    explanation: Annotated[str | None, typer.Option(help="Why the content is illegal / should go.")] = None,
    ground: Annotated[list[str] | None, typer.Option(help="GDPR Art. 17(1) ground letter a-f (repeatable).")] = None,
    affirm: Annotated[bool, typer.Option(
        "--affirm", help="I have read and make the statements this basis requires (good faith, accuracy...).")] = False,
) -> None:
    """Draft a complete notice for one party covering one or more findings; nothing is sent yet."""
    data: dict[str, Any] = {}
    if details is not None:
        try:
            data = json.loads(details.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise _fail(f"{details}: {exc}") from None
        if not isinstance(data, dict):
            raise _fail(f"{details}: must hold a JSON object")
    sender = dict(data.get("sender") or {})
    for key, value in (("name", name), ("email", email), ("postal_address", address), ("phone", phone),
                       ("acting_for", acting_for)):
        if value is not None:
            sender[key] = value
    if sender:
        data["sender"] = sender
    for key, value in (("signature", signature), ("work", work), ("explanation", explanation)):
        if value is not None:
            data[key] = value
    if ground:
        data["grounds"] = ground
    if affirm:
        statements = ("good_faith", "accuracy_under_penalty_of_perjury", "good_faith_not_consensual", "bona_fide")
        model = NOTICE_TYPES.get(basis)
        for key in statements:
            if model is not None and key in model.model_fields:
                data[key] = True
    _settings, factory = _open()
    try:
        with factory.begin() as session:
            first = store.get_finding(session, finding_ids[0])
            if first is None:
                raise service.UnknownFinding(f"no finding {finding_ids[0]}")
            notice = service.draft_notice(session, first.case_id, finding_ids, basis, data, party_id=party,
                                          recipient=to)
    except KNOWN as exc:
        raise _errors(exc) from None
    _print_notice_line(notice)
    console.print("review it with `takeback notices show "
                  f"{notice.id}`, then `takeback notices send {notice.id}`"
                  + (" (or export it for the web form)" if notice.channel == "web_form" else ""))


@notices_app.command("list")
def list_command(
    case: Annotated[int | None, typer.Option(help="Only this case.")] = None,
    state: Annotated[str | None, typer.Option(help="Only notices in this state.")] = None,
) -> None:
    """Notices with their state and deadline."""
    _settings, factory = _open()
    with factory() as session:
        notices = store.list_notices(session, case, state=state, limit=10_000)
    table = Table("id", "case", "basis", "state", "to", "sent", "due")
    for n in notices:
        sent = f"{n.sent_at:%Y-%m-%d %H:%M}" if n.sent_at else ""
        due = f"{n.due_at:%Y-%m-%d %H:%M}" if n.due_at else ""
        table.add_row(str(n.id), str(n.case_id), n.basis, n.state, escape(n.recipient or n.web_form or "—"), sent, due)
    console.print(table)


def _get(factory: sessionmaker[Session], notice_id: int) -> tuple[store.NoticeInfo, list[Any], list[Any]]:
    with factory() as session:
        notice = store.get_notice(session, notice_id)
        if notice is None:
            raise _fail(f"no notice {notice_id}")
        return notice, store.notice_urls(session, notice_id), store.list_notice_events(session, notice_id)


@notices_app.command("show")
def show_command(notice_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A notice: its text, URLs (with the last re-check) and history."""
    _settings, factory = _open()
    notice, urls, events = _get(factory, notice_id)
    if as_json:
        typer.echo(json.dumps({"notice": notice.data, "state": notice.state, "urls": [u.url for u in urls],
                               "events": [{"at": e.at.isoformat(), "kind": e.kind, "detail": e.detail}
                                          for e in events]}, indent=2, sort_keys=True))
        return
    _print_notice_line(notice)
    console.print(f"Subject: {escape(notice.subject)}\n")
    typer.echo(notice.body)
    for url in urls:
        console.print(f"  {escape(url.url)}: {url.status}"
                      + (f" (checked {url.checked_at:%Y-%m-%d %H:%M})" if url.checked_at else ""))
    for event in events:
        console.print(f"  {event.at:%Y-%m-%d %H:%M} {event.kind} {escape(json.dumps(event.detail))}")


def _status_targets(factory: sessionmaker[Session], target: int | None, case: bool) -> list[store.NoticeInfo]:
    with factory() as session:
        if target is None:
            return [n for n in store.list_notices(session, limit=10_000) if n.state not in ("removed", "escalated")]
        if case:
            if store.get_case(session, target) is None:
                raise _fail(f"no case {target}")
            return store.list_notices(session, target, limit=10_000)
        notice = store.get_notice(session, target)
        if notice is None:
            raise _fail(f"no notice {target} (give --case for a case id)")
        return [notice]


@notices_app.command("status")
def status_command(
    target: Annotated[int | None, typer.Argument(help="A notice id, or a case id with --case; omit for every "
                                                      "notice still open.")] = None,
    case: Annotated[bool, typer.Option("--case", help="TARGET is a case: every notice of it.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Where notices stand: state, deadline and time left (or overdue), the last event, what the last re-check saw
    at each URL, and the next step."""
    if case and target is None:
        raise _fail("--case needs a case id")
    settings, factory = _open()
    notices = _status_targets(factory, target, case)
    with factory() as session:
        views = [notice_status(session, settings, n) for n in notices]
    if as_json:
        typer.echo(json.dumps([v.as_dict() for v in views], indent=2, sort_keys=True))
        return
    if not views:
        console.print("no notices")
    for view in views:
        n = view.notice
        line = f"notice {n.id} (case {n.case_id}, {n.basis}): {n.state}"
        if view.party:
            line += f", to {view.party}"
        console.print(escape(line))
        if view.due_at is not None:
            when = f"{view.due_at:%Y-%m-%d %H:%M} UTC"
            if view.seconds_left is None:
                console.print(f"  deadline {when}")
            elif view.overdue:
                console.print(f"  deadline {when}: [red]overdue by {human(view.seconds_left)}[/red]")
            else:
                console.print(f"  deadline {when}: {human(view.seconds_left)} left")
        if view.last_event is not None:
            event = view.last_event
            console.print(f"  last: {event.at:%Y-%m-%d %H:%M} {escape(event.kind)}")
        for url in view.urls:
            checked = f"checked {url.checked_at:%Y-%m-%d %H:%M}" if url.checked_at else "not re-checked yet"
            seen = {"present": "still online", "removed": "gone", "listed": "listed"}.get(url.status, url.status)
            console.print(f"  {escape(url.url)}: {seen} ({checked})")
        console.print(f"  next: {escape(view.next_step)}")


@notices_app.command("export")
def export_command(
    notice_id: int,
    as_json: Annotated[bool, typer.Option("--json", help="The machine-readable copy instead of the text.")] = False,
) -> None:
    """The notice ready to paste into a web form (or its JSON copy); then `notices mark ID sent`."""
    _settings, factory = _open()
    notice, _urls, _events = _get(factory, notice_id)
    typer.echo(service.store_json(notice.data) if as_json else notice.body)


@notices_app.command("send")
def send_command(notice_id: int) -> None:
    """Send a drafted (or queued) notice by e-mail through the configured SMTP server."""
    settings, factory = _open()
    try:
        with factory.begin() as session:
            outcome = service.send_notice(session, settings, notice_id)
    except KNOWN as exc:
        raise _errors(exc) from None
    if not outcome.sent:
        raise _fail(f"not sent, the notice stays queued: {outcome.error}", EXIT_FAILED)
    _print_notice_line(outcome.notice)


@notices_app.command("mark")
def mark_command(
    notice_id: int,
    state: Annotated[str, typer.Argument(help=f"One of {', '.join(service.MANUAL_STATES)}.")],
    note: Annotated[str, typer.Option(help="The reply or what happened (kept in the evidence log).")] = "",
) -> None:
    """Record a reply (acknowledged, refused), a removal, or that a web-form notice was submitted (sent)."""
    settings, factory = _open()
    try:
        with factory.begin() as session:
            notice = service.mark_notice(session, settings, notice_id, state, note=note)
    except KNOWN as exc:
        raise _errors(exc) from None
    _print_notice_line(notice)


@notices_app.command("due")
def due_command(retry: Annotated[bool, typer.Option(help="Also retry queued notices.")] = False) -> None:
    """Expire notices whose deadline passed and say who to turn to next."""
    settings, factory = _open()
    with factory.begin() as session:
        report = service.check_due(session, directory=_directory(settings))
        reopened = service.reopen_reappeared(session)
        retried = service.retry_queued(session, settings) if retry else []
    for notice, proposal in zip(report.expired, report.proposals, strict=True):
        console.print(f"notice {notice.id} expired ({notice.basis}): {escape(proposal.reason)}")
        if proposal.party is not None:
            console.print(f"  escalate: takeback notices escalate {notice.id} --party {proposal.party.id} "
                          f"--basis {proposal.basis}")
        for regulator in proposal.regulators:
            console.print(f"  or complain to {escape(regulator['name'])}: {escape(regulator['url'])}")
    for outcome in retried:
        console.print(f"notice {outcome.notice.id}: " + ("sent" if outcome.sent else f"still queued: {outcome.error}"))
    for notice in reopened:
        console.print(f"content came back: follow-up notice {notice.id} drafted (after notice {notice.parent_id})")
    if not report.expired and not retried and not reopened:
        console.print("nothing is due")


@notices_app.command("escalate")
def escalate_command(
    notice_id: int,
    party: Annotated[int, typer.Option(help="The next party (see `notices due`).")],
    basis: Annotated[str | None, typer.Option(help="Basis of the new notice (default: the same).")] = None,
    details: Annotated[Path | None, typer.Option(help="JSON file with fields to add or replace.")] = None,
) -> None:
    """Close an expired or refused notice and draft the next one to the given party."""
    _settings, factory = _open()
    extra: dict[str, Any] = {}
    if details is not None:
        try:
            extra = json.loads(details.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise _fail(f"{details}: {exc}") from None
    try:
        with factory.begin() as session:
            notice = service.escalate(session, notice_id, party_id=party, basis=basis, details=extra)
    except KNOWN as exc:
        raise _errors(exc) from None
    _print_notice_line(notice)


@notices_app.command("recheck")
def recheck_command(
    notice_id: Annotated[int | None, typer.Argument(help="The notice (omit with --all).")] = None,
    all_open: Annotated[bool, typer.Option("--all", help="Every notice still waiting for removal.")] = False,
) -> None:
    """Fetch the notice's URLs again: confirms removal, or reopens the chain when content came back."""
    if (notice_id is None) == (not all_open):
        raise _fail("give a notice id or --all (not both)")
    settings, factory = _open()

    async def run() -> list[service.RecheckReport]:
        async with network.open_fetcher(settings) as fetcher:
            if notice_id is None:
                return await service.recheck_open(factory, fetcher,
                                                  every=timedelta(hours=settings.takedown_recheck_hours))
            return [await service.recheck_notice(factory, notice_id, fetcher)]

    try:
        reports = asyncio.run(run())
    except KNOWN as exc:
        raise _errors(exc) from None
    for report in reports:
        console.print(f"notice {report.notice.id}:")
        for check in report.checks:
            console.print(f"  {escape(check.url)}: {check.outcome}"
                          + (f" (HTTP {check.status})" if check.status else f" ({escape(check.error or '')})"))
        if report.removed:
            console.print("  removal confirmed")
        if report.follow_up is not None:
            console.print(f"  content is back: follow-up notice {report.follow_up.id} drafted")
    if not reports:
        console.print("nothing to re-check")


@evidence_app.command("verify")
def verify_command(
    case: int,
    head: Annotated[str | None, typer.Option(help="A head hash kept from an earlier export.")] = None,
) -> None:
    """Check the case's evidence log: every entry chained to the previous, nothing edited or removed."""
    _settings, factory = _open()
    with factory() as session:
        check = store.verify_evidence(session, case, expected_head=head)
    if check.ok:
        console.print(f"ok: {check.entries} entries verify; head {check.head}")
        return
    console.print(f"[red]TAMPERED[/red]: first bad entry {check.first_bad_position}: {escape(check.reason)}")
    raise typer.Exit(EXIT_TAMPERED)


@evidence_app.command("export")
def evidence_export_command(
    case: int,
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write (.json, .html or .pdf).")],
    fmt: Annotated[str | None, typer.Option("--format", help="json, html or pdf (default: from the file name).")
                   ] = None,
) -> None:
    """The case dossier: timeline, findings, notices with their text, responses, time-to-removal statistics."""
    _settings, factory = _open()
    suffix = output.suffix.lower().lstrip(".")
    kind = fmt or {"htm": "html", "html": "html", "pdf": "pdf"}.get(suffix, "json")
    if kind not in ("json", "html", "pdf"):
        raise _fail("--format must be json, html or pdf")
    try:
        with factory() as session:
            dossier = export_case(session, case)
    except Exception as exc:  # UnknownCaseError
        raise _fail(str(exc)) from None
    if kind == "pdf":
        data = render_pdf(dossier)
    else:
        data = (render_html(dossier) if kind == "html" else json.dumps(dossier, indent=2, sort_keys=True)).encode()
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc}", EXIT_WRITE_FAILED) from None
    console.print(f"wrote {output} ({kind}); evidence {'verifies' if dossier['evidence']['verified'] else 'BROKEN'},"
                  f" head {dossier['evidence']['head']}")


def register(app: typer.Typer) -> None:
    """Attach `notices` and `evidence` to the main `takeback` app."""
    app.add_typer(notices_app, name="notices")
    app.add_typer(evidence_app, name="evidence")
