"""Remember what was hashed, so re-running over a library only hashes what
changed.

A file is unchanged when its device, inode, size and modification time (ns)
are all the same as last time, and it was hashed with the same options.  The
cache lives on the device (the user cache folder), holds hashes but no file
names, and can be bypassed (`--no-cache`) or ignored for one run (`--force`).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from takeback.protect.results import FileResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hashed (
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    options TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (device, inode, options)
)
"""


class HashCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._pending = 0

    def get(self, device: int, inode: int, size: int, mtime_ns: int, options: str, path: str) -> FileResult | None:
        row = self._db.execute(
            "SELECT size, mtime_ns, result FROM hashed WHERE device=? AND inode=? AND options=?",
            (device, inode, options),
        ).fetchone()
        if row is None or row[0] != size or row[1] != mtime_ns:
            return None
        try:
            data: dict[str, Any] = json.loads(row[2])
            return FileResult.from_cache(path, data)
        except (ValueError, TypeError):
            return None  # an entry from an older layout: hash again

    def put(self, device: int, inode: int, size: int, mtime_ns: int, options: str, result: FileResult) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO hashed VALUES (?, ?, ?, ?, ?, ?)",
            (device, inode, size, mtime_ns, options, json.dumps(result.to_cache())),
        )
        self._pending += 1
        if self._pending >= 500:
            self.commit()

    def commit(self) -> None:
        self._db.commit()
        self._pending = 0

    def close(self) -> None:
        self.commit()
        self._db.close()
