"""Who can remove a finding: the platform or site operator, the hosting provider, the registrar, search engines.

``resolve_parties(url, ...)`` asks, in order: the curated directory (known platforms and search engines), the site's
``/.well-known/security.txt`` (RFC 9116) and its own pages (``mailto:`` and abuse/DMCA/contact links, see
``site_contact``) through the safe fetcher, RDAP for the server's IP network (the host's abuse contact) and for the
network above it (the upstream provider, for when the host does not act), and RDAP for the domain (the registrar's
abuse contact).  Every step is recorded (what was asked, what came
back or why it failed), so the person and a later reader can see how each party was found.  A step that fails
(timeout, garbage, no contact) leaves that party unresolved with the reason, for the person to fill in; it never
stops the other steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from takeback.discover.urlguard import Resolver, UnsafeURL, parse_url, system_resolver
from takeback.takedown.directory import Directory, Entry
from takeback.takedown.notices import check_email
from takeback.takedown.rdap import RdapClient, RdapError, RdapResult
from takeback.takedown.site_contact import PageContacts, find_page_contacts

#: Escalation goes down this list: the party closest to the content first.  The upstream provider (the network the
#: host's block was assigned from) comes after the host: it can make its customer act, or cut it off.
ESCALATION_ORDER = ("platform", "site", "host", "upstream", "registrar", "search_engine")
#: The notice basis that usually fits a party kind when escalating (the person may choose another).
DEFAULT_BASIS_FOR = {"upstream": "abuse", "registrar": "abuse", "search_engine": "delisting"}
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
    #: directory | security.txt | page | rdap | unresolved
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


async def _security_txt(host: str, fetcher: FetcherLike) -> tuple[tuple[list[str], list[str]], dict[str, Any]]:
    """(e-mails, https URLs) of the site's security.txt, and the recorded step."""
    url = f"https://{host}/.well-known/security.txt"
    step: dict[str, Any] = {"step": "security.txt", "url": url}
    try:
        result = await fetcher.fetch(url, max_bytes=SECURITY_TXT_MAX_BYTES, accept="text/plain")
    except Exception as exc:  # FetchError and anything a hostile server provokes: recorded, never fatal
        step.update(outcome="error", error=f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"[:300])
        return ([], []), step
    step["status"] = result.status
    if result.status != 200:
        step["outcome"] = "absent"
        return ([], []), step
    emails, urls = parse_security_txt(bytes(result.body).decode("utf-8", "replace"))
    step.update(outcome="found" if emails or urls else "no_contact", emails=emails, urls=urls)
    return (emails, urls), step


def site_party(host: str, security: tuple[list[str], list[str]], page: PageContacts,
               steps: tuple[dict[str, Any], ...]) -> PartyCandidate | None:
    """One site party from what security.txt and the pages offer.  A removal channel the site itself labels
    (abuse / DMCA / copyright e-mail or page) beats the security contact, which beats a general contact."""
    emails, urls = security
    best_email, best_page = page.best_email, page.best_page
    email, web_form, source, note = None, None, "", ""
    if best_email is not None and best_email.score >= 2:
        label = best_email.text or "mailto"
        email, source, note = best_email.value, "page", f"the site's own removal contact ({label})"
    elif emails:
        email, source = emails[0], "security.txt"
        note = "security.txt names a security contact; it is the site operator's published contact"
    elif best_email is not None:
        email, source, note = best_email.value, "page", "a contact address published on the site"
    if email is None:
        if best_page is not None and best_page.score >= 2:
            web_form, source, note = best_page.value, "page", f"the site's removal page ({best_page.text or 'link'})"
        elif urls:
            web_form, source = urls[0], "security.txt"
            note = "security.txt names a contact page; it is the site operator's published contact"
        elif best_page is not None:
            web_form, source, note = best_page.value, "page", "the site's contact page"
    if email is None and web_form is None:
        return None
    return PartyCandidate(kind="site", key=f"site:{host}", name=host, email=email, web_form=web_form, source=source,
                          resolution=steps, note=note)


async def _site(host: str, pages: Sequence[str], fetcher: FetcherLike
                ) -> tuple[PartyCandidate | None, list[dict[str, Any]]]:
    security, page = await asyncio.gather(_security_txt(host, fetcher), find_page_contacts(pages, fetcher))
    steps = [security[1], *page.steps]
    return site_party(host, security[0], page, tuple(steps)), steps


async def _host(host: str, address: str | None, rdap: RdapClient, directory: Directory, basis: str | None
                ) -> tuple[list[PartyCandidate], list[dict[str, Any]]]:
    """The hosting provider and, one level up, the upstream provider (when one is reachable); their steps."""
    step: dict[str, Any] = {"step": "rdap-ip", "address": address}
    if address is None:
        step.update(outcome="error", error="the host name did not resolve")
        note = "the server's address is unknown: enter the hosting provider"
        return [_unresolved("host", host, step, note)], [step]
    try:
        result = await rdap.ip(address)
    except RdapError as exc:
        step.update(outcome="error", error=str(exc)[:300], requests=_requests(exc))
        note = "RDAP lookup failed: enter the hosting provider's abuse contact"
        return [_unresolved("host", address, step, note)], [step]
    party = _host_party(result, address, directory, basis, step)
    upstream, up_step = await _upstream(result, party, rdap)
    return [party] + ([upstream] if upstream is not None else []), [step, up_step]


def _host_party(result: RdapResult, address: str, directory: Directory, basis: str | None, step: dict[str, Any]
                ) -> PartyCandidate:
    step.update(outcome="found", url=result.url, network=result.handle, name=result.name,
                abuse=result.abuse.email if result.abuse else None, requests=[list(p) for p in result.path])
    known = directory.for_network(result.name) or directory.for_network(result.handle)
    if known is not None:
        step["directory"] = known.id
        party = _directory_party(known, basis, step)
        return PartyCandidate(**{**_fields(party), "kind": "host"})
    email = _valid_email(result.abuse.email if result.abuse else None)
    return PartyCandidate(
        kind="host", key=f"host:rdap:{result.handle or result.name}"[:255], name=result.name or address,
        email=email, web_form=None, source="rdap" if email else "unresolved", resolution=(step,),
        note="" if email else "RDAP names no abuse e-mail for this network: enter one",
    )


async def _upstream(network: RdapResult, host: PartyCandidate, rdap: RdapClient
                    ) -> tuple[PartyCandidate | None, dict[str, Any]]:
    """The network above the host's (RFC 9083 "up" link or the covering prefix): its abuse desk can make the host
    act.  Only a reachable party that is not the host itself is kept; every outcome is a recorded step."""
    step: dict[str, Any] = {"step": "rdap-ip-parent", "network": network.handle, "parent_handle": network.parent_handle}
    if host.source == "directory":
        step.update(outcome="skipped", reason="the host is a known provider with its own channel")
        return None, step
    try:
        parent = await rdap.parent(network)
    except RdapError as exc:
        step.update(outcome="error" if exc.code != "not_found" else "absent", error=str(exc)[:300],
                    requests=_requests(exc))
        return None, step
    email = _valid_email(parent.abuse.email if parent.abuse else None)
    step.update(outcome="found", url=parent.url, network_above=parent.handle, name=parent.name, abuse=email,
                requests=[list(p) for p in parent.path])
    if email is None:
        step["outcome"] = "no_contact"
        return None, step
    if email == host.email:
        step["outcome"] = "same_as_host"
        return None, step
    return PartyCandidate(
        kind="upstream", key=f"upstream:rdap:{parent.handle or parent.name}"[:255], name=parent.name or parent.handle,
        email=email, web_form=None, source="rdap", resolution=(step,),
        note=f"the network above {network.name or network.handle}: the host's upstream provider",
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
    page_url: str | None = None,
) -> PartyResolution:
    """Everyone who can remove ``url``, in escalation order, with the steps that found them.  ``page_url`` is the
    page the finding was seen on (read for the site's contact links before the home page).  Raises ``UnsafeURL``
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
    host_task = _host(host, address, rdap, directory, basis)
    registrar_task = _registrar(host, rdap)
    if fetcher is not None and not any(p.kind == "platform" for p in parties):
        parts = urlsplit(url)
        site_task = _site(host, [page_url or url, f"{parts.scheme}://{parts.netloc}/"], fetcher)
        (site, site_steps), (hosts, host_steps), (registrar, registrar_step) = await asyncio.gather(
            site_task, host_task, registrar_task)
        steps.extend(site_steps)
        if site is not None:
            parties.append(site)
    else:
        (hosts, host_steps), (registrar, registrar_step) = await asyncio.gather(host_task, registrar_task)
    steps.extend(host_steps)
    parties.extend(hosts)
    steps.append(registrar_step)
    parties.append(registrar)
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
