"""Helpers shared by the benchmark scripts: machine description, timing and distance summaries."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: Workers used for every 2-core comparison (the issue's target is stated for 2 cores).
WORKERS = 2


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_lines(packages: Sequence[str]) -> list[str]:
    """Human-readable facts about this machine and the library versions in use."""
    lines = [
        f"machine: os.cpu_count()={os.cpu_count()}, usable cpus={usable_cpus()}, cpu model: {cpu_model()}",
        f"python: {platform.python_version()} ({sys.executable}), {platform.platform()}",
    ]
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    lines.append("versions: " + ", ".join(versions))
    return lines


def timed(func: Callable[[], T]) -> tuple[T, float]:
    """Call `func` once; return its value and the wall-clock seconds it took."""
    start = time.perf_counter()
    value = func()
    return value, time.perf_counter() - start


def distance_summary(distances: Sequence[int]) -> str:
    if not distances:
        return "n=0 (nothing to compare)"
    exact = sum(1 for d in distances if d == 0)
    return (
        f"n={len(distances)}, median {statistics.median(distances):g}, mean {statistics.fmean(distances):.2f}, "
        f"max {max(distances)}, identical {exact}/{len(distances)}"
    )
