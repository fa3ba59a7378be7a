"""Outgoing e-mail over real SMTP: takedown notices and petition verification links go through here.

One small synchronous sender (``smtplib``) so every caller gets the same envelope rules: the From address comes
from configuration, headers are built by the standard library (no header injection through names or subjects),
and a refused or unreachable server is a ``MailError`` the caller records instead of a crash.  Async callers run
``send_mail`` in a thread.

TLS (STARTTLS or TLS from the first byte) always verifies the server's certificate and host name; a private relay
with its own CA is trusted by naming that CA (``smtp_tls_ca_file``), never by turning verification off.  A caller
that may send the same message twice (a job retried after a crash) passes a stable ``message_id``, so the
recipient's systems can recognise the repeat.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from takeback.config import Settings


class MailError(Exception):
    """The message was not accepted by the SMTP server (or the server could not be reached)."""


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None
    #: Extra headers (e.g. ``List-Unsubscribe``); names and values with line breaks are refused.
    headers: dict[str, str] = field(default_factory=dict)
    #: Attachments as (filename, MIME type "major/minor", bytes): machine-readable copies, never media.
    attachments: tuple[tuple[str, str, bytes], ...] = ()
    #: A fixed Message-ID ("<id@domain>") instead of a fresh one: the same value on every retry of one send.
    message_id: str | None = None


_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,200}@[!-;=?-~]{1,200}>")


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Certificate and host name checked; the system's CAs, or only ``smtp_tls_ca_file`` when it is set."""
    cafile = str(settings.smtp_tls_ca_file) if settings.smtp_tls_ca_file else None
    return ssl.create_default_context(cafile=cafile)


def build_message(settings: Settings, mail: Mail) -> EmailMessage:
    """The RFC 5322 message, with a fresh Message-ID (returned in the header for the caller's records)."""
    if not mail.to:
        raise MailError("no recipient")
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(mail.to)
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    if mail.message_id is not None and not _MESSAGE_ID.fullmatch(mail.message_id):
        raise MailError("the Message-ID must look like <id@domain>")
    message["Message-ID"] = mail.message_id or make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    if mail.reply_to:
        message["Reply-To"] = mail.reply_to
    for name, value in mail.headers.items():
        if any(c in name + value for c in "\r\n"):
            raise MailError(f"header {name!r} contains a line break")
        message[name] = value
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    for filename, mime, data in mail.attachments:
        major, _, minor = mime.partition("/")
        message.add_attachment(data, maintype=major, subtype=minor or "octet-stream", filename=filename)
    return message


def send_mail(settings: Settings, mail: Mail) -> str:
    """Send ``mail`` and return its Message-ID once the server has accepted it for every recipient."""
    message = build_message(settings, mail)
    try:
        smtp: smtplib.SMTP
        if settings.smtp_ssl:
            smtp = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s,
                context=tls_context(settings),
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s)
        with smtp:
            if settings.smtp_starttls and not settings.smtp_ssl:
                smtp.starttls(context=tls_context(settings))
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            refused = smtp.send_message(message)
    except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        raise MailError(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc
    if refused:
        raise MailError(f"recipients refused: {', '.join(sorted(refused))}")
    return str(message["Message-ID"])
