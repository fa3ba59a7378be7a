"""Exact Hamming range search over many signals, exact-value lookup, and the vPDQ video rule.

Pure: no database, no network, no globals, so the server and any offline tool share it.
"""

from takeback.index.signal_index import SignalIndex
from takeback.index.types import IndexedSignal, Match, Query

__all__ = ["IndexedSignal", "Match", "Query", "SignalIndex"]
