"""One run at a time per curated folder, what a killed run left behind, old run folders, and a full disk."""
from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from commentary import cache, tables
from commentary.release import publish
from commentary.runfolder import CuratedFolder
from commentary.settings import KEEP_RUNS


class RunLocked(RuntimeError):
    """Another run holds the curated folder."""


@contextmanager
def run_lock(curated_root: Path) -> Iterator[list[str]]:
    """Hold ``<curated>/.run.lock`` for one run, then repair what a killed run left behind.

    A second run on the same folder fails at once with RunLocked. The lock is an ``flock`` on an
    open file, so the kernel releases it when the holder dies, even by SIGKILL. Yields what an
    interrupted run left and was removed (``publish.clean_unfinished``); run folders beyond KEEP_RUNS are
    removed (``prune_runs``). "No space left on device" anywhere in the run becomes DiskFull with a
    message that says whether anything was published; when nothing was, the run's folder is removed.
    """
    curated = CuratedFolder(curated_root)
    curated_root.mkdir(parents=True, exist_ok=True)
    handle = curated.lock.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise _locked(curated_root, handle.read()) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}\n")
        handle.flush()
        removed = publish.clean_unfinished(curated_root)
        prune_runs(curated_root)
        latest = curated.latest_version()
        runs_before = set(curated.run_folders())
        try:
            yield removed
        except (OSError, tables.DiskFull) as error:
            if isinstance(error, OSError) and error.errno not in tables.NO_SPACE:
                raise
            cause = str(error) if isinstance(error, tables.DiskFull) else f"no space left on the device under {curated_root}"
            now = curated.latest_version()
            if now == latest:  # the failed run's folder goes: it would only hold the space the next run needs
                for run in set(curated.run_folders()) - runs_before:
                    shutil.rmtree(run.path, ignore_errors=True)
            outcome = f"nothing was published, LATEST is still {latest}; the run's folder was removed" if now == latest else \
                f"release {now} was published, but the run's records are incomplete"
            raise tables.DiskFull(f"{cause}; {outcome}") from error
    finally:
        handle.close()


def check_unlocked(curated_root: Path) -> None:
    """Raise RunLocked when another run holds ``curated_root``; creates nothing (a run takes the lock with ``run_lock``)."""
    path = CuratedFolder(curated_root).lock
    if not path.is_file():
        return
    with path.open() as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _locked(curated_root, handle.read()) from None


def _locked(curated_root: Path, holder: str) -> RunLocked:
    return RunLocked(f"another run is using {curated_root} ({holder.strip() or 'unknown process'}); start this one when it has finished")


def prune_runs(curated_root: Path, keep: int | None = None) -> list[str]:
    """Remove all but the newest ``keep`` (KEEP_RUNS) run folders; returns the run ids removed.

    The cached run (whose shards later runs reuse) and the run that made the ``LATEST`` release
    are always kept. Shards shared by hard links stay with the runs that still hold them.
    """
    curated = CuratedFolder(curated_root)
    spared = {cache.load_index_run(curated_root), curated.latest_run_id()}
    folders = curated.run_folders()
    keep = KEEP_RUNS if keep is None else keep
    removed = [run.run_id for run in folders[:max(0, len(folders) - keep)] if run.run_id not in spared]
    for run_id in removed:
        shutil.rmtree(curated.run(run_id).path, ignore_errors=True)
    return removed
