"""Measure text-path cleaning speed (pages per second, one process) on the benchmark pages.

    uv run python scripts/bench_clean_speed.py [FLAT_DIR] [--shard-size N]
"""
import argparse
import time
from pathlib import Path

from commentary.clean.text import clean_shard

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmark" / "flat-blocks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("flat_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--shard-size", type=int, default=1000)
    args = parser.parse_args()
    pages = [p.read_text(encoding="utf-8") for p in sorted(args.flat_dir.glob("*.txt"))]
    shard = (pages * (args.shard_size // len(pages) + 1))[:args.shard_size]
    clean_shard(shard[:10])  # warm-up: rule loading, model loading
    start = time.perf_counter()
    cleaned = clean_shard(shard)
    seconds = time.perf_counter() - start
    lines = sum(len(c.lines) for c in cleaned)
    print(f"{len(shard)} pages, {lines / len(shard):.0f} lines/page: {len(shard) / seconds:.0f} pages/s")


if __name__ == "__main__":
    main()
