"""A deterministic corpus of real-sized pages built from the shared benchmark and pool pages.

The real pages (``<shared>/benchmark/html`` and ``<shared>/pool/html``) are flattened to text once
with ``<shared>/tools/flatten.py`` (mode ``blocks``: about 180 lines a page, most of them furniture).
Page ``i`` depends only on ``i`` and those pages: it takes the lines of one real page, drawn by ``i``,
and replaces each body paragraph (a line of 120 characters or more) by one drawn from all pages'
paragraphs, so pages keep their real size, line structure and site furniture without being copies of
each other. Lines that the release's quality gate counts as known furniture in a body
(``schemas.expectations.KNOWN_FURNITURE``) are left out: the benchmark measures speed, and one such
line the cleaner keeps would hold the release back and leave publishing unmeasured. Every ``html_every``-th page is HTML (0: none): a real page with the text of its long
``<p>`` elements replaced the same way. Files go to ``<root>/<i // 1000:04d>/page-<i:07d>.<ext>``;
``generate_warc`` writes HTML pages as the response records of WARC files instead.

    python -m tools.realpages OUT --pages 10000 [--start N] [--html-every 10] [--shared ../shared] [--work .cache/bench]
"""
from __future__ import annotations

import argparse
import gzip
import html
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import polars as pl

from schemas.measures import body_measures

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("benchmark/html", "pool/html")
_PARAGRAPH = 120
_HTML_PARAGRAPH = re.compile(r"(<p\b[^>]*>)([^<]{120,})(</p>)")


@dataclass(frozen=True)
class Pages:
    """The real pages, flattened and as HTML, and the pool of their body paragraphs."""

    texts: tuple[tuple[str, ...], ...]
    htmls: tuple[str, ...]
    paragraphs: tuple[str, ...]


@cache
def real_pages(shared: Path, work: Path) -> Pages:
    """Flatten the shared pages into ``<work>/flat/`` (once) and load them, in name order."""
    flat = work / "flat"
    done = flat.with_name("flat.complete")
    if not done.is_file():
        for source in SOURCES:
            subprocess.run([sys.executable, str(shared / "tools" / "flatten.py"), str(flat), "--mode", "blocks",
                            "--html-dir", str(shared / source)], check=True, capture_output=True)
        done.write_text("")
    names = sorted(path.name.split(".")[0] for source in SOURCES for path in (shared / source).glob("*.html.gz"))
    htmls = {path.name.split(".")[0]: path for source in SOURCES for path in (shared / source).glob("*.html.gz")}
    lines = {name: (flat / f"{name}.txt").read_text(encoding="utf-8").split("\n") for name in names}
    distinct = sorted({line for page_lines in lines.values() for line in page_lines})
    measured = body_measures(pl.DataFrame({"doc_id": [str(i) for i in range(len(distinct))], "title": None, "word_count": 0,
                                           "published_date": None, "format": "text", "body": distinct}))
    known = {distinct[int(i)] for i in measured.filter(pl.col("known_furniture").is_not_null())["doc_id"]}
    texts = tuple(tuple(line for line in lines[name] if line not in known) for name in names)
    paragraphs = tuple(line for lines in texts for line in lines if len(line) >= _PARAGRAPH)
    return Pages(texts, tuple(gzip.decompress(htmls[name].read_bytes()).decode("utf-8", "replace") for name in names), paragraphs)


def page(pages: Pages, i: int, html_page: bool = False) -> str:
    """The text (or HTML) of corpus page ``i``."""
    rng = random.Random(i)
    source = rng.randrange(len(pages.texts))
    pool = pages.paragraphs
    if html_page:
        return _HTML_PARAGRAPH.sub(lambda m: m[1] + html.escape(pool[rng.randrange(len(pool))]) + m[3], pages.htmls[source])
    return "\n".join(pool[rng.randrange(len(pool))] if len(line) >= _PARAGRAPH else line for line in pages.texts[source])


def generate(root: Path, pages: int, shared: Path, work: Path, start: int = 0, html_every: int = 0) -> list[Path]:
    """Write pages ``start`` .. ``start + pages - 1`` under ``root``; returns their paths."""
    real = real_pages(shared.resolve(), work.resolve())
    written = []
    for i in range(start, start + pages):
        html_page = bool(html_every) and i % html_every == html_every - 1
        path = root / f"{i // 1000:04d}" / f"page-{i:07d}.{'html' if html_page else 'txt'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page(real, i, html_page), encoding="utf-8")
        written.append(path)
    return written


def generate_warc(root: Path, pages: int, shared: Path, work: Path, files: int = 4) -> list[Path]:
    """Write HTML pages 0 .. ``pages - 1`` as ``files`` WARC files ``<root>/crawl-<k>.warc.gz``, each page a
    request and a response record (gzip per record, fixed ids and dates); returns the files."""
    import io

    from fastwarc.warc import WarcRecord, WarcRecordType

    def record(kind, number: int, uri: str, block: bytes) -> bytes:
        out = WarcRecord()
        out.init_headers(record_type=kind, record_urn=f"uuid:00000000-0000-0000-0000-{number:012d}".encode())
        out.headers["WARC-Date"] = "2026-11-02T10:00:00Z"
        out.headers["WARC-Target-URI"] = uri
        out.headers["Content-Type"] = f"application/http; msgtype={'response' if kind == WarcRecordType.response else 'request'}"
        out.set_bytes_content(block)
        buffer = io.BytesIO()
        out.write(buffer)
        return gzip.compress(buffer.getvalue(), mtime=0)

    real = real_pages(shared.resolve(), work.resolve())
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / f"crawl-{k}.warc.gz" for k in range(files)]
    for k, path in enumerate(paths):
        with path.open("wb") as out:
            for i in range(k, pages, files):
                uri = f"https://example.org/{i // 1000:04d}/page-{i:07d}.html"
                body = page(real, i, html_page=True).encode("utf-8")
                out.write(record(WarcRecordType.request, 2 * i, uri, f"GET /{i} HTTP/1.1\r\nHost: example.org\r\n\r\n".encode()))
                out.write(record(WarcRecordType.response, 2 * i + 1, uri, b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body))
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.realpages", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--html-every", type=int, default=0)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "bench")
    args = parser.parse_args(argv)
    generate(args.out, args.pages, args.shared, args.work, args.start, args.html_every)


if __name__ == "__main__":
    main()
