"""The match-service commands: `takeback serve`, `takeback bank …`, `takeback match …`, `takeback client …`.

Everything except `serve` talks HTTP to a running server (`--url`, env TAKEBACK_URL) with an API key (`--key`, env
TAKEBACK_API_KEY).  `match` and `bank add` hash media on this device and send only the hashes.

Exit codes of these commands (the numbers 0-4 mean the same as for `takeback hash`):

* 0 — the command did what was asked (for `match`: the check ran, whether or not anything matched);
* 1 — some files could not be hashed (the others were still sent); for `serve`: the server could not start;
* 2 — usage error (bad option, no API key given, file not found);
* 3 — the export could not be written;
* 5 — the server could not be reached (not running, wrong address, timeout);
* 6 — the server refused the request (its HTTP status, error code and message are printed);
* 10 — `match --fail-on-match` only: the check ran and something matched.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from takeback import config
from takeback.client import DEFAULT_URL, ApiError, ServiceUnreachable, TakebackClient, dumps

# Re-exported: the other command modules and the tests import the exit codes from here.
from takeback.exit_codes import (
    EXIT_MATCHED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_SOME_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    EXIT_WRITE_FAILED,
)
from takeback.protect.queries import bank_variant_signals, fold, query_signals
from takeback.protect.results import FileResult, Status
from takeback.signals.validate import InvalidSignal, canonical_value
from takeback.signals.variants import UnknownMode, modes_text, parse_query_modes

#: `serve` only: the server could not start (database cannot be opened; uvicorn also exits 1 when the port is taken).
EXIT_SERVE_FAILED = 1

#: Queries per /v1/match/batch request (the server's default max_match_batch).
MATCH_CHUNK = 1000
#: Signals per POST /v1/banks/{bank}/signals request when uploading locally hashed media.
UPLOAD_CHUNK = 10_000

UrlOption = Annotated[str, typer.Option("--url", envvar="TAKEBACK_URL", help="The takeback server.", show_default=True)]
KeyOption = Annotated[
    str | None,
    typer.Option("--key", envvar="TAKEBACK_API_KEY", help="API key (tbk_…); better set TAKEBACK_API_KEY."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the server's JSON instead of a table.")]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

bank_app = typer.Typer(help="Create, list, fill, export and delete banks on a takeback server.", no_args_is_help=True)
client_app = typer.Typer(help="Manage API clients and their keys (needs an admin key).", no_args_is_help=True)


# --- errors ------------------------------------------------------------------------------------------------------


def fail(message: str, code: int) -> typer.Exit:
    err.print(f"[red]takeback:[/red] {escape(message)}")
    return typer.Exit(code)


_HINTS = {
    "missing_key": "pass --key or set TAKEBACK_API_KEY",
    "invalid_key": "the key is unknown or revoked; check TAKEBACK_API_KEY",
    "forbidden_scope": "this key's scopes do not allow it",
    "forbidden_bank": "this key is not granted that bank",
}


def describe(exc: ApiError) -> str:
    """One line: what the server said, in its own words and code, plus a hint where one helps."""
    line = f"the server refused the request: {exc.status} {exc.code}: {exc.message}"
    if exc.status == 429 and exc.retry_after:
        line += f" (retry after {exc.retry_after} s)"
    hint = _HINTS.get(exc.code)
    if hint:
        line += f" — {hint}"
    return line


@contextmanager
def service_errors() -> Iterator[None]:
    """Turn the client's exceptions into one line on stderr and a distinct exit code (never a traceback)."""
    try:
        yield
    except ServiceUnreachable as exc:
        raise fail(str(exc), EXIT_UNREACHABLE) from None
    except ApiError as exc:
        raise fail(describe(exc), EXIT_REFUSED) from None


