"""Takedown tables (parties, notices, their events, the evidence log).  Owned by the takedown work."""

from __future__ import annotations
