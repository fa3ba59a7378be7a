"""The petition service: what the web pages, the JSON API and the CLI call.  One per server process.

It owns the intake (group commit), the verification-mail outbox, the velocity limiter and the record of spent
proofs-of-work, and holds the keys derived from the server secret.  Every refusal is a ``PetitionError`` with an
HTTP status and a stable code, so the web layer only translates.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from takeback.config import Settings
from takeback.mail import Mail, send_mail
from takeback.petition import export as export_mod
from takeback.petition import pow as pow_mod
from takeback.petition import tokens
from takeback.petition.counts import CountsCache
from takeback.petition.emails import InvalidEmail, check_signer_email
from takeback.petition.intake import Intake, IntakeClosed
from takeback.petition.outbox import Outbox
from takeback.petition.velocity import TooFast, VelocityLimiter
from takeback.store import petitions, signatures
from takeback.store.db import session_factory
from takeback.store.errors import InvalidInput
from takeback.store.petitions import Counts, PetitionInfo
from takeback.store.signatures import NewSignature, SignOutcome

CACHE_TTL_S = 1.0
_POSTCODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -")


class PetitionError(Exception):
    """A refusal with its HTTP status, stable code and a message for people."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class SignForm:
    name: str
    email: str
    country: str
    postcode: str | None = None
    comment: str | None = None
    consent_updates: bool = False
    consent_public: bool = False
    pow: str = ""
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class SignResult:
    #: What the signer is told; the same for a new and a repeated signature, so nobody learns who signed.
    status: str
    outcome: SignOutcome
    #: The petition's counts as of the commit that stored (or found) this signature: the page shows them at once.
    counts: Counts


