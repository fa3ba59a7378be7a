"""Mail goes over real SMTP to a loopback server; header injection and refused recipients are errors."""

from __future__ import annotations

import pytest

from takeback.config import Settings
from takeback.mail import Mail, MailError, send_mail
from tests.smtp import SmtpServer


def test_message_arrives_with_text_and_attachment(smtp_server: SmtpServer) -> None:
    settings = Settings(**smtp_server.settings(smtp_from="notices@takeback.test"))
    mail = Mail(
        to=("abuse@host.test",), subject="Notice: Ünïcode subject", text="plain body\n",
        html="<p>body</p>", attachments=(("notice.json", "application/json", b'{"a": 1}'),),
    )
    message_id = send_mail(settings, mail)
    [received] = smtp_server.wait_for(1)
    assert received.rcpt_tos == ["abuse@host.test"]
    assert received.message["Message-ID"] == message_id
    assert received.message["Subject"] == "Notice: Ünïcode subject"
    assert received.message.get_body(("plain",)).get_content().replace("\r\n", "\n") == "plain body\n"  # type: ignore[union-attr]
    [attachment] = list(received.message.iter_attachments())
    assert attachment.get_filename() == "notice.json" and attachment.get_content() == b'{"a": 1}'


def test_header_injection_is_refused(smtp_server: SmtpServer) -> None:
    settings = Settings(**smtp_server.settings())
    with pytest.raises(MailError, match="line break"):
        send_mail(settings, Mail(to=("a@b.test",), subject="s", text="t", headers={"X-Case": "1\r\nBcc: x@y"}))
    assert smtp_server.received == []


def test_unreachable_server_is_a_mail_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(MailError, match=r"SMTP 127\.0\.0\.1"):
        send_mail(Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout_s=2), Mail(("a@b.test",), "s", "t"))