def connect(url: str, key: str | None, *, need_key: bool = True) -> TakebackClient:
    if need_key and not key:
        raise fail(
            "no API key: pass --key or set TAKEBACK_API_KEY (the admin key is printed by `takeback serve`)", EXIT_USAGE
        )
    with service_errors():
        return TakebackClient(url, key)


# --- local hashing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalSignal:
    """One signal computed on this device, and where it came from (the source never leaves the device)."""

    source: str
    signal_type: str
    value: str
    quality: int | None = None
    #: True for a value given with --hash (its source is the value itself, not a file).
    given: bool = False
    #: A query variant of the file (protect.queries): its matches are folded into the file's own row.
    variant: str | None = None

    def query(self) -> dict[str, Any]:
        return {"signal_type": self.signal_type, "value": self.value}

    def upload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"signal_type": self.signal_type, "value": self.value}
        if self.quality is not None:
            body["quality"] = self.quality
        return body


def signals_of(result: FileResult) -> list[LocalSignal]:
    """The signals a hashed file contributes: a photo's PDQ + MD5 + SHA-256, a video's vPDQ + video MD5/SHA-256,
    and the extra bank or query hashes of the modes it was hashed with (docs/robustness.md)."""
    if not result.ok:
        return []
    src = result.path
    found: list[LocalSignal] = []
    if result.kind == "image":
        if result.pdq:
            found.append(LocalSignal(src, "pdq", result.pdq, result.quality))
        exact = (("md5", result.md5), ("sha256", result.sha256))
    else:
        if result.frames:
            frames = [{"hash": f.pdq, "quality": f.quality, "timestamp": round(f.timestamp, 3)} for f in result.frames]
            found.append(LocalSignal(src, "vpdq", json.dumps(frames, separators=(",", ":"))))
        exact = (("video_md5", result.md5), ("video_sha256", result.sha256))
    found.extend(LocalSignal(src, kind, value) for kind, value in exact if value)
    found.extend(LocalSignal(src, kind, value, q, variant=name) for kind, value, q, name in query_signals(result))
    found.extend(
        LocalSignal(src, kind, value, q, variant=name) for kind, value, q, name in bank_variant_signals(result)
    )
    return found


