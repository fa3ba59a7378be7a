"""Walking, batching, the cache, and one bad file never stopping the rest."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from takeback import samples
from takeback.protect.batch import hash_paths
from takeback.protect.cache import HashCache
from takeback.protect.hash_file import HashOptions
from takeback.protect.results import Status
from takeback.protect.walk import Found, Problem, walk


@pytest.fixture
def library(tmp_path: Path, short_video: Path) -> Path:
    """A folder like a real one: photos, a video, junk, and broken things."""
    root = tmp_path / "library"
    (root / "trip").mkdir(parents=True)
    for i, name in enumerate(("astronaut", "chelsea", "coffee")):
        samples.large_photo(name, size=(800, 600), grain=2.0, seed=i).save(root / "trip" / f"{name}.jpg", quality=90)
    samples.large_photo("rocket", size=(600, 800), grain=0).save(root / "rocket.png")
    shutil.copy(short_video, root / "trip" / "clip.mp4")
    (root / "notes.txt").write_text("shopping list")
    (root / "empty.jpg").write_bytes(b"")
    (root / "cut.jpg").write_bytes((root / "trip" / "coffee.jpg").read_bytes()[:2000])
    (root / "renamed.mov").write_text("not really a video")
    os.symlink(root, root / "trip" / "loop")
    os.symlink(root / "missing.jpg", root / "dangling.jpg")
    return root


def _by_name(report_results: list) -> dict[str, object]:
    return {Path(r.path).name: r for r in report_results}


def test_walk_visits_each_file_once_and_reports_loops(library: Path) -> None:
    items = list(walk([library, library / "trip"]))
    found = [Path(i.path).name for i in items if isinstance(i, Found)]
    problems = {Path(i.path).name: i.reason for i in items if isinstance(i, Problem)}
    assert sorted(found) == sorted(
        [
            "astronaut.jpg",
            "chelsea.jpg",
            "coffee.jpg",
            "clip.mp4",
            "rocket.png",
            "notes.txt",
            "empty.jpg",
            "cut.jpg",
            "renamed.mov",
        ]
    )
    assert "loop" in problems["loop"]
    assert problems["dangling.jpg"] == "broken symbolic link"


def test_missing_path_is_a_problem(tmp_path: Path) -> None:
    items = list(walk([tmp_path / "nope"]))
    assert isinstance(items[0], Problem)
    assert items[0].reason == "no such file or folder"


@pytest.mark.parametrize("workers", [0, 2])
def test_bad_files_are_reported_and_the_rest_hashed(library: Path, workers: int) -> None:
    report = hash_paths([library], HashOptions(), workers=workers)
    results = _by_name(report.results)
    for name in ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.png"):
        r = results[name]
        assert r.status is Status.HASHED and r.kind == "image", name
        assert len(r.pdq) == 64 and r.quality > 50 and len(r.md5) == 32 and len(r.sha256) == 64
    clip = results["clip.mp4"]
    # One frame a second by default (8 s clip); `dense` (every quarter second) is asked for, not a default.
    assert clip.status is Status.HASHED and clip.kind == "video" and len(clip.frames) == 8
    assert results["notes.txt"].status is Status.SKIPPED
    expected_failures = {
        "empty.jpg": "empty-file",
        "cut.jpg": "corrupt",
        "renamed.mov": "not-media",
        "loop": "unreadable",
        "dangling.jpg": "unreadable",
    }
    for name, code in expected_failures.items():
        assert results[name].status is Status.FAILED, name
        assert results[name].error_code == code, name
        assert results[name].reason and "\n" not in results[name].reason
    assert report.count(Status.FAILED) == len(expected_failures)


def test_pool_and_in_process_agree(library: Path) -> None:
    solo = {Path(r.path).name: (r.pdq, r.md5) for r in hash_paths([library], HashOptions(), workers=0).results}
    pool = {Path(r.path).name: (r.pdq, r.md5) for r in hash_paths([library], HashOptions(), workers=2).results}
    assert solo == pool


def test_long_video_split_across_workers_matches_single_pass(media_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from takeback.protect import batch

    monkeypatch.setattr(batch, "SEGMENT_SECONDS", 2.0)  # the 8 s clip counts as "long"
    clip = media_dir / "short.mp4"
    tasks = batch._video_segments(str(clip), 2, 1.0)
    # Two segments of frames, then the digests as a task of their own (the first worker free takes them).
    assert len(tasks) == 3 and tasks[0].end == tasks[1].start and tasks[1].end is None
    assert [(t.signals, t.digests) for t in tasks] == [(True, False), (True, False), (False, True)]
    whole = hash_paths([clip], HashOptions(), workers=0).results[0]
    monkeypatch.setattr(batch, "_video_segments", lambda path, workers, interval: tasks)
    split = hash_paths([clip], HashOptions(), workers=2).results[0]
    assert [f.frame_number for f in split.frames] == [f.frame_number for f in whole.frames]
    assert [f.pdq for f in split.frames] == [f.pdq for f in whole.frames]
    assert (split.md5, split.sha256, split.size) == (whole.md5, whole.sha256, whole.size)
    assert split.md5 is not None and (split.duration, split.fps, split.kind) == (whole.duration, whole.fps, whole.kind)


def test_a_split_videos_digest_task_reads_no_frames(media_dir: Path) -> None:
    from takeback.protect.hash_file import Task, run_task

    sums = run_task(Task(str(media_dir / "short.mp4"), signals=False), HashOptions())
    assert sums.status is Status.HASHED and sums.kind == "video"
    assert sums.md5 is not None and sums.sha256 is not None and sums.size > 0
    assert sums.frames == [] and sums.duration is None


def test_a_split_video_whose_digests_fail_fails(
    media_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from takeback.protect import batch
    from takeback.protect.hash_file import Task

    monkeypatch.setattr(batch, "SEGMENT_SECONDS", 2.0)
    clip = media_dir / "short.mp4"
    gone = tmp_path / "gone.mp4"
    tasks = [*batch._video_segments(str(clip), 2, 1.0)[:2], Task(str(gone), signals=False)]
    monkeypatch.setattr(batch, "_video_segments", lambda path, workers, interval: tasks)
    result = hash_paths([clip], HashOptions(), workers=0).results[0]
    assert result.status is Status.FAILED and result.error_code == "unreadable"


def test_cache_skips_unchanged_files_until_forced(library: Path, tmp_path: Path) -> None:
    cache = HashCache(tmp_path / "c.sqlite3")
    first = hash_paths([library], HashOptions(), workers=0, cache=cache)
    assert first.count(Status.CACHED) == 0
    second = hash_paths([library], HashOptions(), workers=0, cache=cache)
    hashed_before = {r.path: r.pdq for r in first.results if r.status is Status.HASHED}
    cached_now = {r.path: r.pdq for r in second.results if r.status is Status.CACHED}
    assert cached_now == hashed_before  # same hashes, straight from the cache
    # A changed file is hashed again; others still come from the cache.
    changed = library / "rocket.png"
    samples.large_photo("moon", size=(600, 800), grain=0).save(changed)
    third = _by_name(hash_paths([library], HashOptions(), workers=0, cache=cache).results)
    assert third["rocket.png"].status is Status.HASHED
    assert third["chelsea.jpg"].status is Status.CACHED
    forced = hash_paths([library], HashOptions(), workers=0, cache=cache, force=True)
    assert forced.count(Status.CACHED) == 0
    # Different options are a different cache entry.
    exact = hash_paths([library], HashOptions(exact=True), workers=0, cache=cache)
    assert exact.count(Status.CACHED) == 0
    cache.close()


def test_cache_holds_no_file_names(library: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cache = HashCache(path)
    hash_paths([library], HashOptions(), workers=0, cache=cache)
    cache.close()
    raw = path.read_bytes() + (
        path.with_suffix(".sqlite3-wal").read_bytes() if path.with_suffix(".sqlite3-wal").exists() else b""
    )
    assert b"astronaut" not in raw and str(library).encode() not in raw


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(library: Path) -> None:
    locked = library / "trip" / "coffee.jpg"
    locked.chmod(0)
    try:
        results = _by_name(hash_paths([library], HashOptions(), workers=0).results)
    finally:
        locked.chmod(0o644)
    assert results["coffee.jpg"].error_code == "unreadable"
    assert results["coffee.jpg"].reason == "permission denied"


def test_read_errors_become_reasons(library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Permission and I/O errors (simulated: tests may run as root) are one-line reasons."""
    import errno

    from takeback.protect import hash_file

    real = hash_file.classify

    def flaky(path: Path):  # type: ignore[no-untyped-def]
        if path.name == "chelsea.jpg":
            raise PermissionError(errno.EACCES, "Permission denied")
        if path.name == "coffee.jpg":
            raise OSError(errno.EIO, "Input/output error")
        return real(path)

    monkeypatch.setattr(hash_file, "classify", flaky)
    results = _by_name(hash_paths([library], HashOptions(), workers=0).results)
    assert (results["chelsea.jpg"].error_code, results["chelsea.jpg"].reason) == ("unreadable", "permission denied")
    assert results["coffee.jpg"].reason == "could not read the file (Input/output error)"
    assert results["astronaut.jpg"].status is Status.HASHED


