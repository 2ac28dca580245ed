"""The evaluation corpus: ``../shared/benchmark`` (65 pages) and ``../shared/pool`` (1,131 pages).

Reads each page's gold text, its dataset, licence and site, flattens the pool's HTML the way the
benchmark's text variants were made (``../shared/tools/flatten.py``), and runs the single
extractors once. Flattened pages and extractor outputs are cached under ``.cache/eval/<fingerprint>/``
(git-ignored), keyed by a fingerprint of the data read, so repeated runs only score and train.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import inspect
import json
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CACHE = ROOT / ".cache" / "eval"
FLATTENINGS = ("flat-blocks", "flat-naive")
#: Licence of each dataset's pages (``../shared/pool/README.md``, ``../shared/benchmark/LICENSE``).
LICENCES = {"benchmark": "MIT", "readability": "Apache-2.0", "cleanportal": "see its repository",
            "dragnet": "AGPL-3.0"}
#: Datasets whose licence lets a model trained on them ship under any terms.
PERMISSIVE = ("benchmark", "readability")
DATASETS = ("benchmark", "dragnet", "cleanportal", "readability")
#: What ``Cache.extracted`` holds per page: the whole page as text, then each single extractor's output
#: (the extractors as they run on their own; ``Cache.path_inputs`` holds them as the HTML path runs them).
EXTRACTED = ("page-text", "trafilatura", "trafilatura-precision", "readability", "resiliparse")


class MissingData(SystemExit):
    """``../shared`` (or one of its folders) is not there: one line naming it, exit status 2."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"missing folder: {path} (the benchmark and pool data live in ../shared)")
        self.code = 2


@dataclass(frozen=True)
class Page:
    """One page: id, dataset, site (the fold group), gold body, gold-cut comments, HTML file."""

    page_id: str
    dataset: str
    site: str
    truth: str
    comments: str
    html_path: Path


_TAG = re.compile(r"<(link|meta|a)\s([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")


def _host(url: str | None) -> str:
    try:
        host = urlparse((url or "").strip()).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def page_host(html: str) -> str:
    """The host a page names as its own: its canonical link (``rel`` holding the word "canonical") or
    ``og:url`` (as ``property`` or ``name``), else the host its absolute or protocol-relative
    ``<a href>`` links point to most (ties by name), else ``""``."""
    own, linked = "", Counter()
    for tag, attributes in _TAG.findall(html):
        values = {name.lower(): a or b or c for name, a, b, c in _ATTRIBUTE.findall(attributes)}
        tag = tag.lower()
        if not own and ((tag == "link" and "canonical" in values.get("rel", "").lower().split())
                        or (tag == "meta" and "og:url" in (values.get("property", "").lower(),
                                                           values.get("name", "").lower()))):
            own = _host(values.get("href") or values.get("content"))
        elif tag == "a" and values.get("href", "").lower().startswith(("http://", "https://", "//")):
            if host := _host(values["href"]):
                linked[host] += 1
    return own or min(linked, key=lambda host: (-linked[host], host), default="")


def _site(url: str | None, page_id: str, html_path: Path) -> str:
    """A page's fold group: the host of its recorded URL; for pages without one (Dragnet's and
    Readability's), the host the page names as its own (``page_host``); else the page's id."""
    return _host(url) or page_host(_html_file(html_path)) or page_id


def load_corpus(shared: Path = SHARED) -> list[Page]:
    """Every page of the benchmark and the pool, sorted by dataset then id."""
    for folder in (shared, shared / "benchmark", shared / "pool", shared / "tools"):
        if not folder.is_dir():
            raise MissingData(folder)
    pages = []
    truth = json.loads((shared / "benchmark" / "ground-truth.json").read_text(encoding="utf-8"))
    for page_id, item in truth.items():
        html_path = shared / "benchmark" / "html" / f"{page_id}.html.gz"
        pages.append(Page(page_id, "benchmark", _site(item.get("url"), page_id, html_path),
                          item.get("articleBody") or "", "", html_path))
    truth = json.loads((shared / "pool" / "ground-truth.json").read_text(encoding="utf-8"))
    for page_id, item in truth.items():
        html_path = shared / "pool" / "html" / f"{page_id}.html.gz"
        pages.append(Page(page_id, item["dataset"], _site(item.get("url"), page_id, html_path),
                          item.get("articleBody") or "", item.get("comments") or "", html_path))
    return sorted(pages, key=lambda p: (DATASETS.index(p.dataset), p.page_id))


