"""Cleaning speed on the benchmark pages: the two figures the project promises.

    POLARS_MAX_THREADS=1 python -m tools.speed [--shared ../shared] [--shard-size 500]

Text path: one shard of ``--shard-size`` distinct pages, flattened (``flat-blocks``, then ``flat-naive``)
from the benchmark and pool pages (``tools.corpus``: the benchmark's stored files, the pool flattened
once into the eval cache) and spread evenly over their datasets, cleaned by ``clean_shard``. No page
repeats, so work done once per distinct line gains only what a shard of different pages gives.
Target: at least 1,000 pages per CPU second on one core (at most 1.0 CPU ms per page).

HTML path: every page of ``benchmark/html`` read and decoded (``ingest.read_raw``), extracted
(``extract_html_shard``: main text and metadata) and cleaned as one shard, as the clean stage does;
against trafilatura doing the same job on its own: ``trafilatura.extract`` (default settings, no
comments, tables kept) with ``with_metadata=True``, from the same page bytes. Target: at most 2 times
trafilatura's CPU time (the HTML path runs four extractors on one parse). Trafilatura's main text alone from already decoded pages (no metadata) is printed beside it.

CPU time (``time.process_time``) is the figure that other jobs on the machine disturb least; each
measure is the best of ``--repeat`` runs. Run with ``POLARS_MAX_THREADS=1`` to measure one core
(the thread count used is printed).
"""
from __future__ import annotations

import argparse
import gzip
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import polars as pl
import trafilatura

from commentary.clean.html import extract_html_shard
from commentary.clean.text import clean_shard
from commentary.ingest import discover, read_raw
from tools.corpus import Cache

T = TypeVar("T")

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"
#: The pipeline's shard size (commentary.settings.SHARD_SIZE) is the unit of work measured.
DEFAULT_SHARD_SIZE = 500
TEXT_PAGES_PER_CPU_SECOND_TARGET = 1000
HTML_COST_LIMIT = 2.0
#: trafilatura as the comparison runs it (the benchmark's way: no comments).
TRAFILATURA_OPTIONS = dict(include_comments=False, include_tables=True, include_images=False, include_links=False,
                           deduplicate=False, with_metadata=False)


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
    """Clean one shard of ``shard_size`` of the distinct ``pages``, spread evenly over them: CPU ms/page,
    pages per CPU second."""
    if len(pages) < shard_size:
        raise SystemExit(f"{len(pages)} pages to measure on, fewer than a shard of {shard_size}")
    shard = [pages[i * len(pages) // shard_size] for i in range(shard_size)]
    cpu, cleaned = best_cpu_seconds(lambda: clean_shard(shard), repeat)
    lines = sum(len(page.lines) for page in cleaned) / shard_size
    return {"pages": shard_size, "lines_per_page": lines, "cpu_ms_per_page": 1000 * cpu / shard_size,
            "pages_per_cpu_second": shard_size / cpu}


def html_path(html_dir: Path, repeat: int) -> dict[str, float]:
    """CPU ms per page of our HTML path, of trafilatura on the same job and on main text alone; ratios."""
    files = [raw for raw in discover(html_dir) if raw.format == "html"]

    def ours() -> None:
        texts = [extraction.text for extraction in extract_html_shard([(read_raw(html_dir, raw)[0]["text"], None) for raw in files])]
        clean_shard(texts, extracted=[True] * len(texts))

    page_bytes = [gzip.decompress(data) if raw.compressed else data
                  for raw, data in ((raw, (html_dir / raw.rel_path).read_bytes()) for raw in files)]
    decoded = [read_raw(html_dir, raw)[0]["text"] for raw in files]
    same_job = {**TRAFILATURA_OPTIONS, "with_metadata": True}

    def theirs_same_job() -> None:
        for page in page_bytes:
            trafilatura.extract(page, **same_job)

    def theirs_text_only() -> None:
        for html in decoded:
            trafilatura.extract(html, **TRAFILATURA_OPTIONS)

    ours_cpu, same_cpu, text_cpu = (best_cpu_seconds(run, repeat)[0] for run in (ours, theirs_same_job, theirs_text_only))
    return {"pages": len(files), "ours_cpu_ms_per_page": 1000 * ours_cpu / len(files),
            "trafilatura_cpu_ms_per_page": 1000 * same_cpu / len(files), "ratio": ours_cpu / same_cpu,
            "trafilatura_text_only_cpu_ms_per_page": 1000 * text_cpu / len(files), "text_only_ratio": ours_cpu / text_cpu}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder with benchmark/")
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure; the best counts")
    args = parser.parse_args(argv)
    benchmark = args.shared / "benchmark"
    corpus = Cache(args.shared)
    print(f"cleaning speed, {pl.thread_pool_size()} Polars thread(s), CPU time, best of {args.repeat}:", flush=True)
    for flattening in ("flat-blocks", "flat-naive"):
        flattened = corpus.flattened(flattening)
        pages = [flattened[page.page_id] for page in corpus.pages]
        r = text_path(pages, args.shard_size, args.repeat)
        print(f"  text path, {flattening}: {r['pages']} pages of {r['lines_per_page']:.0f} lines: "
              f"{r['pages_per_cpu_second']:,.0f} pages per CPU second, {r['cpu_ms_per_page']:.2f} CPU ms/page "
              f"(target: at least {TEXT_PAGES_PER_CPU_SECOND_TARGET:,})", flush=True)
    r = html_path(benchmark / "html", args.repeat)
    print(f"  html path: {r['pages']} pages: read, decode, extract_html_shard and clean {r['ours_cpu_ms_per_page']:.1f} "
          f"CPU ms/page; trafilatura.extract, text and metadata from the page bytes, "
          f"{r['trafilatura_cpu_ms_per_page']:.1f}: {r['ratio']:.2f}x (limit {HTML_COST_LIMIT}x); "
          f"its main text alone from decoded pages {r['trafilatura_text_only_cpu_ms_per_page']:.1f}: "
          f"{r['text_only_ratio']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
