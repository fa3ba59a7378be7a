"""Mail over STARTTLS and over TLS from the first byte, against real aiosmtpd servers on loopback.

The certificates are made here (a throwaway CA and a server certificate for 127.0.0.1) and trusted explicitly
through ``smtp_tls_ca_file``; the production code always verifies, so the same servers without that trust, or with
a certificate for another name, are refused.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.config import Settings
from takeback.mail import Mail, MailError, send_mail
from takeback.takedown import service

NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path
    #: A certificate for another name, signed by the same CA.
    wrong_cert_file: Path
    wrong_key_file: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def _leaf(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, names: list[x509.GeneralName], common: str
          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name(common)).issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(minutes=5))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("takeback test CA")).issuer_name(_name("takeback test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(minutes=5)).not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    right, right_key = _leaf(ca_key, ca, [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                          x509.DNSName("localhost")], "127.0.0.1")
    wrong, wrong_key = _leaf(ca_key, ca, [x509.DNSName("smtp.elsewhere.example")], "smtp.elsewhere.example")
    paths = Pki(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "wrong.pem",
                folder / "wrong.key")
    paths.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert_file.write_bytes(right.public_bytes(serialization.Encoding.PEM))
    paths.wrong_cert_file.write_bytes(wrong.public_bytes(serialization.Encoding.PEM))
    _write_key(right_key, paths.key_file)
    _write_key(wrong_key, paths.wrong_key_file)
    return paths


@dataclass
class TlsServer:
    port: int
    received: list[tuple[list[str], bool, str]]


class _Handler:
    def __init__(self, received: list[tuple[list[str], bool, str]]) -> None:
        self.received = received

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = (envelope.original_content or envelope.content).decode("utf-8", "replace")
        # after STARTTLS the session holds the TLS details; with TLS from the first byte the transport does
        encrypted = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        self.received.append((list(envelope.rcpt_tos), encrypted, content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def serve() -> Iterator[Any]:
    """serve(mode, cert, key) -> a running server: mode "starttls" (required) or "tls" (implicit)."""
    controllers: list[Controller] = []

    def start(mode: str, cert: Path, key: Path) -> TlsServer:
        server = TlsServer(_free_port(), [])
        context = _context(cert, key)
        if mode == "tls":
            controller = Controller(_Handler(server.received), hostname="127.0.0.1", port=server.port,
                                    ssl_context=context)
        else:
            controller = Controller(_Handler(server.received), hostname="127.0.0.1", port=server.port,
                                    tls_context=context, require_starttls=True)
        controller.start()
        controllers.append(controller)
        return server

    yield start
    for controller in controllers:
        controller.stop()


def _mail() -> Mail:
    return Mail(to=("abuse@host.example",), subject="TAKE IT DOWN Act notice", text="Please remove https://x.example/1")


def test_starttls_with_a_trusted_ca(serve: Any, pki: Pki) -> None:
    server = serve("starttls", pki.cert_file, pki.key_file)
    settings = Settings(smtp_host="127.0.0.1", smtp_port=server.port, smtp_starttls=True,
                        smtp_tls_ca_file=pki.ca_file, smtp_timeout_s=5)
    message_id = send_mail(settings, _mail())
    [(rcpt, encrypted, content)] = server.received
    assert rcpt == ["abuse@host.example"] and encrypted and message_id in content


def test_implicit_tls_with_a_trusted_ca(serve: Any, pki: Pki) -> None:
    server = serve("tls", pki.cert_file, pki.key_file)
    settings = Settings(smtp_host="127.0.0.1", smtp_port=server.port, smtp_ssl=True, smtp_tls_ca_file=pki.ca_file,
                        smtp_timeout_s=5)
    send_mail(settings, _mail())
    [(rcpt, encrypted, _content)] = server.received
    assert rcpt == ["abuse@host.example"] and encrypted


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_certificates_are_always_verified(serve: Any, pki: Pki, mode: str) -> None:
    flags = {"smtp_starttls": True} if mode == "starttls" else {"smtp_ssl": True}
    server = serve(mode, pki.cert_file, pki.key_file)
    untrusted = Settings(smtp_host="127.0.0.1", smtp_port=server.port, smtp_timeout_s=5, **flags)
    with pytest.raises(MailError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        send_mail(untrusted, _mail())
    wrong_name = serve(mode, pki.wrong_cert_file, pki.wrong_key_file)
    trusted = Settings(smtp_host="127.0.0.1", smtp_port=wrong_name.port, smtp_timeout_s=5,
                       smtp_tls_ca_file=pki.ca_file, **flags)
    with pytest.raises(MailError, match=r"match|mismatch"):
        send_mail(trusted, _mail())
    assert server.received == [] and wrong_name.received == []


def test_a_server_requiring_starttls_refuses_plain_text(serve: Any, pki: Pki) -> None:
    server = serve("starttls", pki.cert_file, pki.key_file)
    with pytest.raises(MailError, match="STARTTLS"):
        send_mail(Settings(smtp_host="127.0.0.1", smtp_port=server.port, smtp_timeout_s=5), _mail())


def test_a_notice_goes_out_over_starttls(serve: Any, pki: Pki, sessions: sessionmaker[Session]) -> None:
    server = serve("starttls", pki.cert_file, pki.key_file)
    settings = Settings(smtp_host="127.0.0.1", smtp_port=server.port, smtp_starttls=True,
                        smtp_tls_ca_file=pki.ca_file, smtp_timeout_s=5, smtp_from="notices@takeback.example")
    with sessions.begin() as session:
        case = store.create_case(session, "c")
        finding, _ = store.record_finding(session, case.id, "https://bad.example/x", "media", evidence={})
        notice = service.draft_notice(session, case.id, [finding.id], "takeitdown", {
            "signature": "/s/ Jane Doe", "sender": {"name": "Jane Doe", "email": "jane@example.org"},
            "good_faith_not_consensual": True}, recipient="abuse@host.example")
    with sessions.begin() as session:
        outcome = service.send_notice(session, settings, notice.id)
    assert outcome.sent and outcome.notice.message_id
    [(_rcpt, encrypted, content)] = server.received
    assert encrypted and outcome.notice.message_id in content
