"""Notice models: one pydantic model per legal basis, each refusing to exist while a required element is missing.

Why a model per basis: each law lists the elements that make a notice valid, and a notice missing one can be ignored
by its recipient.  The validator runs before anything else and raises ``IncompleteNotice`` naming every missing
element with the provision that requires it, so the person is told exactly what to add.  Media are never part of a
notice: only URLs and the hashes of what was found there.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Basis = Literal["dmca", "takeitdown", "gdpr", "dsa", "delisting", "abuse"]
BASES: tuple[str, ...] = ("dmca", "takeitdown", "gdpr", "dsa", "delisting", "abuse")
#: Art. 17(1) GDPR grounds, as the letters the regulation uses.
GDPR_GROUNDS = ("a", "b", "c", "d", "e", "f")
MAX_URLS = 500
_HEX = re.compile(r"[0-9a-f]+")


class NoticeError(Exception):
    """Base class: a notice cannot be built from what was given.  Not a ValueError on purpose: pydantic would wrap
    a ValueError raised in a validator into a generic ValidationError and lose the named elements."""


@dataclass(frozen=True, slots=True)
class Element:
    """One required element of a notice: the input field, what the law calls it, and where the law says so."""

    field: str
    label: str
    citation: str


class IncompleteNotice(NoticeError):
    """Required elements are missing; ``missing`` lists every one (not just the first)."""

    def __init__(self, basis: str, missing: tuple[Element, ...]) -> None:
        names = "; ".join(f"{e.label} ({e.citation}) [field: {e.field}]" for e in missing)
        super().__init__(f"{basis} notice is incomplete, missing: {names}")
        self.basis = basis
        self.missing = missing

    @property
    def fields(self) -> list[str]:
        return [e.field for e in self.missing]


class InvalidNotice(NoticeError):
    """An element is present but unusable (a malformed e-mail address, a URL that is not http(s), ...)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid notice: " + "; ".join(problems))
        self.problems = problems


def _clean_line(value: str) -> str:
    """One line of text: control characters (line breaks included) become spaces, so no value can start a new
    e-mail header or fake a new paragraph of the notice."""
    return " ".join("".join(c if c.isprintable() else " " for c in value).split())


def check_email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from None


