"""Who can remove a finding: the platform or site operator, the hosting provider, the registrar, search engines.

``resolve_parties(url, ...)`` asks, in order: the curated directory (known platforms and search engines), the site's
``/.well-known/security.txt`` (RFC 9116) through the safe fetcher, RDAP for the server's IP network (the host's abuse
contact) and RDAP for the domain (the registrar's abuse contact).  Every step is recorded (what was asked, what came
back or why it failed), so the person and a later reader can see how each party was found.  A step that fails
(timeout, garbage, no contact) leaves that party unresolved with the reason, for the person to fill in; it never
stops the other steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from takeback.discover.urlguard import Resolver, UnsafeURL, parse_url, system_resolver
from takeback.takedown.directory import Directory, Entry
from takeback.takedown.notices import check_email
from takeback.takedown.rdap import RdapClient, RdapError

#: Escalation goes down this list: the party closest to the content first.
ESCALATION_ORDER = ("platform", "site", "host", "registrar", "search_engine")
#: The notice basis that usually fits a party kind when escalating (the person may choose another).
DEFAULT_BASIS_FOR = {"registrar": "abuse", "search_engine": "delisting"}
SECURITY_TXT_MAX_BYTES = 32 * 1024


class FetcherLike(Protocol):
    async def fetch(self, url: str, *, max_bytes: int | None = None, accept: str | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class PartyCandidate:
    kind: str
    key: str
    name: str
    email: str | None
    web_form: str | None
    #: directory | security.txt | rdap | unresolved
    source: str
    resolution: tuple[dict[str, Any], ...] = ()
    note: str = ""

    @property
    def reachable(self) -> bool:
        return bool(self.email or self.web_form)


@dataclass(frozen=True, slots=True)
class PartyResolution:
    url: str
    host: str
    parties: tuple[PartyCandidate, ...]
    steps: tuple[dict[str, Any], ...] = field(default=())

    def of_kind(self, kind: str) -> list[PartyCandidate]:
        return [p for p in self.parties if p.kind == kind]


def _valid_email(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return check_email(value)
    except ValueError:
        return None


def _directory_party(entry: Entry, basis: str | None, step: dict[str, Any]) -> PartyCandidate:
    channel = entry.channel_for(basis)
    email = _valid_email(channel.url.removeprefix("mailto:")) if channel.type == "email" else None
    note = channel.note
    if not entry.verified:
        note = (note + "; " if note else "") + "channel not verified: check it before relying on it"
    return PartyCandidate(
        kind="platform" if entry.kind == "platform" else entry.kind,
        key=f"{entry.kind}:directory:{entry.id}",
        name=entry.name,
        email=email,
        web_form=channel.url if channel.type == "web_form" else None,
        source="directory",
        resolution=(step,),
        note=note,
    )


def parse_security_txt(text: str) -> tuple[list[str], list[str]]:
    """(e-mail addresses, https URLs) from the Contact: fields of a security.txt file (RFC 9116 §2.5.3)."""
    emails: list[str] = []
    urls: list[str] = []
    for line in text.splitlines()[:1000]:
        name, sep, value = line.partition(":")
        if not sep or name.strip().lower() != "contact":
            continue
        value = value.strip()
        if value.lower().startswith("mailto:"):
            email = _valid_email(value[7:].split("?", 1)[0])
            if email and email not in emails:
                emails.append(email)
        elif value.lower().startswith("https://") and len(value) <= 2048 and value not in urls:
            urls.append(value)
    return emails, urls


async def _security_txt(host: str, fetcher: FetcherLike) -> tuple[PartyCandidate | None, dict[str, Any]]:
    url = f"https://{host}/.well-known/security.txt"
    step: dict[str, Any] = {"step": "security.txt", "url": url}
    try:
        result = await fetcher.fetch(url, max_bytes=SECURITY_TXT_MAX_BYTES, accept="text/plain")
    except Exception as exc:  # FetchError and anything a hostile server provokes: recorded, never fatal
        step.update(outcome="error", error=f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"[:300])
        return None, step
    step["status"] = result.status
    if result.status != 200:
        step["outcome"] = "absent"
        return None, step
    emails, urls = parse_security_txt(bytes(result.body).decode("utf-8", "replace"))
    step.update(outcome="found" if emails or urls else "no_contact", emails=emails, urls=urls)
    if not emails and not urls:
        return None, step
    return PartyCandidate(
        kind="site", key=f"site:{host}", name=host, email=emails[0] if emails else None,
        web_form=None if emails else urls[0], source="security.txt", resolution=(step,),
        note="security.txt names a security contact; it is the site operator's published contact",
    ), step


async def _host(host: str, address: str | None, rdap: RdapClient, directory: Directory, basis: str | None
                ) -> tuple[PartyCandidate, dict[str, Any]]:
    step: dict[str, Any] = {"step": "rdap-ip", "address": address}
    if address is None:
        step.update(outcome="error", error="the host name did not resolve")
        return _unresolved("host", host, step, "the server's address is unknown: enter the hosting provider"), step
    try:
        result = await rdap.ip(address)
    except RdapError as exc:
        step.update(outcome="error", error=str(exc)[:300], requests=_requests(exc))
        note = "RDAP lookup failed: enter the hosting provider's abuse contact"
        return _unresolved("host", address, step, note), step
    step.update(outcome="found", url=result.url, network=result.handle, name=result.name,
                abuse=result.abuse.email if result.abuse else None, requests=[list(p) for p in result.path])
    known = directory.for_network(result.name) or directory.for_network(result.handle)
    if known is not None:
        step["directory"] = known.id
        party = _directory_party(known, basis, step)
        return PartyCandidate(**{**_fields(party), "kind": "host"}), step
    email = _valid_email(result.abuse.email if result.abuse else None)
    return PartyCandidate(
        kind="host", key=f"host:rdap:{result.handle or result.name}"[:255], name=result.name or address,
        email=email, web_form=None, source="rdap" if email else "unresolved", resolution=(step,),
        note="" if email else "RDAP names no abuse e-mail for this network: enter one",
    ), step


async def _registrar(host: str, rdap: RdapClient) -> tuple[PartyCandidate, dict[str, Any]]:
    step: dict[str, Any] = {"step": "rdap-domain", "host": host}
    try:
        result = await rdap.domain(host)
    except RdapError as exc:
        step.update(outcome="error", error=str(exc)[:300], requests=_requests(exc))
        return _unresolved("registrar", host, step, "RDAP lookup failed: enter the registrar's abuse contact"), step
    registrar = result.registrar
    email = _valid_email(result.abuse.email if result.abuse else None)
    step.update(outcome="found", url=result.url, domain=result.name,
                registrar=registrar.name if registrar else None, iana_id=result.registrar_iana_id,
                abuse=email, requests=[list(p) for p in result.path])
    if registrar is None:
        return _unresolved("registrar", host, step, "the registry names no registrar: enter one"), step
    iana = result.registrar_iana_id
    ident = f"iana:{iana}" if iana else f"rdap:{registrar.handle or registrar.name}"
    return PartyCandidate(
        kind="registrar", key=f"registrar:{ident}"[:255], name=registrar.name or registrar.handle or "registrar",
        email=email, web_form=None, source="rdap" if email else "unresolved", resolution=(step,),
        note=f"registrar of {result.name}" + ("" if email else "; RDAP names no abuse e-mail: enter one"),
    ), step


def _requests(exc: RdapError) -> list[str]:
    return [exc.url] if exc.url else []


def _fields(party: PartyCandidate) -> dict[str, Any]:
    return {name: getattr(party, name) for name in PartyCandidate.__slots__}  # type: ignore[attr-defined]


def _unresolved(kind: str, what: str, step: dict[str, Any], note: str) -> PartyCandidate:
    return PartyCandidate(kind=kind, key=f"{kind}:unresolved:{what}"[:255], name=what, email=None, web_form=None,
                          source="unresolved", resolution=(step,), note=note)


async def resolve_parties(
    url: str,
    *,
    rdap: RdapClient,
    directory: Directory,
    fetcher: FetcherLike | None = None,
    resolver: Resolver = system_resolver,
    basis: str | None = None,
    search_engines: bool = True,
) -> PartyResolution:
    """Everyone who can remove ``url``, in escalation order, with the steps that found them.  Raises ``UnsafeURL``
    only when the URL itself is malformed; every other failure is recorded on the unresolved party."""
    _, host, port = parse_url(url)
    steps: list[dict[str, Any]] = []
    parties: list[PartyCandidate] = []
    for entry in directory.for_host(host):
        step = {"step": "directory", "host": host, "entry": entry.id, "verified_on": str(entry.verified_on)}
        steps.append(step)
        parties.append(_directory_party(entry, basis, step))
    try:
        addresses: Sequence[str] = await asyncio.to_thread(resolver, host, port)
    except (OSError, UnicodeError, UnsafeURL) as exc:
        addresses = ()
        steps.append({"step": "dns", "host": host, "outcome": "error", "error": str(exc)[:300]})
    address = addresses[0] if addresses else None
    if address is not None:
        steps.append({"step": "dns", "host": host, "outcome": "found", "addresses": list(addresses)[:8]})
    tasks = [_host(host, address, rdap, directory, basis), _registrar(host, rdap)]
    if fetcher is not None and not any(p.kind == "platform" for p in parties):
        tasks.insert(0, _security_txt(host, fetcher))  # type: ignore[arg-type]
    for party, step in await asyncio.gather(*tasks):
        steps.append(step)
        if party is not None:
            parties.append(party)
    if search_engines:
        for entry in directory.search_engines():
            step = {"step": "directory", "entry": entry.id, "reason": "search engines can delist the URL"}
            steps.append(step)
            parties.append(_directory_party(entry, "delisting", step))
    parties.sort(key=lambda p: ESCALATION_ORDER.index(p.kind) if p.kind in ESCALATION_ORDER else len(ESCALATION_ORDER))
    return PartyResolution(url=url, host=host, parties=tuple(parties), steps=tuple(steps))


def next_party(resolution: PartyResolution, after_kind: str | None) -> PartyCandidate | None:
    """The first reachable party further down the escalation order than ``after_kind``."""
    start = ESCALATION_ORDER.index(after_kind) + 1 if after_kind in ESCALATION_ORDER else 0
    for kind in ESCALATION_ORDER[start:]:
        for party in resolution.of_kind(kind):
            if party.reachable:
                return party
    return None
