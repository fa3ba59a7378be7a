"""Pure parts of the petition: e-mail normalisation (hypothesis), tokens, proof-of-work, velocity, export."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from takeback.petition import export, pow, tokens
from takeback.petition.emails import (
    DisposableEmail,
    InvalidEmail,
    check_signer_email,
    is_disposable,
    normalise_email,
)
from takeback.petition.velocity import TooFast, VelocityLimiter, network_of

LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=20)


@st.composite
def gmail_spelling(draw: st.DrawFn, local: str) -> str:
    """Another way to type the same gmail mailbox: case, dots anywhere, a +tag, googlemail."""
    chars = []
    for c in local:
        chars.append(c.upper() if draw(st.booleans()) else c)
        if draw(st.booleans()) and len(chars) < 40:
            chars.append(".")
    spelled = "".join(chars).strip(".").replace("..", ".") or local
    tag = draw(st.one_of(st.just(""), LOCAL.map(lambda t: "+" + t)))
    host = draw(st.sampled_from(["gmail.com", "GMAIL.com", "googlemail.com", "GoogleMail.COM"]))
    return f"{spelled}{tag}@{host}"


@given(data=st.data(), local=LOCAL)
def test_gmail_spellings_collapse(data: st.DataObject, local: str) -> None:
    canonical = normalise_email(f"{local}@gmail.com")
    spelled = data.draw(gmail_spelling(local))
    assert normalise_email(spelled) == canonical


@given(a=LOCAL, b=LOCAL, domain=st.sampled_from(["gmail.com", "example.org", "outlook.com", "uni.example.ac.uk"]))
def test_different_mailboxes_stay_different(a: str, b: str, domain: str) -> None:
    if a != b:
        assert normalise_email(f"{a}@{domain}") != normalise_email(f"{b}@{domain}")


@given(local=LOCAL, tag=LOCAL)
def test_plus_and_dots_kept_where_no_rule_is_known(local: str, tag: str) -> None:
    assert normalise_email(f"{local}+{tag}@example.org") != normalise_email(f"{local}@example.org")
    assert normalise_email(f"{local}+{tag}@outlook.com") == normalise_email(f"{local}@Outlook.com")
    if len(local) > 1:
        dotted = f"{local[0]}.{local[1:]}"
        assert normalise_email(f"{dotted}@example.org") != normalise_email(f"{local}@example.org")


def test_email_rules() -> None:
    assert normalise_email("  Jane.Doe+Petition@GoogleMail.com ") == "janedoe@gmail.com"
    assert normalise_email("x@Bücher.Example") == "x@xn--bcher-kva.example"
    for bad in ["", "no-at", "@example.org", "a@", "a@b", "a b@example.org", "a..b@example.org", ".a@example.org",
                "a@-x.org", "a@x_y.org", "a\n@example.org", "x" * 65 + "@example.org", "+tag@gmail.com"]:  # fmt: skip
        with pytest.raises(InvalidEmail):
            normalise_email(bad)
    with pytest.raises(DisposableEmail):
        check_signer_email("someone@mailinator.com")
    assert is_disposable("inbox.guerrillamail.com") and not is_disposable("gmail.com")
    assert not is_disposable("com")


def test_tokens_refuse_forgery_other_purpose_and_age() -> None:
    secret = b"s" * 32
    token = tokens.make_token(secret, "verify", 42, now=1000)
    assert tokens.read_token(secret, "verify", token, max_age_s=60, now=1030).signature_id == 42
    with pytest.raises(tokens.ExpiredToken):
        tokens.read_token(secret, "verify", token, max_age_s=60, now=2000)
    with pytest.raises(tokens.TokenError):
        tokens.read_token(secret, "erase", token, max_age_s=60, now=1030)
    with pytest.raises(tokens.TokenError):
        tokens.read_token(b"other" * 8, "verify", token, max_age_s=60, now=1030)
    body, mac = token.rsplit(".", 1)
    with pytest.raises(tokens.TokenError):  # another signature id with the same mac
        tokens.read_token(secret, "verify", "43." + body.split(".")[1] + "." + mac, max_age_s=60, now=1030)
    for junk in ["", "a.b.c", "1.2", "x" * 500, "1.2.3.4"]:
        with pytest.raises(tokens.TokenError):
            tokens.read_token(secret, "verify", junk, max_age_s=60, now=1030)


def test_pow_round_trip_and_refusals() -> None:
    key = b"k" * 32
    challenge = pow.create_challenge(key, 7, max_number=500, expires_s=60, now=1000)
    number = pow.solve(challenge)
    payload = pow.encode_solution(challenge, number)
    solved = pow.verify_solution(key, payload, 7, now=1010)
    assert solved.challenge == challenge.challenge
    codes = []
    for bad, petition, now in [
        (payload, 8, 1010),  # another petition
        (payload, 7, 2000),  # expired
        (pow.encode_solution(challenge, number + 1), 7, 1010),  # wrong answer
        (base64.b64encode(json.dumps({**challenge.as_dict(), "number": "1"}).encode()).decode(), 7, 1010),
    ]:
        with pytest.raises(pow.PowError) as info:
            pow.verify_solution(key, bad, petition, now=now)
        codes.append(info.value.code)
    assert codes == ["invalid_pow", "expired_pow", "invalid_pow", "invalid_pow"]
    with pytest.raises(pow.PowError):
        pow.verify_solution(b"other" * 8, payload, 7, now=1010)
    spent = pow.SpentChallenges()
    spent.claim(solved, "req-1", now=1010)
    spent.claim(solved, "req-1", now=1011)  # the same request retried
    with pytest.raises(pow.PowError):
        spent.claim(solved, "req-2", now=1012)
    with pytest.raises(pow.PowError):
        spent.claim(solved, None, now=1012)


def test_velocity_per_ip_and_network() -> None:
    now = [0.0]
    limiter = VelocityLimiter(3, 5, clock=lambda: now[0])  # type: ignore[arg-type]
    for _ in range(3):
        limiter.check("198.51.100.7")
    with pytest.raises(TooFast) as info:
        limiter.check("198.51.100.7")
    assert info.value.scope == "address"
    limiter.check("198.51.100.8")
    limiter.check("198.51.100.9")
    with pytest.raises(TooFast) as info:
        limiter.check("198.51.100.10")  # same /24
    assert info.value.scope == "network"
    limiter.check("203.0.113.1")  # another network
    now[0] = 125.0  # two windows later: forgotten
    limiter.check("198.51.100.7")
    assert network_of("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert network_of("::ffff:198.51.100.7") == "198.51.100.0/24"
    assert network_of("testclient") == "unknown"


def test_export_csv_and_summary() -> None:
    built = export.build_csv([(1, "=cmd()", "FR", True), (2, "Hidden", "DE", False), (3, "Zoë", "BR", True)])
    assert built.csv.decode().splitlines() == ["name,country", "'=cmd(),FR", ",DE", "Zoë,BR"]
    key = export.signing_key(b"secret")
    from datetime import UTC, datetime

    summary = export.signed_summary(
        key, slug="p", title="T", target="R", export=built, generated_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert export.verify_summary(summary, built.csv)
    assert not export.verify_summary({**summary, "title": "X"}, built.csv)


def _pdf_text(data: bytes) -> tuple[int, str]:
    """Pages and text of a PDF, read back in strict mode (a malformed file fails here, not at the recipient's)."""
    import io

    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_export_pdf_names_per_consent_and_a_summary_of_its_exact_bytes() -> None:
    import hashlib
    from datetime import UTC, datetime

    rows = [
        (1, "Ann (Example) \\ back", "FR", True),
        (2, "Secret Person", "DE", False),
        (3, "Zoë Dvořák", "CZ", True),
        (4, "王秀英", "CN", True),
        (5, "=cmd()", "FR", True),
    ]
    built = export.build_pdf(rows, title="Give it back", target="The registrar", country_names={"FR": "France"})
    assert (built.format, built.media_type, built.rows) == ("pdf", "application/pdf", 5)
    assert built.data.startswith(b"%PDF-1.4") and built.sha256 == hashlib.sha256(built.data).hexdigest()
    pages, text = _pdf_text(built.data)
    assert pages == 1
    assert "Give it back" in text and "To: The registrar" in text and "Verified signatures: 5" in text
    assert "Ann (Example) \\ back" in text  # PDF string delimiters in a name are escaped, not interpreted
    assert "Secret Person" not in text and "(name withheld)" in text  # no consent: no name
    assert "Zoë Dvorák" in text  # Latin-1 kept (ë, á), the accent outside it dropped (ř → r)
    assert "???" in text  # what the standard font cannot show at all
    assert "France" in text and "=cmd()" in text  # a PDF has no formulas: the name is shown as typed
    # Same rows, same bytes (no timestamp inside): a summary made separately still matches the file.
    assert export.build_pdf(rows, title="Give it back", target="The registrar", country_names={"FR": "France"}) == built
    key = export.signing_key(b"secret")
    summary = export.signed_summary(
        key, slug="p", title="T", target="R", export=built, generated_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert summary["export_sha256"] == built.sha256 and str(summary["export_format"]).startswith("application/pdf")
    assert export.verify_summary(summary, built.data)
    assert not export.verify_summary(summary, built.data + b"\n")
    assert not export.verify_summary(summary, export.build_csv(rows).data)
    decoded = json.loads(base64.b64decode(export.summary_header(summary)))
    assert decoded == summary and export.verify_summary(decoded, built.data)


def test_export_pdf_paginates_a_long_list_and_an_empty_one() -> None:
    rows = [(i, f"Signer {i:05d}", "FR", True) for i in range(1, 401)]
    built = export.build_pdf(rows, title="T", target="R")
    pages, text = _pdf_text(built.data)
    assert pages > 5 and built.rows == 400
    assert "Signer 00001" in text and "Signer 00400" in text and f"page {pages}/{pages}" in text
    empty = export.build_pdf([], title="T", target="R")
    assert empty.rows == 0 and "Verified signatures: 0" in _pdf_text(empty.data)[1]


def test_counts_cache_never_serves_a_count_from_before_a_commit() -> None:
    """A slow reader that started before a commit must not overwrite the commit's newer counts."""
    from takeback.petition.counts import CountsCache
    from takeback.store.petitions import Counts

    now = [100.0]
    cache = CountsCache(1.0, clock=lambda: now[0])
    assert cache.get(7) is None
    slow_reader = cache.token(7)  # a page view starts reading: 0 pending
    commit = cache.token(7)  # the intake commits a signature and offers its counts
    assert cache.offer(7, commit, Counts(0, 1))
    assert not cache.offer(7, slow_reader, Counts(0, 0))  # the stale read arrives later: refused
    assert cache.get(7) == Counts(0, 1)
    reader = cache.token(7)
    cache.invalidate(7)  # a verification elsewhere: value dropped, and this reader's result may be stale
    assert cache.get(7) is None and not cache.offer(7, reader, Counts(0, 1))
    assert cache.offer(7, cache.token(7), Counts(1, 0)) and cache.get(7) == Counts(1, 0)
    now[0] += 1.5  # past the TTL: read again (other processes' commits show up)
    assert cache.get(7) is None
