"""Expand the paths given on the command line into the files to hash.

Follows symbolic links (photo libraries are often linked in from elsewhere)
but remembers every directory it has entered by device and inode, so a link
that points back up the tree is reported once instead of recursing forever.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Found:
    path: str
    size: int
    mtime_ns: int
    device: int
    inode: int


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    code: str
    reason: str


def walk(paths: list[Path]) -> Iterator[Found | Problem]:
    """Yield each regular file under `paths` once (by device+inode), in a
    stable order, and a `Problem` for anything that cannot be visited."""
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    for root in paths:
        yield from _visit(root, seen_dirs, seen_files, top=True)


def _visit(
    path: Path, seen_dirs: set[tuple[int, int]], seen_files: set[tuple[int, int]], top: bool
) -> Iterator[Found | Problem]:
    try:
        st = path.stat()  # follows links
    except OSError as exc:
        if path.is_symlink():
            if exc.errno == 40:  # ELOOP
                yield Problem(str(path), "unreadable", "symbolic link loop")
            else:
                yield Problem(str(path), "unreadable", "broken symbolic link")
        elif top:
            yield Problem(str(path), "unreadable", "no such file or folder" if not path.exists() else str(exc.strerror))
        else:
            yield Problem(str(path), "unreadable", f"cannot read ({exc.strerror})")
        return
    if stat.S_ISDIR(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            if path.is_symlink():
                yield Problem(str(path), "unreadable", "symbolic link loop (folder already visited)")
            return
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:
            yield Problem(str(path), "unreadable", f"cannot list folder ({exc.strerror})")
            return
        for entry in entries:
            yield from _visit(Path(entry.path), seen_dirs, seen_files, top=False)
        return
    if not stat.S_ISREG(st.st_mode):
        if top:
            yield Problem(str(path), "unreadable", "not a regular file")
        return  # sockets, fifos, devices inside folders: nothing to hash
    key = (st.st_dev, st.st_ino)
    if key in seen_files:
        return
    seen_files.add(key)
    yield Found(str(path), st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
