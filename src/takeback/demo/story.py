"""The demo's plot in one place: a fictional person, her names, who signs in, what the notices and the petition say.

Kept apart from the code that acts on it so the words can be read (and changed) without reading the seeding.
All addresses use the reserved ``.example`` domain (RFC 2606): nothing here can reach a real mailbox.
"""

from __future__ import annotations

from typing import Any

#: The person the demo case is about.  Fictional; chosen to be unlike any public figure's name.
PERSON = "Ada Demoulin"
ALIASES = ("Ada Rosewood",)
USERNAMES = ("adademoulin",)
CASE_NAME = "Demo: Ada Demoulin"

#: The dashboard account (owner of the case and a platform operator, so one sign-in shows every page).
ACCOUNT_EMAIL = "demo@takeback.example"
ACCOUNT_NAME = "Demo user"

#: The demo site's pretend hosting provider: notices for the site's pages go here (into the local mail sink).
HOST_PARTY_KEY = "demo:hosting"
HOST_PARTY_NAME = "Demo Hosting Ltd. (pretend)"
HOST_ABUSE = "abuse@demo-hosting.example"
#: The pretend registrar of the look-alike domains found in the feed.
REGISTRAR_PARTY_KEY = "demo:registrar"
REGISTRAR_PARTY_NAME = "Demo Registrar Inc. (pretend)"
REGISTRAR_ABUSE = "abuse@demo-registrar.example"

SENDER = {"name": PERSON, "email": "ada@demoulin.example", "postal_address": "1 Example Street, Exampleton"}
#: Complete notice details per basis (the statements she makes; the URLs and hashes come from the findings).
NOTICE_DETAILS: dict[str, dict[str, Any]] = {
    "takeitdown": {"signature": f"/s/ {PERSON}", "sender": SENDER, "good_faith_not_consensual": True},
    "abuse": {
        "sender": SENDER,
        "explanation": f"The domain uses my name ({PERSON}) to publish intimate images of me without my consent.",
        "good_faith": True,
    },
}

PETITION_SLUG = "ada-demoulin-take-it-down"
PETITION_TITLE = "Demo Hosting: take down the images of Ada Demoulin"
PETITION_TARGET = "Demo Hosting Ltd."
PETITION_GOAL = 50
PETITION_TEXT = (
    "This is a demo petition, made up for takeback's demo.\n\n"
    "Images of Ada Demoulin were published without her consent. We ask the host to remove every copy within 48 "
    "hours, as the TAKE IT DOWN Act requires of platforms, and to keep them from coming back."
)
#: Demo supporters: (name, e-mail, country, comment, verified).  Reserved domains only.
SUPPORTERS: tuple[tuple[str, str, str, str | None, bool], ...] = (
    ("Sam Example", "sam@example.org", "GB", "Nobody should have to fight this alone.", True),
    ("Lea Muster", "lea.muster@example.de", "DE", None, True),
    ("Joan Sample", "joan@example.net", "US", "Take them down. Now.", True),
    ("Ines Exemplo", "ines@example.com", "PT", None, True),
    ("Tom Beispiel", "tom@example.de", "AT", "Consent matters.", True),
    ("Mara Voorbeeld", "mara@example.nl", "NL", None, True),
    ("Kai Esimerkki", "kai@example.fi", "FI", None, False),
    ("Noor Example", "noor@example.org", "FR", "Solidarity from Lyon.", False),
    ("Rui Exemplo", "rui@example.com", "BR", None, True),
    ("Ola Eksempel", "ola@example.no", "NO", None, True),
    ("Eva Příklad", "eva@example.cz", "CZ", None, False),
    ("Ben Example", "ben@example.com", "US", None, True),
)

#: A TAKE IT DOWN request a platform running takeback received (the operator's inbox).
INBOX_REQUEST = {
    "name": "Riley Example",
    "email": "riley@example.org",
    "signature": "/s/ Riley Example",
    "description": "An intimate photo of me, posted without my consent. I am the person shown.",
}
#: The API client a platform would use to check its uploads against the banks.
API_CLIENT = "demo-platform"