class Sender(BaseModel):
    """The person sending the notice: the depicted person / rights holder, or someone authorised to act for her."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=254)
    postal_address: str = Field(default="", max_length=500)
    phone: str = Field(default="", max_length=50)
    #: Set when the sender acts for someone else: that person's name (the notice then says so).
    acting_for: str = Field(default="", max_length=200)

    @field_validator("name", "postal_address", "phone", "acting_for")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _clean_line(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return check_email(value.strip()) if value.strip() else ""


class Material(BaseModel):
    """One location of the material: the URL and, when known, hashes of what was found there (never the bytes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(max_length=2048)
    sha256: str | None = Field(default=None, min_length=64, max_length=64)
    pdq: str | None = Field(default=None, min_length=64, max_length=64)
    finding_id: int | None = Field(default=None, ge=1)
    note: str = Field(default="", max_length=500)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if not re.match(r"(?i)^https?://[^\s/]+", value) or any(not c.isprintable() or c.isspace() for c in value):
            raise ValueError("must be an http(s) URL without spaces or control characters")
        return value

    @field_validator("sha256", "pdq")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.lower()
        if not _HEX.fullmatch(value):
            raise ValueError("must be hexadecimal")
        return value

    @field_validator("note")
    @classmethod
    def _note(cls, value: str) -> str:
        return _clean_line(value)


def _present(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple | dict | set):
        return bool(value)
    return True


class NoticeBase(BaseModel):
    """Fields every notice has.  Subclasses list their legally required ``ELEMENTS``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    basis: str
    #: A sender's many URLs at one party go into one notice.
    materials: list[Material] = Field(default_factory=list, max_length=MAX_URLS)
    sender: Sender = Field(default_factory=Sender)
    #: Typed name ("/s/ Jane Doe") or other electronic signature of the sender.
    signature: str = Field(default="", max_length=200)
    #: Whom the notice is addressed to (party name), for the salutation and the JSON copy.
    recipient_name: str = Field(default="", max_length=200)
    #: Free text the person adds; rendered verbatim (never interpreted as a template).
    additional_information: str = Field(default="", max_length=5000)
    date: dt.date | None = None

    ELEMENTS: ClassVar[tuple[Element, ...]] = ()
    TITLE: ClassVar[str] = ""
    CITATION: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _complete(cls, data: Any) -> Any:
        # Runs before field validation so an incomplete notice is reported as such, with every missing element.
        if isinstance(data, dict):
            missing = tuple(e for e in cls.ELEMENTS if not _present(_lookup(data, e.field)))
            if missing:
                raise IncompleteNotice(str(data.get("basis") or cls.model_fields["basis"].default), missing)
        return data

    @field_validator("signature", "recipient_name")
    @classmethod
    def _line(cls, value: str) -> str:
        return _clean_line(value)

    @field_validator("materials")
    @classmethod
    def _unique(cls, value: list[Material]) -> list[Material]:
        seen: dict[str, Material] = {}
        for material in value:
            seen.setdefault(material.url, material)
        return list(seen.values())

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.materials]


def _lookup(data: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted path; "a|b" is the first present of several alternatives."""
    if "|" in dotted:
        return next((v for v in (_lookup(data, alt) for alt in dotted.split("|")) if _present(v)), None)
    value: Any = data
    for part in dotted.split("."):
        if isinstance(value, BaseModel):
            value = getattr(value, part, None)
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


_DMCA = "17 U.S.C. §512(c)(3)(A)"


class DmcaNotice(NoticeBase):
    """Copyright notice to a service provider's designated agent.  Fits when she made the photo or video herself
    (a selfie is her copyrighted work)."""

    basis: Literal["dmca"] = "dmca"
    #: (ii) the copyrighted work(s): what she made, when, where the original is if anywhere.
    work: str = Field(default="", max_length=2000)
    #: (v) good-faith belief the use is not authorised by the owner, its agent or the law.
    good_faith: bool = False
    #: (vi) accuracy, and authority to act for the owner, under penalty of perjury.
    accuracy_under_penalty_of_perjury: bool = False

    TITLE: ClassVar[str] = "Notification of claimed copyright infringement"
    CITATION: ClassVar[str] = "17 U.S.C. §512(c)(3)"
    ELEMENTS: ClassVar[tuple[Element, ...]] = (
        Element("signature", "physical or electronic signature", f"{_DMCA}(i)"),
        Element("work", "identification of the copyrighted work", f"{_DMCA}(ii)"),
        Element("materials", "the infringing material and its location (URLs)", f"{_DMCA}(iii)"),
        Element("sender.name", "name of the complaining party", f"{_DMCA}(iv)"),
        Element("sender.email", "contact e-mail address", f"{_DMCA}(iv)"),
        Element("sender.postal_address|sender.phone", "postal address or telephone number for contact", f"{_DMCA}(iv)"),
        Element("good_faith", "good-faith statement", f"{_DMCA}(v)"),
        Element(
            "accuracy_under_penalty_of_perjury",
            "statement of accuracy and authority to act, under penalty of perjury",
            f"{_DMCA}(vi)",
        ),
    )


_TIDA = "TAKE IT DOWN Act, Pub. L. 119-12, §3(a)(1)(B)"


class TakeItDownNotice(NoticeBase):
    """Removal request for a non-consensual intimate visual depiction (real or computer-generated) to a covered
    platform, which must remove it within 48 hours and make reasonable efforts to remove known identical copies."""

    basis: Literal["takeitdown"] = "takeitdown"
    #: (iii) brief statement of good-faith belief that the depiction is not consensual.
    good_faith_not_consensual: bool = False
    #: (iii) relevant information for the platform to determine it was published without consent (optional).
    consent_information: str = Field(default="", max_length=2000)
    #: (ii) identification of the depiction beyond the URLs (e.g. "photo of me in ..."); optional, no media.
    depiction_description: str = Field(default="", max_length=1000)

    TITLE: ClassVar[str] = "Removal request for a non-consensual intimate visual depiction"
    CITATION: ClassVar[str] = "TAKE IT DOWN Act (Pub. L. 119-12, 2025), §3"
    ELEMENTS: ClassVar[tuple[Element, ...]] = (
        Element("signature", "physical or electronic signature of the depicted person or an authorised person",
                f"{_TIDA}(i)"),
        Element("materials", "identification and location of the depiction (URLs)", f"{_TIDA}(ii)"),
        Element("good_faith_not_consensual", "good-faith statement that the depiction is not consensual",
                f"{_TIDA}(iii)"),
        Element("sender.name", "name for contact", f"{_TIDA}(iv)"),
        Element("sender.email", "contact e-mail address", f"{_TIDA}(iv)"),
    )


_GDPR = "GDPR (Regulation (EU) 2016/679)"


class GdprErasureNotice(NoticeBase):
    """Erasure request ("right to be forgotten") to a controller that processes her personal data (her images,
    her name) in the EU/EEA, or offers services there."""

    basis: Literal["gdpr"] = "gdpr"
    #: Art. 17(1) grounds, letters a–f (most often: b consent withdrawn / never given, c objection, d unlawful).
    grounds: list[Literal["a", "b", "c", "d", "e", "f"]] = Field(default_factory=list, max_length=6)
    #: Why the grounds apply, in her words (optional but helps).
    explanation: str = Field(default="", max_length=5000)

    TITLE: ClassVar[str] = "Request for erasure of personal data under Article 17 GDPR"
    CITATION: ClassVar[str] = f"{_GDPR}, Art. 17"
    ELEMENTS: ClassVar[tuple[Element, ...]] = (
        Element("sender.name", "identity of the data subject", f"{_GDPR}, Art. 17(1), Art. 12(6)"),
        Element("sender.email", "contact e-mail address for the reply", f"{_GDPR}, Art. 12(3)"),
        Element("materials", "the personal data concerned and where it is (URLs)", f"{_GDPR}, Art. 17(1)"),
        Element("grounds", "the ground(s) for erasure, Art. 17(1)(a)–(f)", f"{_GDPR}, Art. 17(1)"),
    )

    @field_validator("grounds")
    @classmethod
    def _sorted(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


_DSA = "Digital Services Act (Regulation (EU) 2022/2065), Art. 16(2)"


class DsaNotice(NoticeBase):
    """Notice of illegal content to a hosting service (including online platforms) offering services in the EU."""

    basis: Literal["dsa"] = "dsa"
    #: (a) a sufficiently substantiated explanation why the content is illegal.
    explanation: str = Field(default="", max_length=5000)
    #: (d) bona fide belief that the information and allegations are accurate and complete.
    bona_fide: bool = False

    TITLE: ClassVar[str] = "Notice of illegal content under Article 16 of the Digital Services Act"
    CITATION: ClassVar[str] = "Regulation (EU) 2022/2065 (DSA), Art. 16"
    ELEMENTS: ClassVar[tuple[Element, ...]] = (
        Element("explanation", "substantiated explanation of why the content is illegal", f"{_DSA}(a)"),
        Element("materials", "exact electronic location of the content (URLs)", f"{_DSA}(b)"),
        Element("sender.name", "name of the notifier", f"{_DSA}(c)"),
        Element("sender.email", "e-mail address of the notifier", f"{_DSA}(c)"),
        Element("bona_fide", "statement of bona fide belief that the notice is accurate and complete", f"{_DSA}(d)"),
    )


class DelistingNotice(NoticeBase):
    """Request to a search engine to remove results (URLs) that show intimate images of her without consent or
    that exploit her name.  Not a statute's form: search engines run their own policies (and, in the EU, must
    answer Art. 17 GDPR delisting requests); the elements below are what their forms ask for."""

    basis: Literal["delisting"] = "delisting"
    #: Search terms under which the results appear (typically her name).
    queries: list[str] = Field(default_factory=list, max_length=20)
    explanation: str = Field(default="", max_length=5000)
    good_faith: bool = False

    TITLE: ClassVar[str] = "Request to remove search results (non-consensual intimate imagery / personal data)"
    CITATION: ClassVar[str] = "search engine removal policy; in the EU also GDPR Art. 17 (C-131/12 Google Spain)"
    ELEMENTS: ClassVar[tuple[Element, ...]] = (
        Element("materials", "the result URLs to remove", "search engine removal policy"),
        Element("sender.name", "name of the person concerned", "search engine removal policy"),
        Element("sender.email", "contact e-mail address", "search engine removal policy"),
        Element("explanation", "why the results should be removed", "search engine removal policy"),
        Element("good_faith", "statement that the information is accurate", "search engine removal policy"),
    )

    @field_validator("queries")
    @classmethod
    def _queries(cls, value: list[str]) -> list[str]:
        return [q for q in (_clean_line(v)[:200] for v in value) if q]


class AbuseReport(NoticeBase):
    """Abuse report to a registrar or hosting provider: a domain or server used to publish non-consensual intimate
    imagery or built on her name.  Registrars accredited by ICANN must take reasonable and prompt steps to
    investigate and respond to abuse reports (Registrar Accreditation Agreement 2013, §3.18)."""

    basis: Literal["abuse"] = "abuse"
    explanation: str = Field(default="", max_length=5000)
    good_faith: bool = False

    TITLE: ClassVar[str] = "Abuse report"
    CITATION: ClassVar[str] = "ICANN Registrar Accreditation Agreement (2013) §3.18; provider's acceptable-use policy"
    ELEMENTS: ClassVar[tuple[Element, ...]] = (
        Element("materials", "the abusive URLs or domains", "RAA §3.18.1"),
        Element("explanation", "what the abuse is", "RAA §3.18.1"),
        Element("sender.name", "name of the reporter", "RAA §3.18.1"),
        Element("sender.email", "contact e-mail address", "RAA §3.18.1"),
        Element("good_faith", "statement that the report is accurate", "provider's acceptable-use policy"),
    )


NOTICE_TYPES: dict[str, type[NoticeBase]] = {
    "dmca": DmcaNotice,
    "takeitdown": TakeItDownNotice,
    "gdpr": GdprErasureNotice,
    "dsa": DsaNotice,
    "delisting": DelistingNotice,
    "abuse": AbuseReport,
}

#: Plain-language explanations the app shows when the person chooses a basis (not legal advice).
EXPLANATIONS: dict[str, str] = {
    "dmca": "Copyright (US). Use when you made the photo or video yourself (a selfie is your work). Works with any "
    "US-based site or host and with most others, which follow it voluntarily. You state under penalty of perjury "
    "that you own the work; your name and contact details may be passed on to the uploader.",
    "takeitdown": "TAKE IT DOWN Act (US, 2025). Use for intimate images or videos of you shared without consent, "
    "including fakes. Covered platforms must remove them within 48 hours and remove known identical copies. You "
    "need not own the copyright.",
    "gdpr": "Erasure under the GDPR (EU/EEA). Use when the site or service is in the EU/EEA or targets people there. "
    "Intimate images and your name are personal data; the controller must answer within one month.",
    "dsa": "Digital Services Act notice (EU). Use for hosting services and platforms offering services in the EU: "
    "you explain why the content is illegal (e.g. non-consensual intimate imagery is a crime in most member "
    "states); they must decide in a timely, diligent way and tell you their decision.",
    "delisting": "Search engine removal. Asks Google, Bing and others to stop showing the pages in results for your "
    "name. Does not delete the page itself; use it together with a notice to the site or host.",
    "abuse": "Abuse report to a registrar or hosting provider, for whole sites or domains built to abuse you.",
}

DISCLAIMER = (
    "takeback helps you write and send this notice; it does not give legal advice. If you are unsure which basis "
    "applies to you, a lawyer or a support organisation can help."
)


def build_notice(basis: str, data: dict[str, Any]) -> NoticeBase:
    """The notice for ``basis`` from plain data; raises ``IncompleteNotice`` (missing elements, all named) or
    ``InvalidNotice`` (present but malformed elements)."""
    model = NOTICE_TYPES.get(basis)
    if model is None:
        raise InvalidNotice([f"basis: unknown basis {basis!r}; choose one of {', '.join(BASES)}"])
    try:
        return model.model_validate({**data, "basis": basis})
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in exc.errors()
        ]
        raise InvalidNotice(problems) from None
