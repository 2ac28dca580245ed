"""Text-path cleaning speed on the benchmark's flattened pages (one process).

    POLARS_MAX_THREADS=1 uv run python -m commentary.clean.speed [FLAT_DIR] [--shard-size N]

Prints pages per second of wall time and CPU milliseconds per page (the honest figure on a
shared machine), for one shard of ``--shard-size`` pages cycled from ``FLAT_DIR``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from commentary.clean.text import clean_shard

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "shared" / "benchmark" / "flat-blocks"
#: The pipeline's shard size (commentary.settings.SHARD_SIZE) is the unit of work measured.
DEFAULT_SHARD_SIZE = 500


def measure(pages: list[str], shard_size: int) -> dict[str, float]:
    """Clean one shard of ``shard_size`` pages; wall pages/s, CPU ms/page and lines/page."""
    shard = (pages * (shard_size // len(pages) + 1))[:shard_size]
    clean_shard(shard[:10])  # warm-up: rule and model loading
    wall, cpu = time.perf_counter(), time.process_time()
    cleaned = clean_shard(shard)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"pages_per_s": len(shard) / wall, "cpu_ms_per_page": 1000 * cpu / len(shard),
            "lines_per_page": sum(len(c.lines) for c in cleaned) / len(shard)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("flat_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE)
    args = parser.parse_args()
    pages = [p.read_text(encoding="utf-8") for p in sorted(args.flat_dir.glob("*.txt"))]
    result = measure(pages, args.shard_size)
    print(f"{args.shard_size} pages, {result['lines_per_page']:.0f} lines/page: "
          f"{result['pages_per_s']:.0f} pages/s, {result['cpu_ms_per_page']:.2f} CPU ms/page")


if __name__ == "__main__":
    main()
