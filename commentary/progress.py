"""Progress of a run in the terminal, and the time each stage took.

Shard stages report each finished shard; the one-shot stages report once. Lines go to stderr,
at most one every ``interval`` seconds while shards run, and one when a stage finishes.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """Finished shards and busy seconds per stage, for ``pages`` raw files."""

    def __init__(self, shard_stages: tuple[str, ...], shards: int, pages: int, stream: TextIO = sys.stderr, interval: float = 5.0):
        self.shards, self.pages, self.stream, self.interval = shards, pages, stream, interval
        self.done = dict.fromkeys(shard_stages, 0)
        self.busy = dict.fromkeys(shard_stages, 0.0)
        self.started = time.perf_counter()
        self._last_line = self.started

    def shard_done(self, stage: str, seconds: float) -> None:
        """One shard of ``stage`` finished after ``seconds`` of work."""
        self.done[stage] += 1
        self.busy[stage] += seconds
        now = time.perf_counter()
        if self.done[stage] == self.shards:
            self._line(f"{stage} done: {self.shards} shards, {self._rate(stage)}")
        elif now - self._last_line >= self.interval:
            self._line(" | ".join(f"{name} {count}/{self.shards} shards" for name, count in self.done.items()))

    def shards_linked(self, count: int) -> None:
        """``count`` shards were linked unchanged from the cached run: done for every shard stage, without work."""
        for stage in self.done:
            self.done[stage] += count
        self._line(f"{count} of {self.shards} shards unchanged since the cached run: linked")

    def stage_done(self, stage: str, seconds: float) -> None:
        """A one-shot stage finished after ``seconds``."""
        self.busy[stage] = seconds
        self._line(f"{stage} done: {self._rate(stage)}")

    def timed(self, stage: str, step: Callable[..., T], *args) -> T:
        """Run a one-shot stage and report it."""
        started = time.perf_counter()
        result = step(*args)
        self.stage_done(stage, time.perf_counter() - started)
        return result

    def note(self, text: str) -> None:
        self._line(text)

    def timings(self) -> dict:
        """Busy seconds and pages per busy second of each stage, and the wall time so far."""
        stages = {name: {"busy_seconds": round(seconds, 3), "pages_per_second": round(self.pages / seconds, 1) if seconds else None}
                  for name, seconds in self.busy.items()}
        return {"stages": stages, "wall_seconds": round(time.perf_counter() - self.started, 3)}

    def _rate(self, stage: str) -> str:
        seconds = self.busy[stage]
        return f"{self.pages} pages in {seconds:.1f} s busy ({self.pages / seconds:,.0f} pages/s)" if seconds else f"{self.pages} pages"

    def _line(self, text: str) -> None:
        self._last_line = time.perf_counter()
        print(f"[{self._last_line - self.started:8.1f}s] {text}", file=self.stream, flush=True)