def hash_locally(
    paths: list[Path], *, exact: bool, workers: int | None, quiet: bool, query_modes: str | None = None
) -> tuple[list[FileResult], int]:
    """Hash media on this device with takeback's own hasher; (results, number of files that failed).
    `query_modes`: to match them (those modes' query hashes instead of the bank modes', docs/robustness.md)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from takeback.protect.batch import Progress as BatchProgress
    from takeback.protect.batch import hash_paths
    from takeback.protect.cache import HashCache
    from takeback.protect.hash_file import HashOptions

    settings = config.load()
    options = HashOptions(exact=exact, max_pixels=settings.max_image_pixels)
    if query_modes is not None:
        options = replace(options, modes="", query_modes=query_modes)
    cache = HashCache(settings.cache_path)
    progress = Progress(
        TextColumn("hashing on this device"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=True,
        auto_refresh=False,  # as in `takeback hash`: no display thread, so the workers can be forked
    )
    with progress:
        task = progress.add_task("hash", total=None)

        def advance(p: BatchProgress) -> None:
            progress.update(task, total=p.total, completed=p.done, refresh=True)

        try:
            report = hash_paths(
                paths,
                options,
                workers=settings.workers if workers is None else workers,
                cache=cache,
                on_progress=advance,
            )
        finally:
            cache.close()
    for r in report.failed:
        err.print(f"[red]failed[/red] {escape(r.path)}: {escape(r.reason or r.error_code or 'error')}")
    return report.results, len(report.failed)


def parse_hash_option(text: str, default_type: str) -> LocalSignal:
    """`--hash HEX` (of --type) or `--hash TYPE:VALUE`; canonicalised and checked before anything is sent."""
    kind, value = default_type, text
    head, sep, tail = text.partition(":")
    if sep and not head.strip().startswith("[") and head.strip().isidentifier():
        kind, value = head, tail
    try:
        stype, canonical = canonical_value(kind, value)
    except InvalidSignal as exc:
        raise fail(f"--hash {text[:80]!r}: {exc.code}: {exc.message}", EXIT_USAGE) from None
    return LocalSignal(f"{stype.value}:{canonical}", stype.value, canonical, given=True)


# --- serve -------------------------------------------------------------------------------------------------------


def bootstrap_admin(settings: config.Settings) -> str | None:
    """Create an admin client when the store has no active one (first start); return its key, else None.

    Whoever can start the server owns its database, so a server whose admin keys were all revoked makes a new one
    on its next start: that is the recovery path for a lost key.
    """
    from takeback.store import count_clients, create_client
    from takeback.store.db import open_store

    engine, sessions = open_store(settings)
    try:
        with sessions.begin() as session:
            if count_clients(session, scope="admin"):
                return None
            _info, key = create_client(session, "admin", ["admin"])
            return key
    finally:
        engine.dispose()


def serve_command(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default TAKEBACK_HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port (default TAKEBACK_PORT or 8700).")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Database and index snapshots (default TAKEBACK_DATA_DIR).")
    ] = None,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log every request.")] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=64,
            help="Server processes sharing the port. Each holds its own copy of the index (memory × N) and follows "
            "the others' bank changes through the database within TAKEBACK_INDEX_SYNC_INTERVAL_S.",
        ),
    ] = 1,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Seed and serve a benign demo case (sample photos, a loopback demo web site, a recorded domain "
            "feed, notices, a petition) on SQLite in a demo data dir, never your real one unless --data-dir is "
            "given. Prints where to click and how to sign in. Needs the 'demo' extra.",
        ),
    ] = False,
    demo_site_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="--demo: the demo site's port (default: the last one used).")
    ] = None,
    mail_sink: Annotated[
        bool,
        typer.Option(
            "--mail-sink/--no-mail-sink",
            help="--demo: keep the demo's mail in a local sink (default), or send it to TAKEBACK_SMTP_HOST.",
        ),
    ] = True,
    demo_new_password: Annotated[
        bool, typer.Option("--demo-new-password", help="--demo: give the demo account a new password.")
    ] = False,
) -> None:
    """Run the match service (HTTP API under /v1, docs at /docs). Prints the admin key on first start."""
    import uvicorn

    settings = config.load()
    update: dict[str, Any] = {}
    if host is not None:
        update["host"] = host
    if port is not None:
        update["port"] = port
    if data_dir is not None:
        update["data_dir"] = data_dir
    settings = settings.model_copy(update=update)
    if demo:
        if workers > 1:
            raise fail("--demo runs one server process (its demo site and mail sink live in it)", EXIT_USAGE)
        from takeback.demo.run import demo_settings

        settings = demo_settings(settings, data_dir)

    from sqlalchemy.exc import SQLAlchemyError

    from takeback.web.app import create_app

    try:
        key = bootstrap_admin(settings)
    except (OSError, SQLAlchemyError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise fail(
            f"cannot open the database ({_redact(settings.resolved_database_url)}): {reason}", EXIT_SERVE_FAILED
        ) from None
    if key:
        print(
            "takeback: created the first API client, 'admin' (scope admin). Its key is shown only this once;\n"
            "keep it safe (for example: export TAKEBACK_API_KEY=<key>):\n"
            f"  {key}",
            flush=True,
        )
    if demo:
        _serve_demo(settings, demo_site_port, mail_sink, demo_new_password, access_log)
        return
    print(f"takeback: serving on http://{settings.host}:{settings.port} (API docs at /docs)", flush=True)
    if workers > 1:
        # Worker processes build their app from TAKEBACK_* variables: hand them this command's choices that way.
        os.environ.update({"TAKEBACK_HOST": settings.host, "TAKEBACK_PORT": str(settings.port),
                           "TAKEBACK_DATA_DIR": str(settings.data_dir)})
        uvicorn.run("takeback.web.app:create_app_from_env", factory=True, host=settings.host, port=settings.port,
                    workers=workers, access_log=access_log, log_level="info")
        return
    app = create_app(settings, freeze_heap=True)
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=access_log, log_level="info")


def _serve_demo(settings: config.Settings, site_port: int | None, mail_sink: bool, new_password: bool,
                access_log: bool) -> None:
    """`serve --demo`: the demo's site and mail sink run for as long as the server does (takeback.demo.run)."""
    import uvicorn

    from takeback.demo.run import DemoError, banner, demo
    from takeback.web.app import create_app

    try:
        with demo(settings, site_port=site_port, mail_sink=mail_sink, reset_password=new_password,
                  log=lambda line: print(f"takeback: {line}", flush=True)) as run:
            print(banner(run, f"http://{settings.host}:{settings.port}"), flush=True)
            print(f"takeback: serving on http://{settings.host}:{settings.port} (API docs at /docs)", flush=True)
            app = create_app(run.settings, freeze_heap=True)
            uvicorn.run(app, host=settings.host, port=settings.port, access_log=access_log, log_level="info")
    except DemoError as exc:
        raise fail(str(exc), EXIT_SERVE_FAILED) from None


