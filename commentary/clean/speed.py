"""Cleaning speed on the benchmark pages: the two figures the project promises.

    POLARS_MAX_THREADS=1 python -m commentary.clean.speed [--shared ../shared] [--shard-size 500]

Text path: one shard of ``--shard-size`` pages cycled from ``benchmark/flat-blocks`` (then
``flat-naive``), cleaned by ``clean_shard``. Target: at least 1,000 pages per CPU second on one
core (at most 1.0 CPU ms per page).

HTML path: every page of ``benchmark/html`` read and decoded (``ingest.read_raw``), extracted
(``extract_html``) and cleaned as one shard, as the clean stage does; against
``trafilatura.extract`` alone, with the same options, on the same decoded pages. Target: at most
1.3 times trafilatura's CPU time.

CPU time (``time.process_time``) is the figure that other jobs on the machine disturb least; each
measure is the best of ``--repeat`` runs. Run with ``POLARS_MAX_THREADS=1`` to measure one core
(the thread count used is printed).
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import polars as pl
import trafilatura

from commentary.clean.html import TRAFILATURA_OPTIONS, extract_html
from commentary.clean.text import clean_shard
from commentary.ingest import discover, read_raw

T = TypeVar("T")

DEFAULT_SHARED = Path(__file__).resolve().parents[3] / "shared"
#: The pipeline's shard size (commentary.settings.SHARD_SIZE) is the unit of work measured.
DEFAULT_SHARD_SIZE = 500
TEXT_PAGES_PER_CPU_SECOND_TARGET = 1000
HTML_COST_LIMIT = 1.3


def best_cpu_seconds(run: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Least CPU time of ``repeat`` calls of ``run`` (after one warm-up call), and its result."""
    result = run()
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        result = run()
        best = min(best, time.process_time() - start)
    return best, result


def text_path(pages: list[str], shard_size: int, repeat: int) -> dict[str, float]:
    """Clean one shard of ``shard_size`` pages cycled from ``pages``: CPU ms/page, pages per CPU second."""
    shard = (pages * (shard_size // len(pages) + 1))[:shard_size]
    cpu, cleaned = best_cpu_seconds(lambda: clean_shard(shard), repeat)
    lines = sum(len(page.lines) for page in cleaned) / shard_size
    return {"pages": shard_size, "lines_per_page": lines, "cpu_ms_per_page": 1000 * cpu / shard_size,
            "pages_per_cpu_second": shard_size / cpu}


def html_path(html_dir: Path, repeat: int) -> dict[str, float]:
    """CPU ms per page of our HTML path and of trafilatura's extraction alone, and their ratio."""
    files = [raw for raw in discover(html_dir) if raw.format == "html"]

    def ours() -> None:
        texts = [extract_html(read_raw(html_dir, raw)[0]["text"]).text for raw in files]
        clean_shard(texts, extracted=[True] * len(texts))

    decoded = [read_raw(html_dir, raw)[0]["text"] for raw in files]

    def theirs() -> None:
        for html in decoded:
            trafilatura.extract(html, **TRAFILATURA_OPTIONS)

    (ours_cpu, _), (theirs_cpu, _) = best_cpu_seconds(ours, repeat), best_cpu_seconds(theirs, repeat)
    return {"pages": len(files), "ours_cpu_ms_per_page": 1000 * ours_cpu / len(files),
            "trafilatura_cpu_ms_per_page": 1000 * theirs_cpu / len(files), "ratio": ours_cpu / theirs_cpu}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m commentary.clean.speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder with benchmark/")
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure; the best counts")
    args = parser.parse_args(argv)
    benchmark = args.shared / "benchmark"
    print(f"cleaning speed, {pl.thread_pool_size()} Polars thread(s), CPU time, best of {args.repeat}:", flush=True)
    for flattening in ("flat-blocks", "flat-naive"):
        pages = [p.read_text(encoding="utf-8") for p in sorted((benchmark / flattening).glob("*.txt"))]
        r = text_path(pages, args.shard_size, args.repeat)
        print(f"  text path, {flattening}: {r['pages']} pages of {r['lines_per_page']:.0f} lines: "
              f"{r['pages_per_cpu_second']:,.0f} pages per CPU second, {r['cpu_ms_per_page']:.2f} CPU ms/page "
              f"(target: at least {TEXT_PAGES_PER_CPU_SECOND_TARGET:,})", flush=True)
    r = html_path(benchmark / "html", args.repeat)
    print(f"  html path: {r['pages']} pages: read, decode, extract_html and clean {r['ours_cpu_ms_per_page']:.1f} "
          f"CPU ms/page; trafilatura.extract alone {r['trafilatura_cpu_ms_per_page']:.1f}: "
          f"{r['ratio']:.2f}x (limit {HTML_COST_LIMIT}x)", flush=True)


if __name__ == "__main__":
    main()