def crashing_runner(task, options):  # type: ignore[no-untyped-def]
    """A worker that dies outright on one file, as a decoder segfault would."""
    from takeback.protect.hash_file import run_task

    if Path(task.path).name == "chelsea.jpg":
        os._exit(139)
    return run_task(task, options)


def test_worker_crash_is_contained(library: Path) -> None:
    report = hash_paths([library], HashOptions(), workers=2, runner=crashing_runner)
    results = _by_name(report.results)
    assert results["chelsea.jpg"].status is Status.FAILED
    assert results["chelsea.jpg"].error_code == "crashed"
    for name in ("astronaut.jpg", "coffee.jpg", "rocket.png", "clip.mp4"):
        assert results[name].status is Status.HASHED, name


def counting_runner(task, options):  # type: ignore[no-untyped-def]
    """Hashes, and records which process did it (so the test can see groups); dies on p17.jpg if told to."""
    from takeback.protect.hash_file import run_task

    if Path(task.path).name == "p17.jpg" and os.environ.get("TAKEBACK_TEST_CRASH_ON_P17"):
        os._exit(139)
    result = run_task(task, options)
    result.warning = str(os.getpid())
    return result


@pytest.fixture
def many(tmp_path: Path) -> Path:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(48):
        samples.large_photo("coffee", size=(96, 64), grain=2.0, seed=i).save(folder / f"p{i:02d}.jpg", quality=80)
    return folder