def _redact(url: str) -> str:
    """A database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: say so rather than echo it
        return "an unparsable database URL"


# --- match -------------------------------------------------------------------------------------------------------


def match_command(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Photos, videos or folders: hashed here, only hashes are sent.")
    ] = None,
    hashes: Annotated[
        list[str] | None,
        typer.Option("--hash", help="A hash to look up instead of files (repeatable): HEX (see --type) or TYPE:VALUE."),
    ] = None,
    hash_type: Annotated[str, typer.Option("--type", help="Signal type of --hash values.")] = "pdq",
    banks: Annotated[
        list[str] | None, typer.Option("--bank", "-b", help="Only these banks (repeatable; default all granted).")
    ] = None,
    threshold: Annotated[
        int | None, typer.Option(min=0, max=256, help="PDQ distance threshold (default: the server's).")
    ] = None,
    exact: Annotated[bool, typer.Option("--exact", help="Bit-exact reference hashing (slower).")] = False,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=0, max=512, help="Hashing processes.")] = None,
    fail_on_match: Annotated[
        bool, typer.Option("--fail-on-match", help=f"Exit {EXIT_MATCHED} when anything matched (for scripts).")
    ] = False,
    query_modes: Annotated[
        str, typer.Option("--query-modes", help="Extra hashes per file: default, none, or borders,grid,smooth.")
    ] = "default",
    as_json: JsonOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Check files or hashes against the server's banks. Exit 0 when the check ran (matched or not)."""
    if not files and not hashes:
        raise fail("give files or folders to check, or --hash VALUE", EXIT_USAGE)
    for path in files or []:
        if not path.exists():
            raise fail(f"no such file or folder: {path}", EXIT_USAGE)
    queries = [parse_hash_option(h, hash_type) for h in hashes or []]
    try:
        modes = modes_text(parse_query_modes(query_modes))
    except UnknownMode as exc:
        raise fail(f"--query-modes: {exc}", EXIT_USAGE) from None
    client = connect(url, key)
    failed = 0
    if files:
        results, failed = hash_locally(list(files), exact=exact, workers=workers, quiet=quiet, query_modes=modes)
        for r in results:
            queries.extend(signals_of(r))
    with client, service_errors():
        found: list[list[dict[str, Any]]] = []
        for start in range(0, len(queries), MATCH_CHUNK):
            chunk = queries[start : start + MATCH_CHUNK]
            found.extend(client.match_batch([q.query() | _threshold(q, threshold) for q in chunk], banks=banks))
    queries, found = fold(queries, found)
    matched = sum(1 for m in found if m)
    if as_json:
        rows = [
            {"source": q.source, "signal_type": q.signal_type, "value": q.value, "matches": m}
            for q, m in zip(queries, found, strict=True)
        ]
        typer.echo(dumps({"queries": len(queries), "matched": matched, "results": rows}))
    else:
        _print_matches(queries, found)
    if failed:
        raise typer.Exit(EXIT_SOME_FAILED)
    raise typer.Exit(EXIT_MATCHED if fail_on_match and matched else EXIT_OK)


