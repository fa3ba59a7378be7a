"""PDQ range index (placeholder: brute force; replaced by the multi-index-hashing segments)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from takeback.index import brute, hamming


class PdqIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = np.zeros(0, dtype=np.int64)
        self._words = np.zeros((0, hamming.WORDS), dtype=np.uint64)
        self._banks = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, ids: np.ndarray, words: np.ndarray, banks: np.ndarray) -> None:
        with self._lock:
            ids = np.asarray(ids, dtype=np.int64)
            keep = ~np.isin(self._ids, ids)
            self._ids, self._words, self._banks = (
                np.concatenate([self._ids[keep], ids]),
                np.concatenate([self._words[keep], words]),
                np.concatenate([self._banks[keep], np.asarray(banks, dtype=np.int64)]),
            )

    def remove(self, ids: np.ndarray) -> None:
        with self._lock:
            keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64))
            self._ids, self._words, self._banks = self._ids[keep], self._words[keep], self._banks[keep]

    def remove_bank(self, bank: int) -> None:
        with self._lock:
            keep = self._banks != bank
            self._ids, self._words, self._banks = self._ids[keep], self._words[keep], self._banks[keep]

    def search(
        self, queries: np.ndarray, threshold: int, banks: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(query row, id, bank, distance) for every stored hash within threshold, optionally only in `banks`."""
        ids, words, bank_of = self._ids, self._words, self._banks
        qi, si, dist = brute.range_search(queries, words, threshold)
        if banks is not None:
            keep = np.isin(bank_of[si], banks)
            qi, si, dist = qi[keep], si[keep], dist[keep]
        return qi, ids[si], bank_of[si], dist

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "ids.npy", self._ids)
        np.save(directory / "words.npy", self._words)
        np.save(directory / "banks.npy", self._banks)

    @classmethod
    def load(cls, directory: Path) -> PdqIndex:
        index = cls()
        index._ids = np.load(directory / "ids.npy")
        index._words = np.load(directory / "words.npy")
        index._banks = np.load(directory / "banks.npy")
        return index
