"""Discover raw files and decode them into ingest records.

Raw files are only read, never changed. Every file found ends up either as a record or as a
reject with a reason; sidecars (``<file>.meta.json``) are attached to the file they describe.
"""
from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import json
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from commentary.settings import MAX_DECOMPRESSED_BYTES, MAX_LINE_CHARS, MAX_RAW_BYTES

SIDECAR_SUFFIX = ".meta.json"
FORMAT_BY_SUFFIX = {".txt": "text", ".html": "html", ".htm": "html"}
SIDECAR_KEYS = {"url": str, "outlet": str, "published_date": str, "language": str}
#: Leading bytes of common binary formats that sometimes arrive under a text name.
BINARY_MAGIC = (b"\x89PNG", b"%PDF", b"\xff\xd8\xff", b"GIF8", b"PK\x03\x04", b"\x7fELF")
_HTML_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class RejectedFile(Exception):
    """A raw file that cannot become a record; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class RawFile:
    """A document file found under the raw root (``rel_path`` uses forward slashes)."""

    rel_path: str
    format: str | None
    compressed: bool


def doc_id_for(source_path: str) -> str:
    """Stable document id: the same relative path gives the same id in every release."""
    return hashlib.sha256(source_path.encode("utf-8")).hexdigest()[:16]


def discover(raw_root: Path) -> list[RawFile]:
    """List document files below ``raw_root`` in a stable order; sidecars are not documents."""
    found = []
    for folder, dirs, files in os.walk(raw_root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(SIDECAR_SUFFIX):
                continue
            rel = Path(folder, name).relative_to(raw_root).as_posix()
            compressed = name.endswith(".gz")
            suffix = Path(name[:-3] if compressed else name).suffix.lower()
            found.append(RawFile(rel, FORMAT_BY_SUFFIX.get(suffix), compressed))
    return found


def read_raw(raw_root: Path, raw: RawFile) -> dict:
    """Read, check and decode one raw file into an ingest record, or raise RejectedFile."""
    path = raw_root / raw.rel_path
    if raw.format is None:
        raise RejectedFile("unsupported-format", f"extension of {raw.rel_path!r} is not .txt, .html or .htm")
    if path.is_symlink() and not path.resolve().is_relative_to(raw_root.resolve()):
        raise RejectedFile("symlink-outside-raw", "symbolic link leads out of the raw folder; not followed")
    try:
        size = path.stat().st_size
        if size > MAX_RAW_BYTES:
            raise RejectedFile("too-large", f"{size} bytes > limit {MAX_RAW_BYTES}")
        data = path.read_bytes()
    except OSError as error:
        raise RejectedFile("unreadable", f"{type(error).__name__}: {error.strerror or error}") from error
    content = _gunzip(data) if raw.compressed else data
    text = _decode(content, raw.format)
    if not text.strip():
        raise RejectedFile("empty", "file holds no text")
    sidecar = _read_sidecar(path.with_name(path.name + SIDECAR_SUFFIX))
    return {
        "doc_id": doc_id_for(raw.rel_path),
        "source_path": raw.rel_path,
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "format": raw.format,
        "bytes": len(data),
        "text": text,
        **sidecar,
    }


def _gunzip(data: bytes) -> bytes:
    """Decompress gzip with a cap on the output size."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, MAX_DECOMPRESSED_BYTES + 1)
    except zlib.error as error:
        raise RejectedFile("corrupt-gzip", str(error)) from error
    if len(out) > MAX_DECOMPRESSED_BYTES or inflater.unconsumed_tail:
        raise RejectedFile("gzip-too-large", f"decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes")
    if not inflater.eof:
        raise RejectedFile("corrupt-gzip", "compressed stream is truncated")
    return out


def _decode(content: bytes, fmt: str) -> str:
    """Decode bytes: BOM first, then UTF-8, then a declared HTML charset, then cp1252."""
    if content.startswith(BINARY_MAGIC):
        raise RejectedFile("binary-content", "bytes are an image, PDF, archive or executable, not text")
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if content.startswith(bom):
            return _normalise(content.decode(encoding, errors="replace"), fmt)
    if b"\x00" in content[:8192]:
        raise RejectedFile("binary-content", "NUL bytes in a text file")
    try:
        return _normalise(content.decode("utf-8"), fmt)
    except UnicodeDecodeError:
        pass
    declared = _HTML_CHARSET.search(content[:4096]) if fmt == "html" else None
    if declared:
        try:
            return _normalise(content.decode(declared.group(1).decode("ascii"), errors="strict"), fmt)
        except (LookupError, UnicodeDecodeError):
            pass
    return _normalise(content.decode("cp1252", errors="replace"), fmt)


def _normalise(text: str, fmt: str) -> str:
    """Unify line ends; in text files, cut enormous lines to a bounded length.

    HTML keeps its lines whole: minified pages are one long line, and the line cleaner only
    sees the extractor's output.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if fmt == "text" and len(text) > MAX_LINE_CHARS and max(map(len, text.split("\n"))) > MAX_LINE_CHARS:
        text = "\n".join(line[:MAX_LINE_CHARS] for line in text.split("\n"))
    return text


def _read_sidecar(path: Path) -> dict:
    """Parse the optional sidecar; wrong JSON or wrong types reject the document."""
    fields = dict.fromkeys(SIDECAR_KEYS)
    if not path.is_file():
        return fields
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RejectedFile("invalid-sidecar", f"{path.name}: not readable JSON ({error})") from error
    if not isinstance(meta, dict):
        raise RejectedFile("invalid-sidecar", f"{path.name}: expected a JSON object")
    for key, kind in SIDECAR_KEYS.items():
        value = meta.get(key)
        if value is not None and not isinstance(value, kind):
            raise RejectedFile("invalid-sidecar", f"{path.name}: {key} must be a string")
        fields[key] = value.strip() if value else None
    if fields["url"] and urlparse(fields["url"]).scheme not in ("http", "https"):
        raise RejectedFile("invalid-sidecar", f"{path.name}: url {fields['url']!r} is not an http(s) URL")
    if fields["language"] and not _LANGUAGE_TAG.match(fields["language"]):
        raise RejectedFile("invalid-sidecar", f"{path.name}: language {fields['language']!r} is not a language tag")
    if fields["published_date"]:
        try:
            fields["published_date"] = dt.date.fromisoformat(fields["published_date"][:10])
        except ValueError as error:
            raise RejectedFile("invalid-sidecar", f"{path.name}: published_date is not an ISO date") from error
    return fields