def fingerprint(shared: Path = SHARED) -> str:
    """SHA-256 over the gold files and every HTML file (name and bytes) read: 16 hex digits."""
    digest = hashlib.sha256()
    for path in sorted([*shared.glob("benchmark/ground-truth.json"), *shared.glob("pool/ground-truth.json"),
                        *shared.glob("benchmark/html/*.html.gz"), *shared.glob("pool/html/*.html.gz"),
                        *shared.glob("benchmark/flat-*/*.txt")]):
        digest.update(str(path.relative_to(shared)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def shared_tool(shared: Path, name: str):
    """Import ``../shared/tools/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(name, shared / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _html_file(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode("utf-8", "replace")


def read_html(page: Page) -> str:
    return _html_file(page.html_path)


class Cache:
    """Flattened pages and extractor outputs of one data fingerprint, computed once."""

    def __init__(self, shared: Path = SHARED, root: Path = CACHE) -> None:
        self.shared = shared
        self.pages = load_corpus(shared)
        self.fingerprint = fingerprint(shared)
        self.root = root / self.fingerprint
        self.root.mkdir(parents=True, exist_ok=True)

    def flattened(self, flattening: str) -> dict[str, str]:
        """``{page_id: flattened text}``: the benchmark's stored files, the pool flattened here."""
        path = self.root / f"{flattening}.json"
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        flatten = shared_tool(self.shared, "flatten")
        mode = flatten.flatten_blocks if flattening == "flat-blocks" else flatten.flatten_html
        texts = {}
        with warnings.catch_warnings():  # a few pool pages are XHTML served as HTML: flattened as HTML, as intended
            warnings.filterwarnings("ignore", message="It looks like you're using an HTML parser to parse an XML document")
            for page in self.pages:
                stored = self.shared / "benchmark" / flattening / f"{page.page_id}.txt"
                texts[page.page_id] = (stored.read_text(encoding="utf-8") if page.dataset == "benchmark"
                                       else mode(read_html(page)))
        path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        return texts

    def extracted(self, name: str) -> dict[str, str]:
        """``{page_id: text}`` of one of ``EXTRACTED``; on the first call all of them are computed
        in one pass, each page parsed once as the HTML path does (``html.read_page``)."""
        path = self.root / f"extract-{name}.json"
        if not path.exists():
            self._extract_all()
        return json.loads(path.read_text(encoding="utf-8"))["texts"]

    def path_inputs(self) -> tuple[dict[str, dict[str, str]], dict[str, np.ndarray]]:
        """What the HTML path reads of each page besides its text: ``{extractor: {page_id: output}}`` as
        the path runs the extractors (``extractors.extractor_texts``), and ``{page_id: DOM columns of each
        line}`` (``extractors.page_blocks``). Cached under a key of ``extractors.py``'s source, so that a
        change to the extractors' settings, the walk or its vocabulary is read anew; the code that compares
        and chooses between the texts (``agreement.py``) is outside it, so a change there reuses the outputs."""
        from commentary.clean import extractors
        from commentary.clean.html import parse_html
        key = hashlib.sha256(inspect.getsource(extractors).encode()).hexdigest()[:12]
        outputs_path, dom_path = self.root / f"path-outputs-{key}.json", self.root / f"page-dom-{key}.npz"
        texts = self.extracted("page-text")
        if not (outputs_path.exists() and dom_path.exists()):
            outputs: dict[str, dict[str, str]] = {name: {} for name in extractors.EXTRACTORS}
            rows = {}
            for page in self.pages:
                html = read_html(page)
                tree = parse_html(html)
                text, rows[page.page_id] = extractors.page_blocks(tree) if tree is not None else ("", None)
                if text != texts[page.page_id]:
                    raise RuntimeError(f"{page.page_id}: the walk's text differs from the cached page text")
                found = extractors.extractor_texts(html, tree) if tree is not None else {}
                for name in extractors.EXTRACTORS:
                    outputs[name][page.page_id] = found.get(name, "")
            ids = [page.page_id for page in self.pages if rows[page.page_id] is not None]
            with dom_path.open("wb") as out:
                np.savez_compressed(out, ids=np.array(ids), sizes=np.array([len(rows[i]) for i in ids]),
                                    rows=np.vstack([rows[i] for i in ids]))
            outputs_path.write_text(json.dumps(outputs, ensure_ascii=False), encoding="utf-8")
        with np.load(dom_path) as stored:
            parts = np.split(stored["rows"], np.cumsum(stored["sizes"])[:-1])
            found_rows = dict(zip(stored["ids"].tolist(), parts))
        width = len(extractors.DOM_COLUMNS)
        return (json.loads(outputs_path.read_text(encoding="utf-8")),
                {page.page_id: found_rows.get(page.page_id, np.zeros((0, width))) for page in self.pages})

    def page_readings(self) -> dict[str, dict]:
        """``{page_id: {"title", "page_type", "link_share"}}``: what the HTML path's page finish reads of a page
        besides its texts, as it reads them (``html.extract_page_metadata``, ``html.body_link_share``), for the
        title drop and the listing check. Cached under a key of ``html.py``'s and ``extractors.py``'s sources."""
        from commentary.clean import extractors, html
        key = hashlib.sha256((inspect.getsource(extractors) + inspect.getsource(html)).encode()).hexdigest()[:12]
        path = self.root / f"page-reading-{key}.json"
        if not path.exists():
            readings = {}
            for page in self.pages:
                tree = html.parse_html(read_html(page))
                metadata = html.extract_page_metadata(tree, None) if tree is not None else {}
                readings[page.page_id] = {name: metadata.get(name, (None, ""))[0] for name in ("title", "page_type")}
                readings[page.page_id]["link_share"] = html.body_link_share(tree) if tree is not None else None
            path.write_text(json.dumps(readings, ensure_ascii=False), encoding="utf-8")
        return json.loads(path.read_text(encoding="utf-8"))

    def _extract_all(self) -> None:
        """Every page's whole text (``page-text``) and each single extractor's output in its own settings
        (trafilatura with its fallback extractors, as it runs by default)."""
        from commentary.clean.extractors import extractor_texts, page_text
        from commentary.clean.html import parse_html
        texts: dict[str, dict[str, str]] = {name: {} for name in EXTRACTED}
        for page in self.pages:
            html = read_html(page)
            tree = parse_html(html)
            outputs = {"page-text": page_text(tree), **extractor_texts(html, tree, fast=False)} if tree is not None else {}
            for name in EXTRACTED:
                texts[name][page.page_id] = outputs.get(name, "")  # a failing extractor gives ""
        for name in EXTRACTED:
            (self.root / f"extract-{name}.json").write_text(json.dumps({"texts": texts[name]}, ensure_ascii=False),
                                                            encoding="utf-8")


@cache
def scorer(shared: Path = SHARED):
    """The benchmark's scorer module (``page_counts``, ``aggregate``)."""
    return shared_tool(shared, "score_aeb")
