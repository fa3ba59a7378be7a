"""The platform operator's side of the demo: an API client a platform would use to check uploads against the
case's bank, and one TAKE IT DOWN request in the inbox with its 48-hour clock running."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from takeback import store
from takeback.demo import story
from takeback.store import inbox


def ensure_client(session: Session, bank_id: int) -> bool:
    """The demo platform's match-only key, granted the case's bank; True when it was created now.  Its key is not
    shown (the operator page makes new keys; the admin key printed at first start can too)."""
    if any(c.name == story.API_CLIENT for c in store.list_clients(session)):
        return False
    store.create_client(session, story.API_CLIENT, ["match"], bank_ids=(bank_id,))
    return True


def ensure_request(session: Session, urls: list[str], now: datetime) -> bool:
    """A request received 20 hours ago (28 hours left on its clock); True when it was filed now."""
    if inbox.list_requests(session, limit=1):
        return False
    inbox.file_request(session, urls=urls, good_faith=True, ip="192.0.2.10",
                       received_at=now - timedelta(hours=20), **story.INBOX_REQUEST)
    return True
