"""Hash a whole library on all cores, surviving anything a file can do.

The parent process walks the folders, answers unchanged files from the cache,
and feeds the rest to a pool of worker processes (one per core).  Long videos
are cut into time segments so that both cores work on a single film.  If a
decoder crashes a worker outright, the pool is rebuilt and the files that were
in flight are retried one at a time, so the culprit is named and the batch goes
on.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from takeback.media import sniff
from takeback.protect.cache import HashCache
from takeback.protect.hash_file import HashOptions, Task, run_task
from takeback.protect.results import FileResult, Frame, Status
from takeback.protect.walk import Found, Problem, walk

#: Videos longer than this are split across workers.
SEGMENT_SECONDS = 60.0
#: Files sent to a worker together at most (see `_take_group`), and the size of file that goes alone.
GROUP_FILES = 8
GROUP_MAX_BYTES = 32 * 2**20
#: Per-worker address-space limit (TAKEBACK_WORKER_MEMORY_MB; 0 = none).
DEFAULT_WORKER_MEMORY_MB = 6144
#: While workers are busy, `on_progress` hears at least this often (with no new file done), so a caller's display
#: can move its clock without a thread of its own (see `start_method`).
TICK_SECONDS = 0.5


@dataclass(slots=True)
class Progress:
    total: int
    done: int
    last: FileResult | None


@dataclass(slots=True)
class BatchReport:
    results: list[FileResult] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    def by_kind(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for r in self.results:
            row = table.setdefault(r.kind, {s.value: 0 for s in Status})
            row[r.status.value] += 1
        return table

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status is Status.FAILED]


def options_key(options: HashOptions) -> str:
    key = f"v1;exact={int(options.exact)};interval={options.interval:g};max_pixels={options.max_pixels}"
    key = f"{key};modes={options.modes}" if options.modes else key
    return f"{key};query={options.query_modes}" if options.query_modes else key


def _worker_init() -> None:
    # Address-space cap per worker: a hostile file that slips past the pixel
    # limit gets a MemoryError (reported as too-large), not the machine's swap.
    limit_mb = int(os.environ.get("TAKEBACK_WORKER_MEMORY_MB", str(DEFAULT_WORKER_MEMORY_MB)) or 0)
    if limit_mb > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit_mb * 2**20, limit_mb * 2**20))
    # One process per core already: BLAS threads on top of that oversubscribe the cores (measured: a forked pair of
    # workers whose numpy kept the parent's two BLAS threads each took 2.4x the CPU).  A forked worker inherits the
    # parent's BLAS, already started, so the environment variables set in `_start_pool` come too late for it.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an install from before it was a dependency: slower, but every file still hashes
        return
    threadpool_limits(limits=1, user_api="blas")


def start_method() -> str:
    """How the workers are started: "fork" on Linux when this process runs no other thread, "spawn" otherwise.

    Why: a spawned worker is a new interpreter that imports numpy, PyAV and the hashing code again, about 0.4
    CPU-seconds per worker, which is a quarter of hashing a 5-minute video on 2 cores.  A forked one starts with all
    of that already imported, in milliseconds.  Forking is only safe when no other thread could be holding a lock
    (a stream's, the logging module's) that the child would then wait for forever, so any other thread means spawn;
    macOS and Windows always spawn (fork is unsafe or missing there).  `takeback hash` keeps its progress display
    on the main thread for this reason (`TICK_SECONDS`).
    """
    if sys.platform == "linux" and threading.active_count() == 1:
        return "fork"
    return "spawn"


def _video_segments(path: str, workers: int, interval: float) -> list[Task]:
    """Split a long video into [start, end) spans on sampling instants, followed by its digests as a task of its own.

    Why the digests go alone: MD5 and SHA-256 of the benchmark's 5-minute video take 0.07 s, and the segment that
    carried them finished that much later than the other (1.3 s each) while the other worker sat idle.  On their
    own, they go to whichever worker is free first.
    """
    from takeback.media.errors import MediaError
    from takeback.media.video import probe

    if workers < 2:
        return [Task(path)]
    try:
        if sniff.kind_of_file(Path(path)) is not sniff.Kind.VIDEO:
            return [Task(path)]
        duration = probe(Path(path)).duration
    except (OSError, MediaError):
        return [Task(path)]  # the worker will report the problem properly
    if duration < 2 * SEGMENT_SECONDS:
        return [Task(path)]
    count = min(workers, math.ceil(duration / SEGMENT_SECONDS))
    step = math.ceil(duration / count / interval) * interval
    bounds = [i * step for i in range(count)] + [None]
    segments = [Task(path, start=float(bounds[i] or 0.0), end=bounds[i + 1], digests=False) for i in range(count)]
    return [*segments, Task(path, signals=False)]


def _merge_lists(
    parts: list[list[tuple[str, list[tuple[int, float, int, str]]]]], frames: list[Frame]
) -> list[tuple[str, list[tuple[int, float, int, str]]]]:
    """Each named frame list of a video's segments, joined in frame order.  A segment without a list had no frame
    needing it (no border in its frames): its frames keep their own hashes there, as within one segment."""
    names = list(dict.fromkeys(name for lists in parts for name, _rows in lists))
    joined = []
    for name in names:
        rows = {f.frame_number: (f.frame_number, f.timestamp, f.quality, f.pdq) for f in frames}
        for lists in parts:
            for other, part_rows in lists:
                if other == name:
                    rows.update((int(row[0]), tuple(row)) for row in part_rows)  # type: ignore[misc]
        joined.append((name, [rows[k] for k in sorted(rows)]))
    return joined


def _merge(parts: list[FileResult]) -> FileResult:
    """One result from a video's segments and, last, its digests (`_video_segments`)."""
    if len(parts) == 1:
        return parts[0]
    *segments, sums = parts
    if sums.status is Status.FAILED:
        return sums
    head = segments[0]
    ok = [p for p in segments if p.status is Status.HASHED]
    if not ok or head.status is Status.FAILED:
        return next(p for p in segments if p.status is Status.FAILED)
    head.md5, head.sha256, head.size = sums.md5, sums.sha256, sums.size
    frames = {f.frame_number: f for p in ok for f in p.frames}
    head.frames = [frames[k] for k in sorted(frames)]
    head.video_variants = _merge_lists([p.video_variants for p in ok], head.frames)
    head.query_video_variants = _merge_lists([p.query_video_variants for p in ok], head.frames)
    bad = [p for p in segments if p.status is Status.FAILED]
    warnings = [p.warning for p in ok if p.warning] + [f"part of the video failed: {p.reason}" for p in bad]
    head.warning = "; ".join(warnings) or None
    return head


