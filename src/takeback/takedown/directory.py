"""The curated platform directory: removal channels of major platforms, search engines, CDNs and regulators.

Shipped as data (``data/platforms.json``) and editable: a file named by the ``takedown_platforms_file`` setting is
merged over it (same ``id`` replaces an entry).  Entries say when they were last verified (``verified_on``; null:
not verified) so nothing unverified is presented as fact.
"""

from __future__ import annotations

import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class DirectoryError(Exception):
    """The directory file cannot be read or does not have the expected shape."""


class Channel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["email", "web_form"]
    #: An https URL (web forms) or a mailto: address (e-mail).
    url: str = Field(max_length=2048)
    bases: tuple[str, ...] = ()
    note: str = ""


class Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["platform", "search_engine", "host", "registrar"]
    domains: tuple[str, ...] = ()
    #: RDAP network names (hosts/CDNs) this entry applies to.
    rdap_names: tuple[str, ...] = ()
    channels: tuple[Channel, ...] = Field(min_length=1)
    source_url: str
    verified_on: date | None = None

    def channel_for(self, basis: str | None) -> Channel:
        """The channel for ``basis`` (the first listing it), else the first channel."""
        return next((c for c in self.channels if basis in c.bases), self.channels[0])

    @property
    def verified(self) -> bool:
        return self.verified_on is not None


class Regulator(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    bases: tuple[str, ...]
    url: str
    note: str = ""
    verified_on: date | None = None


class Directory(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    entries: tuple[Entry, ...] = ()
    regulators: tuple[Regulator, ...] = ()

    def for_host(self, host: str) -> list[Entry]:
        """Entries whose domain is ``host`` or a parent of it (www.reddit.com → reddit)."""
        host = host.lower().rstrip(".")
        return [e for e in self.entries if any(host == d or host.endswith("." + d) for d in e.domains)]

    def for_network(self, rdap_name: str) -> Entry | None:
        name = rdap_name.upper()
        return next((e for e in self.entries if any(name.startswith(n.upper()) for n in e.rdap_names)), None)

    def search_engines(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "search_engine"]

    def regulators_for(self, basis: str) -> list[Regulator]:
        return [r for r in self.regulators if basis in r.bases]


def _parse(text: str, origin: str) -> Directory:
    try:
        return Directory.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise DirectoryError(f"{origin}: not a valid platform directory: {exc}") from None


def load_directory(extra: Path | None = None) -> Directory:
    """The shipped directory, with ``extra`` (if given) merged over it by entry id."""
    shipped = _parse(resources.files("takeback.takedown").joinpath("data/platforms.json").read_text("utf-8"),
                     "platforms.json")
    if extra is None:
        return shipped
    try:
        own = _parse(Path(extra).read_text("utf-8"), str(extra))
    except OSError as exc:
        raise DirectoryError(f"{extra}: cannot read the platform directory: {exc}") from None
    entries = {e.id: e for e in shipped.entries} | {e.id: e for e in own.entries}
    regulators = {r.id: r for r in shipped.regulators} | {r.id: r for r in own.regulators}
    return Directory(entries=tuple(entries.values()), regulators=tuple(regulators.values()))
