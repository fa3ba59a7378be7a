"""What `takeback serve --demo` does around the server: pick the demo data dir and database, start the demo site
and the mail sink, seed, say where to click, and stop the helpers when the server stops.

The demo never touches the person's real data: it uses SQLite in its own data dir (``default_dir()``, or the
``--data-dir`` given), whatever TAKEBACK_DATA_DIR and TAKEBACK_DATABASE_URL say.  Its mail goes to the local sink
unless asked otherwise, and the only private address the server may fetch from is the demo site's host:port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from takeback.config import Settings
from takeback.demo import mailsink
from takeback.demo.mailsink import MailSink
from takeback.demo.seed import DemoSeed, seed_demo
from takeback.demo.site import DemoSite


class DemoError(Exception):
    """The demo cannot start (its site's port is taken, scikit-image is missing); the message says what to do."""


@dataclass
class DemoRun:
    settings: Settings
    site: DemoSite
    sink: MailSink | None
    seed: DemoSeed


def default_dir() -> Path:
    """Next to, never inside, the real data dir: deleting it resets the demo and nothing else."""
    return Path(user_data_dir("takeback-demo"))


def demo_settings(base: Settings, data_dir: Path | None) -> Settings:
    """``base`` on SQLite in the demo data dir (the given one, else ``default_dir()``)."""
    return base.model_copy(update={"data_dir": data_dir or default_dir(), "database_url": ""})


def _site_port(folder: Path, requested: int | None) -> int:
    """The port the demo site used before (its findings' URLs name it), else the requested one, else any."""
    remembered = folder / "site-port"
    if requested is not None:
        return requested
    if remembered.exists() and remembered.read_text().strip().isdigit():
        return int(remembered.read_text().strip())
    return 0


def _start_site(folder: Path, requested: int | None) -> DemoSite:
    port = _site_port(folder, requested)
    site = DemoSite(port, removed_file=folder / "site-removed.txt")
    try:
        site.start()
    except OSError as exc:
        raise DemoError(
            f"the demo site cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}); the demo's findings name "
            "that port, so stop what uses it, or start afresh by deleting the demo data dir"
        ) from None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "site-port").write_text(f"{site.port}\n")
    return site


@contextmanager
def demo(
    settings: Settings,
    *,
    site_port: int | None = None,
    mail_sink: bool = True,
    reset_password: bool = False,
    log: Callable[[str], None] = print,
) -> Iterator[DemoRun]:
    """Start the demo site (and the mail sink), seed what is missing, and yield the settings the server must run
    with (the sink as its SMTP server, the site's origin allowed).  Stops the helpers on exit."""
    try:
        from takeback import samples  # noqa: F401 (scikit-image: the demo's photos)
    except ImportError:
        raise DemoError("the demo needs scikit-image: pip install 'takeback[demo]'") from None
    folder = settings.data_dir / "demo"
    site = _start_site(folder, site_port)
    sink: MailSink | None = None
    try:
        if mail_sink:
            sink = mailsink.start(folder / "mail")
            if sink is None:
                log("the local mail sink needs aiosmtpd (pip install 'takeback[demo]'): notices are not sent")
            else:
                settings = settings.model_copy(update={"smtp_host": sink.host, "smtp_port": sink.port,
                                                       "smtp_username": "", "smtp_starttls": False,
                                                       "smtp_ssl": False})
        settings = settings.allowing_origins(site.origin)
        seeded = seed_demo(settings, site, mail=sink is not None or not mail_sink, reset_password=reset_password,
                           log=lambda line: log(f"  seeded: {line}"))
        yield DemoRun(settings, site, sink, seeded)
    finally:
        site.stop()
        if sink is not None:
            sink.stop()


def banner(run: DemoRun, url: str) -> str:
    """Where to click and how to sign in (the password only when it was just made)."""
    seed = run.seed
    lines = [
        "",
        "takeback demo — everything here is made up and benign (sample photos, a pretend person and web site)",
        f"  open            {url}/app/",
        f"  sign in as      {seed.email}",
        (f"  password        {seed.password}   (shown only now; keep it)" if seed.password else
         "  password        the one shown when the demo was first set up "
         "(forgot it? start again with --demo-new-password)"),
        f"  the case        {url}/app/cases/{seed.case_id}",
        f"  its notices     {url}/app/cases/{seed.case_id}/notices/",
        f"  operator pages  {url}/app/operator/   (TAKE IT DOWN inbox: {url}/app/operator/inbox/)",
        f"  petition        {url}/p/{seed.petition_slug}",
        f"  demo web site   {run.site.url('/')}   (scan it from the case page)",
        f"  demo data       {run.settings.data_dir}",
    ]
    if run.sink is not None:
        lines.append(f"  mail sent       {run.sink.folder}/   (kept as .eml files, never delivered)")
    return "\n".join(lines) + "\n"