def _threshold(query: LocalSignal, threshold: int | None) -> dict[str, Any]:
    return {"threshold": threshold} if threshold is not None and query.signal_type in ("pdq", "vpdq") else {}


def _print_matches(queries: Sequence[LocalSignal], found: Sequence[list[dict[str, Any]]]) -> None:
    sources = {q.source for q in queries}
    hit_sources = {q.source for q, m in zip(queries, found, strict=True) if m}
    if hit_sources:
        table = Table(title="matches", title_justify="left")
        for column, justify in (
            ("source", "left"),
            ("signal", "left"),
            ("bank", "left"),
            ("bank signal", "right"),
            ("distance", "right"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for q, matches in zip(queries, found, strict=True):
            for m in matches:
                distance = str(m.get("distance", ""))
                if m.get("query_match_pct") is not None:
                    distance += f" ({m['query_match_pct']:.0f}% / {m.get('compared_match_pct') or 0:.0f}%)"
                source = q.value[:16] + "…" if q.given else q.source
                table.add_row(
                    escape(source), q.signal_type, escape(str(m.get("bank", ""))), str(m.get("signal_id", "")), distance
                )
        out.print(table)
    given = {q.given for q in queries}
    noun = ("hash", "hashes") if given == {True} else ("file", "files") if given == {False} else ("source", "sources")
    out.print(
        f"{len(hit_sources)} of {_count(len(sources), *noun)} matched ({_count(len(queries), 'signal', 'signals')} "
        "checked)"
    )


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


# --- banks -------------------------------------------------------------------------------------------------------


@bank_app.command("create")
def bank_create(
    name: Annotated[str, typer.Argument(help="Bank name (unique on the server).")],
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Create a bank (needs the manage or admin scope; the creating key is granted it)."""
    with connect(url, key) as client, service_errors():
        bank = client.create_bank(name, description)
    if as_json:
        typer.echo(dumps(bank))
    else:
        out.print(f"created bank {escape(name)}")


@bank_app.command("list")
def bank_list(as_json: JsonOption = False, url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """List the banks this key can see, with their signal counts."""
    with connect(url, key) as client, service_errors():
        banks = client.list_banks()
    if as_json:
        typer.echo(dumps(banks))
        return
    table = Table(title=_count(len(banks), "bank", "banks"), title_justify="left")
    for column in ("name", "signals", "description", "created"):
        table.add_column(column, justify="right" if column == "signals" else "left")
    for b in banks:
        table.add_row(
            escape(str(b.get("name", ""))),
            "-" if b.get("signals") is None else str(b["signals"]),
            escape(str(b.get("description") or "")),
            str(b.get("created_at", "")),
        )
    out.print(table)


@bank_app.command("delete")
def bank_delete(
    name: Annotated[str, typer.Argument(help="Bank to delete, with all its signals.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Delete a bank and every signal in it."""
    client = connect(url, key)
    if not yes:
        if not sys.stdin.isatty():
            raise fail("deleting a bank cannot be undone: add --yes to confirm", EXIT_USAGE)
        typer.confirm(f"Delete bank {name!r} and all its signals?", abort=True)
    with client, service_errors():
        client.delete_bank(name)
    out.print(f"deleted bank {escape(name)}")


@bank_app.command("add")
def bank_add(
    bank: Annotated[str, typer.Argument(help="Bank to add to.")],
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Hash lists (takeback JSONL, HMA CSV) are uploaded; photos, videos, folders are hashed "
            "here and only their hashes are sent."
        ),
    ],
    fmt: Annotated[str, typer.Option("--format", help="Hash-list format: auto, takeback or hma.")] = "auto",
    exact: Annotated[bool, typer.Option("--exact", help="Bit-exact reference hashing (slower).")] = False,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=0, max=512, help="Hashing processes.")] = None,
    as_json: JsonOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Add signals to a bank from hash-list files or from media hashed on this device."""
    if fmt not in ("auto", "takeback", "hma"):
        raise fail(f"--format must be auto, takeback or hma, not {fmt!r}", EXIT_USAGE)
    for path in files:
        if not path.exists():
            raise fail(f"no such file or folder: {path}", EXIT_USAGE)
    lists = [p for p in files if p.is_file() and not _is_media(p)]
    media = [p for p in files if p not in lists]
    client = connect(url, key)
    totals = {"added": 0, "duplicates": 0, "rejected": 0}
    reports: list[dict[str, Any]] = []
    failed = 0
    with client, service_errors():
        for path in lists:
            result = client.import_file(bank, path, fmt)
            rejected = result.get("rejected") or []
            reports.append({"file": str(path), **result})
            totals["added"] += int(result.get("added", 0))
            totals["duplicates"] += int(result.get("duplicates", 0))
            totals["rejected"] += len(rejected)
            if not as_json:
                _print_import(path, result)
        if media:
            results, failed = hash_locally(media, exact=exact, workers=workers, quiet=quiet)
            signals = [s.upload() for r in results for s in signals_of(r)]
            for start in range(0, len(signals), UPLOAD_CHUNK):
                result = client.add_signals(bank, signals[start : start + UPLOAD_CHUNK])
                totals["added"] += int(result.get("added", 0))
                totals["duplicates"] += int(result.get("duplicates", 0))
            hashed = sum(1 for r in results if r.status in (Status.HASHED, Status.CACHED))
            reports.append({"hashed_files": hashed, "failed_files": failed, "signals": len(signals)})
            if not as_json:
                out.print(f"hashed {hashed} files on this device, sent {len(signals)} signals")
    if as_json:
        typer.echo(dumps({"bank": bank, **totals, "reports": reports}))
    else:
        out.print(
            f"bank {escape(bank)}: {totals['added']} added, {totals['duplicates']} already present, "
            f"{totals['rejected']} lines rejected"
        )
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _is_media(path: Path) -> bool:
    from takeback.media import sniff

    try:
        return sniff.kind_of_file(path) is not sniff.Kind.UNKNOWN
    except OSError:
        return False


def _print_import(path: Path, result: dict[str, Any]) -> None:
    rejected = result.get("rejected") or []
    out.print(
        f"{escape(str(path))}: {result.get('added', 0)} added, {result.get('duplicates', 0)} already present, "
        f"{len(rejected)} lines rejected"
    )
    for r in rejected[:10]:
        err.print(
            f"  [yellow]line {r.get('line')}[/yellow] {escape(str(r.get('code')))}: {escape(str(r.get('message')))}"
        )
    if len(rejected) > 10:
        err.print(f"  … and {len(rejected) - 10} more (use --json to see all)")


@bank_app.command("export")
def bank_export(
    bank: Annotated[str, typer.Argument(help="Bank to export.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="takeback (JSONL hash list) or hma (CSV).")] = "takeback",
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Download a bank as a hash list."""
    if fmt not in ("takeback", "hma"):
        raise fail(f"--format must be takeback or hma, not {fmt!r}", EXIT_USAGE)
    client = connect(url, key)
    tmp = None if output is None else output.with_name(f".{output.name}.part")
    try:
        with client, service_errors(), client.export(bank, fmt) as chunks:
            if tmp is None:
                for chunk in chunks:
                    sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
            else:
                tmp.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # hashes are sensitive
                with os.fdopen(fd, "wb") as fh:
                    for chunk in chunks:
                        fh.write(chunk)
                    fh.flush()
                    os.fsync(fh.fileno())
                tmp.replace(output)  # type: ignore[arg-type]
    except OSError as exc:
        _discard(tmp)
        raise fail(f"could not write the export to {output}: {exc.strerror or exc}", EXIT_WRITE_FAILED) from None
    except BaseException:
        _discard(tmp)
        raise
    if output is not None:
        err.print(f"bank {escape(bank)} written to {escape(str(output))}")