def test_small_files_go_to_a_worker_in_groups(many: Path) -> None:
    results = _by_name(hash_paths([many], HashOptions(modes=""), workers=2, runner=counting_runner).results)
    assert all(r.status is Status.HASHED for r in results.values())
    # The first group (6 files: 48 // (2 workers * 4)) ran in one process.
    assert len({results[f"p{i:02d}.jpg"].warning for i in range(6)}) == 1


def test_a_crash_in_a_group_costs_only_its_file(many: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAKEBACK_TEST_CRASH_ON_P17", "1")  # the spawned workers inherit it
    report = hash_paths([many], HashOptions(modes=""), workers=2, runner=counting_runner)
    results = _by_name(report.results)
    assert [Path(r.path).name for r in report.results] == [f"p{i:02d}.jpg" for i in range(48)]  # walk order
    assert results["p17.jpg"].error_code == "crashed"
    assert all(r.status is Status.HASHED for name, r in results.items() if name != "p17.jpg")


def test_a_group_never_holds_a_video_segment_or_a_big_file(tmp_path: Path) -> None:
    from takeback.protect import batch
    from takeback.protect.hash_file import Task

    small = tmp_path / "small.jpg"
    small.write_bytes(b"x" * 100)
    big = tmp_path / "big.jpg"
    with big.open("wb") as fh:
        fh.truncate(batch.GROUP_MAX_BYTES + 1)
    tasks = [Task(str(small))] * 3 + [Task(str(big))] + [Task(str(small))] * 2 + [Task(str(small), start=60.0)]
    queue = [(i, 0, t) for i, t in enumerate(tasks)] + [(100 + i, 0, Task(str(small))) for i in range(80)]
    sizes = {index: Path(task.path).stat().st_size for index, _, task in queue}
    queue.reverse()
    groups = []
    while queue:
        groups.append([index for index, _, _ in batch._take_group(queue, workers=2, sizes=sizes)])
    flat = [i for g in groups for i in g]
    assert flat == list(range(7)) + list(range(100, 180))  # every task once, in order
    assert [3] in groups and [6] in groups  # the big file and the segment went alone
    assert max(len(g) for g in groups) == batch.GROUP_FILES
    assert len(groups[-1]) == 1  # groups shrink as the queue empties


#: Changed by tests in the parent only: a forked worker sees the change, a spawned one imports this module afresh.
PARENT_MARK = "as imported"


def marking_runner(task, options):  # type: ignore[no-untyped-def]
    """Hashes, and reports what the worker saw: the parent's mark (forked or spawned) and its BLAS threads."""
    from threadpoolctl import threadpool_info

    from takeback.protect.hash_file import run_task

    result = run_task(task, options)
    blas = sorted({info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"})
    result.warning = f"{PARENT_MARK};{blas}"
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_workers_are_forked_with_one_blas_thread_each(many: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from takeback.protect import batch

    monkeypatch.setattr(sys.modules[__name__], "PARENT_MARK", "set by the parent")
    assert batch.start_method() == "fork"
    report = hash_paths([many], HashOptions(modes=""), workers=2, runner=marking_runner)
    assert {r.warning for r in report.results} == {"set by the parent;[1]"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_workers_without_threadpoolctl_still_hash(many: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An install from before threadpoolctl was a dependency: the forked workers cannot import it (None in
    sys.modules makes the import fail), which must cost speed only, not every file."""
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    report = hash_paths([many], HashOptions(modes=""), workers=2)
    assert all(r.status is Status.HASHED for r in report.results)


def test_workers_are_spawned_while_another_thread_runs(many: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from takeback.protect import batch

    monkeypatch.setattr(sys.modules[__name__], "PARENT_MARK", "set by the parent")
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert batch.start_method() == "spawn"
        report = hash_paths([many], HashOptions(modes=""), workers=2, runner=marking_runner)
    finally:
        release.set()
        other.join()
    assert {r.warning for r in report.results} == {"as imported;[1]"}
    assert all(r.status is Status.HASHED for r in report.results)


def waiting_runner(task, options):  # type: ignore[no-untyped-def]
    """Finishes only once the parent has been told that time passed with nothing done (it creates the flag)."""
    from takeback.protect.hash_file import run_task

    flag = Path(task.path).with_name("ticked")
    for _ in range(3000):
        if flag.exists():
            return run_task(task, options)
        time.sleep(0.01)
    raise AssertionError("the parent never ticked")


def test_progress_ticks_while_nothing_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from takeback.protect import batch

    monkeypatch.setattr(batch, "TICK_SECONDS", 0.05)
    samples.large_photo("coffee", size=(96, 64), grain=2.0).save(tmp_path / "one.jpg", quality=80)
    heard: list[tuple[int, int, bool]] = []

    def on_progress(p: batch.Progress) -> None:
        heard.append((p.total, p.done, p.last is None))
        if p.last is None:
            (tmp_path / "ticked").touch()

    report = hash_paths(
        [tmp_path / "one.jpg"], HashOptions(modes=""), workers=1, runner=waiting_runner, on_progress=on_progress
    )
    assert report.results[0].status is Status.HASHED
    assert heard[0] == (1, 0, True)  # a tick, before the file was done
    assert heard[-1] == (1, 1, False)
