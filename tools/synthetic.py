"""A deterministic synthetic corpus built from the sample pages, for benchmarks and scale tests.

Page ``i`` depends only on ``i`` and the sample pages: its paragraphs are drawn from the samples'
paragraphs, its title from their sentences, and (unless ``furniture=False``) it carries navigation,
byline, sharing, related-links and comment furniture in varied combinations. Every
``html_every``-th page is HTML (0: none). Files go to ``<root>/<i // 1000:04d>/page-<i:07d>.<ext>``.

    python -m tools.synthetic OUT --pages 10000 [--start N] [--html-every 10] [--no-furniture]
"""
from __future__ import annotations

import argparse
import html
import random
import re
from functools import cache
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "raw"
_PARAGRAPH = re.compile(r"^.{120,}[.?!”\"’]$")
NAV = ("Home", "Politics", "World", "Opinion", "Commentary", "Asia", "Economy", "Security")
AUTHORS = ("Ann Carter", "Bruce Kim", "Daniel Ortiz", "Mei Tanaka", "Olu Adeyemi", "Sara Lind", "Tom Becker")
HEAD_FURNITURE = ("top of page", "Skip to content", "Menu", "Subscribe", "Sign in")
TAIL_FURNITURE = (
    "leave a comment", "Leave a Reply", "Your email address will not be published. Required fields are marked *",
    "Latest Articles", "Source link", "Back to top button", "bottom of page", "Share this article",
    "Most Popular", "Load more", "See All", "Related Posts",
)


@cache
def sample_paragraphs() -> tuple[str, ...]:
    """Long, sentence-ending lines of the sample pages: the paragraph pool."""
    lines = (line.strip() for path in sorted(SAMPLES.glob("*.txt")) for line in path.read_text(encoding="utf-8").split("\n"))
    return tuple(line for line in lines if _PARAGRAPH.match(line))


def page(i: int, furniture: bool = True, html_page: bool = False) -> str:
    """The text of synthetic page ``i``."""
    rng = random.Random(i)
    pool = sample_paragraphs()
    paragraphs = [pool[rng.randrange(len(pool))] for _ in range(rng.choice((2, 4, 6, 9, 14, 20)))]
    words = rng.choice(pool).split()
    start = rng.randrange(max(1, len(words) - 10))
    title = " ".join(words[start:start + rng.randint(4, 10)]).strip(".,;:“”\"'").capitalize() + f" ({i})"
    author = rng.choice(AUTHORS)
    head, tail = [], []
    if furniture:
        head = rng.sample(HEAD_FURNITURE, rng.randint(0, 2)) + [f"Home/{rng.choice(NAV)}/{title}"]
        tail = rng.sample(TAIL_FURNITURE, rng.randint(1, 4))
    if html_page:
        return _html(title, author, paragraphs, head, tail)
    byline = [f"By {author}"] if furniture else []
    return "\n\n".join([*head, title, *byline, *paragraphs, *tail]) + "\n"


def _html(title: str, author: str, paragraphs: list[str], head: list[str], tail: list[str]) -> str:
    esc = html.escape
    nav = "".join(f"<li><a href='/'>{esc(item)}</a></li>" for item in head)
    body = "".join(f"<p>{esc(p)}</p>\n" for p in paragraphs)
    footer = "".join(f"<div class='widget'>{esc(item)}</div>" for item in tail)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<meta name='author' content='{esc(author)}'></head>\n<body><nav><ul>{nav}</ul></nav>\n"
            f"<article><h1>{esc(title)}</h1><p class='byline'>By {esc(author)}</p>\n{body}</article>\n"
            f"<footer>{footer}</footer></body></html>\n")


def generate(root: Path, pages: int, start: int = 0, html_every: int = 0, furniture: bool = True) -> list[Path]:
    """Write pages ``start`` .. ``start + pages - 1`` under ``root``; returns their paths."""
    written = []
    for i in range(start, start + pages):
        html_page = bool(html_every) and i % html_every == html_every - 1
        path = root / f"{i // 1000:04d}" / f"page-{i:07d}.{'html' if html_page else 'txt'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page(i, furniture, html_page), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--html-every", type=int, default=0)
    parser.add_argument("--no-furniture", dest="furniture", action="store_false")
    args = parser.parse_args(argv)
    generate(args.out, args.pages, args.start, args.html_every, args.furniture)


if __name__ == "__main__":
    main()