def hash_paths(
    paths: list[Path],
    options: HashOptions,
    workers: int | None = None,
    cache: HashCache | None = None,
    force: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    runner: Callable[[Task, HashOptions], FileResult] = run_task,
) -> BatchReport:
    """Hash everything under `paths`; results come back in walk order.

    `workers=0` runs in this process (no pool), which tests and tiny batches use.
    `runner` (a module-level function, so workers can unpickle it) lets tests
    stand in a worker that crashes.  `on_progress` hears of each finished file,
    and every `TICK_SECONDS` while none finishes.
    """
    workers = (os.cpu_count() or 1) if workers is None else workers
    key = options_key(options)
    found: list[Found | Problem] = list(walk(paths))
    report = BatchReport(results=[FileResult(path=f.path, status=Status.FAILED) for f in found])
    pending: dict[int, list[Task]] = {}
    done = 0

    def finish(index: int, result: FileResult) -> None:
        nonlocal done
        report.results[index] = result
        done += 1
        if on_progress is not None:
            on_progress(Progress(len(found), done, result))

    uncached: list[int] = []
    for index, item in enumerate(found):
        if isinstance(item, Problem):
            finish(index, FileResult(path=item.path, status=Status.FAILED, error_code=item.code, reason=item.reason))
            continue
        if cache is not None and not force:
            hit = cache.get(item.device, item.inode, item.size, item.mtime_ns, key, item.path)
            if hit is not None:
                finish(index, hit)
                continue
        uncached.append(index)
    pool = None
    if workers > 0 and uncached and start_method() == "spawn":
        # Spawned workers start (and import what hashing needs, ~0.4 s) while this process looks into the files.
        pool = _start_pool(workers)
    for index in uncached:
        pending[index] = _video_segments(found[index].path, workers, options.interval)
    if workers > 0 and uncached and pool is None:
        # Forked workers start at once, and inherit what probing the videos imported (PyAV).
        pool = _start_pool(workers)

    def store(index: int, result: FileResult) -> None:
        item = found[index]
        if cache is not None and isinstance(item, Found) and result.status is Status.HASHED and not result.warning:
            cache.put(item.device, item.inode, item.size, item.mtime_ns, key, result)
        finish(index, result)

    if pool is None:
        for index, tasks in pending.items():
            store(index, _merge([runner(t, options) for t in tasks]))
    else:
        sizes = {index: item.size for index in pending if isinstance(item := found[index], Found)}
        tick = None if on_progress is None else lambda: on_progress(Progress(len(found), done, None))
        _run_pool(pending, options, workers, store, runner, pool, sizes, tick)
    if cache is not None:
        cache.commit()
    return report


