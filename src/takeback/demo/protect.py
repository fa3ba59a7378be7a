"""The demo person's bank, made the way she would make it: her photos hashed by `takeback hash`'s own code into a
hash list, and that list loaded into the case's bank exactly as the dashboard's upload form loads one.

The photos and the list are written to the demo data dir (``photos/``, ``demo-hashes.jsonl``) so the person can
look at both: benign sample photos, and the hashes that are all the server ever receives.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from takeback import store
from takeback.config import Settings
from takeback.demo import media
from takeback.protect.batch import hash_paths
from takeback.protect.hash_file import HashOptions
from takeback.protect.report import to_hash_list
from takeback.signals import hashlist, interop


def bank_name(case_id: int) -> str:
    """The dashboard's name for a case's own bank (its upload form adds to the same one)."""
    return f"case-{case_id}"


def make_hash_list(settings: Settings, folder: Path) -> Path:
    """Write the protected photos under ``folder/photos`` and their hash list to ``folder/demo-hashes.jsonl``."""
    photos = media.write_originals(folder / "photos")
    report = hash_paths(photos, HashOptions(max_pixels=settings.max_image_pixels), workers=0)
    target = folder / "demo-hashes.jsonl"
    hashlist.write(to_hash_list(report.results), target, "jsonl")
    return target


def load_bank(session: Session, case_id: int, listing: Path) -> tuple[int, int]:
    """Load the hash list into the case's bank (created if missing); (bank id, signals added)."""
    bank = store.get_bank_by_name(session, bank_name(case_id))
    if bank is None:
        bank = store.create_bank(session, bank_name(case_id), "hashes the person made on her device",
                                 case_id=case_id)
    parsed = interop.read_signals(listing.read_text(encoding="utf-8"), "auto")
    result = store.add_signals(session, bank.id, [(s.signal_type, s.value, s.quality, None) for s in parsed.signals])
    return bank.id, len(result.added)
