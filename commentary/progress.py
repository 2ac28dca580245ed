"""Progress of a run for a person, the time each stage took, and the run's summary.

Shard stages report each finished shard; the one-shot stages report once. On a terminal a bar with
pages per second and the time left is redrawn in place; elsewhere (a log file, a pipe) a plain line
goes out at most every ``interval`` seconds, and one when a stage finishes. Lines go to stderr and,
when given, to ``log`` (the Prefect run logger).
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

if TYPE_CHECKING:
    from commentary.ledger import ReleaseOutcome
    from commentary.runfolder import RunFolder

T = TypeVar("T")
BAR_WIDTH = 24


class Progress:
    """Finished shards, pages and busy seconds per stage, for ``pages`` raw files in ``shards`` shards."""

    def __init__(self, shard_stages: tuple[str, ...], shards: int, pages: int, stream: TextIO = sys.stderr, interval: float = 5.0,
                 log: Callable[[str], object] | None = None):
        self.shards, self.pages, self.stream, self.interval, self.log = shards, pages, stream, interval, log
        self.done = dict.fromkeys(shard_stages, 0)
        self.pages_done = dict.fromkeys(shard_stages, 0)
        self.busy = dict.fromkeys(shard_stages, 0.0)
        self.linked_pages = 0
        self.started = time.perf_counter()
        self._last_line = self.started
        self._bar = stream.isatty()
        self._bar_shown = False

    def shard_done(self, stage: str, seconds: float, pages: int) -> None:
        """One shard of ``stage``, of ``pages`` raw files, finished after ``seconds`` of work."""
        self.done[stage] += 1
        self.pages_done[stage] += pages
        self.busy[stage] += seconds
        if self.done[stage] == self.shards:
            self._line(f"{stage} done: {self.shards} shards, {self._rate(stage)}")
        elif self._bar:
            self._draw(self.status())
        elif time.perf_counter() - self._last_line >= self.interval:
            self._line(self.status())

    def shards_linked(self, count: int, pages: int) -> None:
        """``count`` shards of ``pages`` raw files were linked unchanged from the cached run: done for every shard stage, without work."""
        for stage in self.done:
            self.done[stage] += count
        self.linked_pages = pages
        self._line(f"{count} of {self.shards} shards ({pages} pages) unchanged since the cached run: linked")

    def status(self) -> str:
        """Shards done per stage, pages per second through the last shard stage and the time left at that pace."""
        last = list(self.done)[-1]
        elapsed = time.perf_counter() - self.started
        rate = self.pages_done[last] / elapsed if elapsed else 0.0
        left = self.pages - self.linked_pages - self.pages_done[last]
        eta = _clock(left / rate) if rate else "unknown"
        shards = " | ".join(f"{name} {count}/{self.shards}" for name, count in self.done.items())
        return f"{shards} shards | {_number(rate)} pages/s | {eta} left"

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

    def _draw(self, status: str) -> None:
        """Redraw the bar in place (a terminal only): the share of shards through the last shard stage."""
        share = list(self.done.values())[-1] / self.shards if self.shards else 1.0
        filled = round(share * BAR_WIDTH)
        self.stream.write(f"\r\x1b[K[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%} {status}")
        self.stream.flush()
        self._bar_shown = True

    def _line(self, text: str) -> None:
        self._last_line = time.perf_counter()
        if self._bar_shown:
            self.stream.write("\r\x1b[K")
            self._bar_shown = False
        print(f"[{self._last_line - self.started:8.1f}s] {text}", file=self.stream, flush=True)
        if self.log:
            self.log(text)


def _number(rate: float) -> str:
    """``1,234`` or ``2.5``: a decimal only below 10."""
    rounded = round(rate, 1)
    return f"{rounded:,.0f}" if rounded >= 10 else f"{rounded:.1f}"


def _clock(seconds: float) -> str:
    """``1:02:03`` or ``2:03``: a duration for a person."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def summary(entry: dict, curated: Path) -> str:
    """A run's ledger ``entry`` told to a person: what was seen and what became of it, the release, where to look."""
    from commentary.ledger import ReleaseOutcome
    from commentary.runfolder import CuratedFolder

    run = CuratedFolder(curated).run(entry["run_id"])
    outcome = ReleaseOutcome.from_record(entry["release"])
    lines = [f"Run {entry['run_id']}: {_count(entry['seen'], 'raw file')} seen"]
    lines.append(f"  {_count(entry['released'], 'article')}, {_count(entry['duplicates'], 'duplicate')}, "
                 f"{entry['rejected']} rejected{_top(entry['rejected_by_reason'])}, "
                 f"{entry['repaired']} repaired{_top(entry['repaired_by_reason'])}")
    quality = _quality_line(run.quality)
    if quality:
        lines.append(f"  quality: {quality}")
    lines.append(release_line(outcome))
    version = outcome.version
    where = [("release", curated / "releases" / version), ("report", curated / "releases" / version / "report.html")] if version else []
    where += [("rejects", run.merged("rejects"))] if entry["rejected"] else []
    where += [("ledger", run.ledger)]
    lines += [f"  {name:8} {path}" for name, path in where]
    return "\n".join(lines)


def release_line(outcome: ReleaseOutcome) -> str:
    """What became of a run's release, in one sentence."""
    from commentary.ledger import Result

    if outcome.published:
        return f"Published release {outcome.version}."
    if outcome.version and outcome.result is Result.NOTHING_CHANGED:
        return f"No new release: nothing changed since release {outcome.version}, still the latest."
    failed = "; ".join(outcome.failed)
    return f"No release published: {outcome.result}" + (f" ({failed})" if failed else "") + "."


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _top(by_reason: dict[str, int], shown: int = 3) -> str:
    """The most frequent reasons, e.g. `` (corrupt-gzip 2, too-large 1, 1 more)``."""
    if not by_reason:
        return ""
    ranked = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))
    more = f", {len(ranked) - shown} more" if len(ranked) > shown else ""
    return " (" + ", ".join(f"{reason} {count}" for reason, count in ranked[:shown]) + more + ")"


def quality_errors(run: RunFolder) -> list[str]:
    """The expectations of a run that raised instead of giving a result (``quality.json``'s ``errors``)."""
    path = run.quality
    return json.loads(path.read_text()).get("errors", []) if path.is_file() else []


def _quality_line(path: Path) -> str | None:
    """Expectations met, failed and erred, from a run's ``quality.json``; None when the run has none."""
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    outcomes = [(stage, item) for stage, result in report["stages"].items() for item in result["expectations"]]
    erred = [f"{stage}: {item['expectation']}" for stage, item in outcomes if item.get("error")]
    failed = [f"{stage}: {item['expectation']}({item.get('column') or ''})" for stage, item in outcomes
              if not item["success"] and not item.get("error")]
    met = len(outcomes) - len(failed) - len(erred)
    text = f"{met} of {len(outcomes)} expectations met"
    if failed:
        text += "; not met: " + ", ".join(failed)
    if erred:
        text += "; ERRORS (the check itself failed): " + ", ".join(erred)
    return text
