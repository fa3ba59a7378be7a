"""Petition tables (petitions, updates, signatures, counters, review flags).  Owned by the petition work."""

from __future__ import annotations