def _discard(tmp: Path | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


# --- clients -----------------------------------------------------------------------------------------------------

SCOPES = ("match", "manage", "admin")


@client_app.command("create")
def client_create(
    name: Annotated[str, typer.Argument(help="Who the key is for, e.g. a platform's name.")],
    scopes: Annotated[
        list[str] | None, typer.Option("--scope", "-s", help="match, manage or admin (repeatable; default match).")
    ] = None,
    banks: Annotated[list[str] | None, typer.Option("--bank", "-b", help="Grant this bank (repeatable).")] = None,
    rate_limit: Annotated[
        int | None, typer.Option("--rate-limit", min=1, help="Requests per minute (default: the server's).")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Create an API client and print its key (shown only this once)."""
    chosen = scopes or ["match"]
    bad = [s for s in chosen if s not in SCOPES]
    if bad:
        raise fail(f"unknown scope {bad[0]!r}; choose from {', '.join(SCOPES)}", EXIT_USAGE)
    with connect(url, key) as client, service_errors():
        created = client.create_client(name, chosen, banks, rate_limit)
    if as_json:
        typer.echo(dumps(created))
        return
    err.print(
        f"created client {escape(name)} (id {created.get('id')}, scopes {' '.join(chosen)}); "
        "its key is shown only this once:"
    )
    typer.echo(str(created.get("key", "")))


@client_app.command("list")
def client_list(as_json: JsonOption = False, url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """List API clients (keys are never shown again, only their prefixes)."""
    with connect(url, key) as client, service_errors():
        clients = client.list_clients()
    if as_json:
        typer.echo(dumps(clients))
        return
    table = Table(title=_count(len(clients), "client", "clients"), title_justify="left")
    for column in ("id", "name", "key prefix", "scopes", "banks", "rate/min", "revoked"):
        table.add_column(column)
    for c in clients:
        scopes = c.get("scopes", "")
        granted = c.get("banks") or []
        table.add_row(
            str(c.get("id", "")),
            escape(str(c.get("name", ""))),
            escape(str(c.get("key_prefix", ""))),
            " ".join(scopes) if isinstance(scopes, list) else str(scopes),
            escape(", ".join(map(str, granted))) if isinstance(granted, list) else str(granted),
            str(c.get("rate_limit_per_minute", "")),
            str(c.get("revoked_at") or ""),
        )
    out.print(table)


@client_app.command("revoke")
def client_revoke(
    client_id: Annotated[int, typer.Argument(help="Client id (see `takeback client list`).")],
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Revoke a client's key at once; it can no longer be used."""
    with connect(url, key) as client, service_errors():
        client.revoke_client(client_id)
    out.print(f"revoked client {client_id}")


@client_app.command("grant")
def client_grant(
    client_id: Annotated[int, typer.Argument(help="Client id.")],
    banks: Annotated[list[str], typer.Argument(help="Banks to grant.")],
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Grant a client access to banks."""
    with connect(url, key) as client, service_errors():
        client.grant_banks(client_id, banks)
    out.print(f"granted client {client_id}: {escape(', '.join(banks))}")


def register(app: typer.Typer) -> None:
    """Attach the service commands to the main `takeback` app."""
    app.command("serve")(serve_command)
    app.command("match")(match_command)
    app.add_typer(bank_app, name="bank")
    app.add_typer(client_app, name="client")