def derive_key(secret: str, purpose: str) -> bytes:
    """One key per use of the server secret ("tokens", "pow"): a leak of one use's key does not give the others."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


@lru_cache(maxsize=1)
def countries() -> dict[str, str]:
    text = resources.files("takeback.petition").joinpath("data/countries.tsv").read_text("utf-8")
    pairs = (line.split("\t", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {code: name for code, name in pairs}


def _clean_text(
    field: str, value: str | None, limit: int, *, required: bool = False, multiline: bool = False
) -> str | None:
    """Trimmed text without control characters (line breaks allowed in comments), within ``limit``."""
    if value is None or not value.strip():
        if required:
            raise PetitionError(400, "invalid_input", f"{field}: required")
        return None
    value = unicodedata.normalize("NFC", value.strip())
    allowed = "\n" if multiline else ""
    # str.isprintable() is False for every Cc and Cs character (and some harmless ones): when it is True, the
    # per-character scan below cannot find anything, and most names and comments take this shortcut.
    if not value.isprintable() and any(
        unicodedata.category(c) in ("Cc", "Cs") and c not in allowed for c in value.replace("\r\n", "\n")
    ):
        raise PetitionError(400, "invalid_input", f"{field}: must not contain control characters")
    if len(value) > limit:
        raise PetitionError(400, "invalid_input", f"{field}: at most {limit} characters")
    return value.replace("\r\n", "\n")


class PetitionService:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        sender: Callable[[Settings, Mail], str] = send_mail,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.read_sessions = session_factory(sessions.kw["bind"], read_only=True)
        self.clock = clock
        secret = settings.petition_secret
        if not secret:
            with sessions.begin() as session:
                secret = petitions.get_or_create_secret(session, "petition")
        self._token_key = derive_key(secret, "tokens")
        self._pow_key = derive_key(secret, "pow")
        self.export_key = export_mod.signing_key(secret.encode())
        self.counts_cache = CountsCache(CACHE_TTL_S)
        self.intake = Intake(sessions, max_batch=settings.petition_batch_max, counts_cache=self.counts_cache)
        self.outbox = Outbox(settings, sender=sender)
        self.limiter = VelocityLimiter(
            settings.petition_ip_limit_per_minute, settings.petition_network_limit_per_minute
        )
        self.spent = pow_mod.SpentChallenges()
        self._petitions: dict[str, tuple[float, PetitionInfo | None]] = {}

    def start(self) -> None:
        self.intake.start()
        if self.settings.petition_send_mail:
            self.outbox.start()

    def stop(self) -> None:
        self.intake.stop()
        self.outbox.stop()

    # --- reading -----------------------------------------------------------------------------------------------

    def petition(self, slug: str) -> PetitionInfo:
        now = time.monotonic()
        cached = self._petitions.get(slug)
        if cached is None or cached[0] < now:
            with self.read_sessions() as session:
                info = petitions.get_petition_by_slug(session, slug)
            if len(self._petitions) > 10_000:
                self._petitions.clear()
            cached = (now + CACHE_TTL_S * 5, info)
            self._petitions[slug] = cached
        if cached[1] is None:
            raise PetitionError(404, "unknown_petition", f"no petition {slug[:100]!r}")
        return cached[1]

    def counts(self, petition: PetitionInfo, *, fresh: bool = False) -> Counts:
        """Verified and pending totals from the counter row; cached for a second so a viral page view is cheap
        (``CountsCache``: never older than this process's latest commit)."""
        cached = None if fresh else self.counts_cache.get(petition.id)
        if cached is not None:
            return cached
        token = self.counts_cache.token(petition.id)
        with self.read_sessions() as session:
            counts = petitions.get_counts(session, petition.id)
        self.counts_cache.offer(petition.id, token, counts)
        return counts

    def breakdown(self, petition: PetitionInfo, kind: str) -> list[tuple[str, Counts]]:
        with self.read_sessions() as session:
            return petitions.breakdown(session, petition.id, kind)

    def page_data(self, petition: PetitionInfo) -> dict[str, Any]:
        with self.read_sessions() as session:
            return {
                "updates": petitions.list_updates(session, petition.id),
                "comments": signatures.recent_comments(session, petition.id, limit=10),
            }

    # --- signing -----------------------------------------------------------------------------------------------

    def challenge(self, petition: PetitionInfo) -> pow_mod.Challenge:
        return pow_mod.create_challenge(
            self._pow_key,
            petition.id,
            max_number=self.settings.petition_pow_max_number,
            expires_s=self.settings.petition_pow_expiry_s,
            now=self.clock(),
        )

    async def sign(self, petition: PetitionInfo, form: SignForm, ip: str, base_url: str) -> SignResult:
        item, challenge = self._checked(petition, form, ip)
        try:
            accepted = await self.intake.accept(item)
        except IntakeClosed:
            self.spent.release(challenge)
            raise PetitionError(503, "unavailable", "the server is restarting; please try again") from None
        except InvalidInput as exc:
            self.spent.release(challenge)
            raise PetitionError(400, "invalid_input", str(exc)) from None
        except Exception:
            self.spent.release(challenge)
            raise PetitionError(503, "unavailable", "the signature could not be stored; please try again") from None
        outcome = accepted.outcome
        if outcome.status == "pending" and self.settings.petition_send_mail:
            self.outbox.enqueue(outcome.signature_id, self._verification_mail(petition, outcome, base_url))
        status = "check_your_email" if outcome.status == "pending" else "accepted"
        return SignResult(status, outcome, accepted.counts)

    def _checked(self, petition: PetitionInfo, form: SignForm, ip: str) -> tuple[NewSignature, str]:
        """Every check before the write (open, fields, address, proof-of-work, velocity): cheap, no database."""
        now = self.clock()
        if not petition.is_open(datetime.fromtimestamp(now, UTC)):
            raise PetitionError(409, "petition_closed", "this petition is not open for signatures")
        name = _clean_text("name", form.name, 200, required=True)
        assert name is not None
        country = (form.country or "").strip().upper()
        if country not in countries():
            raise PetitionError(400, "invalid_input", "country: not an ISO 3166 country code")
        postcode = _clean_text("postcode", form.postcode, 16)
        if postcode is not None:
            postcode = postcode.upper()
            if not set(postcode) <= _POSTCODE_CHARS:
                raise PetitionError(400, "invalid_input", "postcode: letters, digits, spaces and '-' only")
        comment = _clean_text("comment", form.comment, signatures.MAX_COMMENT, multiline=True)
        idem = form.idempotency_key
        if idem is not None and (not 1 <= len(idem) <= 64 or not idem.isascii() or not idem.isprintable()):
            raise PetitionError(400, "invalid_input", "idempotency_key: 1-64 printable ASCII characters")
        try:
            email, key = check_signer_email(form.email)
        except InvalidEmail as exc:
            raise PetitionError(400, exc.code, str(exc)) from None
        try:
            solved = pow_mod.verify_solution(self._pow_key, form.pow, petition.id, now=now)
        except pow_mod.PowError as exc:
            raise PetitionError(400, exc.code, exc.message) from None
        try:
            network = self.limiter.check(ip)
        except TooFast as exc:
            raise PetitionError(429, "rate_limited", str(exc), retry_after=exc.retry_after) from None
        try:
            self.spent.claim(solved, idem, now=now)
        except pow_mod.PowError as exc:
            raise PetitionError(400, exc.code, exc.message) from None
        item = NewSignature(
            petition_id=petition.id,
            email=email,
            email_key=key,
            name=name,
            country=country,
            postcode=postcode,
            comment=comment,
            consent_updates=bool(form.consent_updates),
            consent_public=bool(form.consent_public),
            idempotency_key=idem,
            network=network,
        )
        return item, solved.challenge

    # --- links from the mail -----------------------------------------------------------------------------------

    def link(self, base_url: str, petition: PetitionInfo, action: str, signature_id: int) -> str:
        base = (self.settings.petition_public_url or base_url).rstrip("/")
        token = tokens.make_token(self._token_key, action, signature_id, now=self.clock())
        return f"{base}/p/{petition.slug}/{action}?token={token}"

    def _verification_mail(self, petition: PetitionInfo, outcome: SignOutcome, base_url: str) -> Mail:
        verify = self.link(base_url, petition, "verify", outcome.signature_id)
        unsubscribe = self.link(base_url, petition, "unsubscribe", outcome.signature_id)
        erase = self.link(base_url, petition, "erase", outcome.signature_id)
        text = (
            f"Thank you for signing \u201c{petition.title}\u201d.\n\n"
            f"Please confirm your signature by opening this link:\n{verify}\n\n"
            "Until you do, your signature is counted as pending, not as verified.\n\n"
            f"No more e-mails about this petition: {unsubscribe}\n"
            f"Delete your signature and everything you gave us: {erase}\n\n"
            "If you did not sign, ignore this message: nothing is counted without the confirmation.\n"
        )
        return Mail(
            to=(outcome.email,),
            subject=f"Confirm your signature: {petition.title[:150]}",
            text=text,
            headers={"List-Unsubscribe": f"<{unsubscribe}>"},
        )

    def _claims(self, purpose: str, token: str) -> int:
        try:
            claims = tokens.read_token(
                self._token_key,
                purpose,
                token,
                max_age_s=self.settings.petition_token_max_age_days * 86400,
                now=self.clock(),
            )
        except tokens.TokenError as exc:
            raise PetitionError(400, exc.code, str(exc)) from None
        return claims.signature_id

    def verify(self, petition: PetitionInfo, token: str) -> str:
        """Confirm a signature from its mailed link; a second use is ``token_used`` (409)."""
        signature_id = self._claims("verify", token)
        with self.sessions.begin() as session:
            info = signatures.get_signature(session, signature_id)
            if info is None or info.petition_id != petition.id:
                raise PetitionError(404, "signature_gone", "this signature no longer exists")
            status, _ = signatures.verify_signature(session, signature_id)
        if status == "already_verified":
            raise PetitionError(409, "token_used", "this signature was already confirmed")
        if status == "removed":
            raise PetitionError(410, "signature_removed", "this signature was removed by the organisers")
        if status != "verified":
            raise PetitionError(404, "signature_gone", "this signature no longer exists")
        self.counts_cache.invalidate(petition.id)
        return status

    def unsubscribe(self, petition: PetitionInfo, token: str) -> None:
        signature_id = self._claims("unsubscribe", token)
        with self.sessions.begin() as session:
            info = signatures.get_signature(session, signature_id)
            if info is None or info.petition_id != petition.id:
                raise PetitionError(404, "signature_gone", "this signature no longer exists")
            signatures.unsubscribe(session, signature_id)

    def erase(self, petition: PetitionInfo, token: str) -> None:
        signature_id = self._claims("erase", token)
        with self.sessions.begin() as session:
            info = signatures.get_signature(session, signature_id)
            if info is None or info.petition_id != petition.id:
                raise PetitionError(404, "signature_gone", "this signature was already erased")
            signatures.erase_signature(session, signature_id)
        self.counts_cache.invalidate(petition.id)

    # --- operators ---------------------------------------------------------------------------------------------

    def flags(self, petition: PetitionInfo, *, status: str | None = None) -> list[petitions.FlagInfo]:
        with self.sessions.begin() as session:
            petitions.detect_bursts(
                session,
                petition.id,
                network_threshold=self.settings.petition_flag_network_per_hour,
                postcode_threshold=self.settings.petition_flag_postcode_per_hour,
                now=datetime.fromtimestamp(self.clock(), UTC),
            )
            return petitions.list_flags(session, petition.id, status=status)

    def resolve_flag(
        self, petition: PetitionInfo, flag_id: int, action: str, actor: str, note: str
    ) -> tuple[petitions.FlagInfo, int]:
        try:
            with self.sessions.begin() as session:
                result = petitions.resolve_flag(session, petition.id, flag_id, action, actor=actor, note=note)
        except petitions.UnknownFlag:
            raise PetitionError(404, "not_found", f"no flag {flag_id} on this petition") from None
        self.counts_cache.invalidate(petition.id)
        return result

    def remove(self, petition: PetitionInfo, ids: list[int], reason: str, actor: str) -> list[int]:
        with self.sessions.begin() as session:
            removed = signatures.remove_signatures(session, petition.id, ids, reason=reason, actor=actor)
        self.counts_cache.invalidate(petition.id)
        return removed

    def export(self, petition: PetitionInfo, fmt: str = "csv") -> tuple[export_mod.Export, dict[str, object]]:
        """The export (``fmt`` "csv" or "pdf") and its signed summary, read in one transaction so the count in the
        summary is the file's, and the summary's hash is of these exact bytes."""
        if fmt not in export_mod.FORMATS:
            raise PetitionError(400, "invalid_input", f"format: one of {', '.join(export_mod.FORMATS)}")
        with self.read_sessions() as session:
            rows: list[tuple[int, str, str, bool]] = []
            after = 0
            while True:
                chunk = signatures.export_rows(session, petition.id, after_id=after, limit=10_000)
                if not chunk:
                    break
                rows.extend(chunk)
                after = chunk[-1][0]
        if fmt == "pdf":
            built = export_mod.build_pdf(rows, title=petition.title, target=petition.target, country_names=countries())
        else:
            built = export_mod.build_csv(rows)
        summary = export_mod.signed_summary(
            self.export_key,
            slug=petition.slug,
            title=petition.title,
            target=petition.target,
            export=built,
            generated_at=datetime.fromtimestamp(self.clock(), UTC),
        )
        return built, summary
