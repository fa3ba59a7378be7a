"""`takeback hash --ray`: the local hasher's work, spread over a Ray cluster, with the same hash list at the end.

The driver walks the folders (lazily: walking and hashing overlap), answers unchanged files from the cache like the
local hasher, and hands the rest to the cluster in chunks of files (`windowed`: bounded in flight, results in order
of completion). Each chunk runs `takeback.protect.hash_file.run_task` per file on a worker, so every file gets
exactly the result the local hasher would give it; the results are put back in walk order before the list is
written, which makes the two hash lists equal line for line (apart from the creation time in the header).

Differences from the local pool, on purpose: a long video is hashed whole by one task instead of being cut into
segments (across a backlog the files themselves keep every core busy, and cutting needs a probe of every video in
the driver); and the per-worker address-space cap is left to Ray's own memory monitor, which kills a task that
runs the node out of memory — that file is then reported `too-large`.

Every node must see the files at the same paths (shared storage) and have takeback installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from takeback.bulk.cluster import connect
from takeback.bulk.window import windowed
from takeback.protect.batch import BatchReport, Progress, options_key
from takeback.protect.cache import HashCache
from takeback.protect.hash_file import HashOptions, Task, run_task
from takeback.protect.results import FileResult, Status
from takeback.protect.walk import Found, Problem, walk

#: Files per Ray task: large enough to amortise a task's scheduling cost (~1 ms), small enough to balance.
DEFAULT_CHUNK_FILES = 16
#: In-flight tasks per cluster CPU when no window is given: one running, one queued behind it.
WINDOW_PER_CPU = 2

Runner = Callable[[Task, HashOptions], FileResult]


def hash_chunk(tasks: list[Task], options: HashOptions, runner: Runner = run_task) -> list[FileResult]:
    """Runs on a Ray worker: one result per task, in order (`run_task` never raises)."""
    return [runner(task, options) for task in tasks]


def remote_hash_chunk():  # type: ignore[no-untyped-def]  # a ray.remote function
    """`hash_chunk` as a Ray task (made on use, so importing this module does not need Ray)."""
    from takeback.bulk.cluster import require_ray

    # max_retries=0: a chunk that kills its worker is split file by file by `windowed`, not rerun whole.
    return require_ray().remote(num_cpus=1, max_retries=0)(hash_chunk)


def died(task: Task, reason: str) -> FileResult:
    """The result for a file whose single-file task died (named like the local pool's crash result)."""
    if reason == "out-of-memory":
        return FileResult(
            path=task.path, status=Status.FAILED, error_code="too-large", reason="not enough memory to decode this file"
        )
    return FileResult(
        path=task.path, status=Status.FAILED, error_code="crashed", reason="the decoder crashed on this file"
    )


def default_window(cpus: int) -> int:
    return max(1, WINDOW_PER_CPU * cpus)


def hash_paths_on_ray(
    paths: list[Path],
    options: HashOptions,
    *,
    cpus: int,
    cache: HashCache | None = None,
    force: bool = False,
    chunk_files: int = DEFAULT_CHUNK_FILES,
    window: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    runner: Runner = run_task,
) -> BatchReport:
    """Hash everything under `paths` on the connected Ray cluster; results in walk order, like `hash_paths`.

    Call inside `cluster.connect` (which gives `cpus`). `runner` (a picklable function) lets tests stand in a worker
    that crashes.
    """
    key = options_key(options)
    found: list[Found | Problem] = []
    results: list[FileResult | None] = []
    task_index: list[int] = []  # position in the task stream -> position in the walk
    done = 0

    def finish(index: int, result: FileResult) -> None:
        nonlocal done
        results[index] = result
        done += 1
        if on_progress is not None:
            on_progress(Progress(len(found), done, result))

    def tasks() -> Iterator[Task]:
        for item in walk(paths):
            index = len(found)
            found.append(item)
            results.append(None)
            if isinstance(item, Problem):
                problem = FileResult(path=item.path, status=Status.FAILED, error_code=item.code, reason=item.reason)
                finish(index, problem)
                continue
            if cache is not None and not force:
                hit = cache.get(item.device, item.inode, item.size, item.mtime_ns, key, item.path)
                if hit is not None:
                    finish(index, hit)
                    continue
            task_index.append(index)
            yield Task(item.path)

    for position, result in windowed(
        tasks(),
        remote_hash_chunk(),
        args=(options, runner),
        chunk_size=chunk_files,
        window=window or default_window(cpus),
        crashed=died,
    ):
        index = task_index[position]
        item = found[index]
        if cache is not None and isinstance(item, Found) and result.status is Status.HASHED and not result.warning:
            cache.put(item.device, item.inode, item.size, item.mtime_ns, key, result)
        finish(index, result)
    if cache is not None:
        cache.commit()
    return BatchReport(results=[r for r in results if r is not None])


def hash_on_ray(
    address: str,
    paths: list[Path],
    options: HashOptions,
    *,
    cache: HashCache | None = None,
    force: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    chunk_files: int = DEFAULT_CHUNK_FILES,
    window: int | None = None,
) -> BatchReport:
    """Connect to the cluster at `address` (``local``: a private one on this machine), hash, disconnect.

    Raises `cluster.RayUnavailable` when Ray is missing or the cluster cannot be reached.
    """
    with connect(address) as cpus:
        return hash_paths_on_ray(
            paths,
            options,
            cpus=cpus,
            cache=cache,
            force=force,
            chunk_files=chunk_files,
            window=window,
            on_progress=on_progress,
        )