def _run_pool(
    pending: dict[int, list[Task]],
    options: HashOptions,
    workers: int,
    store: Callable[[int, FileResult], None],
    runner: Callable[[Task, HashOptions], FileResult],
    pool: ProcessPoolExecutor | None,
    sizes: dict[int, int],
    tick: Callable[[], None] | None = None,
) -> None:
    """`sizes`: each pending file's size in bytes, from the walk (it decides which files may share a group).
    `tick` is called when `TICK_SECONDS` pass with no task finished."""
    queue: list[tuple[int, int, Task]] = [(i, j, t) for i, tasks in pending.items() for j, t in enumerate(tasks)]
    queue.reverse()  # pop() from the end keeps walk order
    parts: dict[int, dict[int, FileResult]] = {i: {} for i in pending}
    suspects: list[tuple[int, int, Task]] = []

    def record(index: int, part: int, result: FileResult) -> None:
        parts[index][part] = result
        if len(parts[index]) == len(pending[index]):
            store(index, _merge([parts[index][j] for j in range(len(pending[index]))]))

    while queue or suspects or pool is not None:
        pool = pool or _start_pool(workers)
        try:
            if suspects:
                # After a crash: run the files that were in flight one by one.
                index, part, task = suspects.pop()
                try:
                    record(index, part, pool.submit(runner, task, options).result())
                except BrokenProcessPool:
                    record(index, part, _crashed(task))
                continue
            in_flight: dict[Future[list[FileResult]], list[tuple[int, int, Task]]] = {}
            try:
                while queue or in_flight:
                    while queue and len(in_flight) < workers * 2:
                        group = _take_group(queue, workers, sizes)
                        in_flight[pool.submit(_run_group, runner, [t for _, _, t in group], options)] = group
                    finished, _ = wait(in_flight, timeout=TICK_SECONDS, return_when=FIRST_COMPLETED)
                    if not finished and tick is not None:
                        tick()
                    for future in finished:
                        outcomes = future.result()  # raises BrokenProcessPool after a crash
                        group = in_flight.pop(future)
                        for (index, part, _task), outcome in zip(group, outcomes, strict=True):
                            record(index, part, outcome)
            except BrokenProcessPool:
                suspects.extend(item for group in in_flight.values() for item in group)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            pool = None


def _start_pool(workers: int) -> ProcessPoolExecutor:
    """A pool whose workers are already starting: each is asked for a no-op, so they start and import now."""
    method = start_method()
    if method == "spawn":
        # A spawned worker's numpy reads these before it starts any BLAS thread (see `_worker_init`).
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
    context = multiprocessing.get_context(method)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init)
    for _ in range(workers):
        pool.submit(_ready)
    return pool


def _ready() -> None:
    """Nothing: unpickling it makes a spawned worker import this module, and with it everything hashing needs."""


def _take_group(queue: list[tuple[int, int, Task]], workers: int, sizes: dict[int, int]) -> list[tuple[int, int, Task]]:
    """The next tasks to send to a worker together: up to GROUP_FILES small files, one at a time near the end.

    Why: a task's round trip through the pool (pickling, pipes, the executor's threads) costs the parent about as
    much CPU as a millisecond of hashing, on a machine whose every core is hashing.  Big files and video segments go
    alone, and groups shrink as the queue empties so that no worker is left waiting for another's last group.
    """
    size = max(1, min(GROUP_FILES, len(queue) // (workers * 4)))
    group = [queue.pop()]
    while len(group) < size and queue and _small(group[-1], sizes) and _small(queue[-1], sizes):
        group.append(queue.pop())
    return group


def _small(item: tuple[int, int, Task], sizes: dict[int, int]) -> bool:
    index, _part, task = item
    if task.start or task.end is not None:
        return False  # a segment of a long video
    return sizes.get(index, 0) <= GROUP_MAX_BYTES


def _run_group(
    runner: Callable[[Task, HashOptions], FileResult], tasks: list[Task], options: HashOptions
) -> list[FileResult]:
    return [runner(task, options) for task in tasks]


def _crashed(task: Task) -> FileResult:
    return FileResult(
        path=task.path,
        status=Status.FAILED,
        error_code="crashed",
        reason="the decoder crashed on this file",
    )


def summarise(results: Iterable[FileResult]) -> dict[str, int]:
    totals = {s.value: 0 for s in Status}
    for r in results:
        totals[r.status.value] += 1
    return totals
