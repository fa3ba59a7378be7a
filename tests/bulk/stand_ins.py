"""Stand-ins that run inside Ray workers; the tests ship this module to the cluster by value (cloudpickle), so the
workers need not import the tests package."""

from __future__ import annotations

import os
from pathlib import Path

from takeback.protect.hash_file import HashOptions, Task, run_task
from takeback.protect.results import FileResult


def crash_on_marker(task: Task, options: HashOptions) -> FileResult:
    """The real hasher, except that a file named crash-me* kills the worker process outright (like a segfault)."""
    if Path(task.path).name.startswith("crash-me"):
        os._exit(1)
    return run_task(task, options)


def double(items: list[int]) -> list[int]:
    return [2 * i for i in items]


def die_on_seven(items: list[int]) -> list[int]:
    if 7 in items:
        os._exit(1)
    return [2 * i for i in items]
