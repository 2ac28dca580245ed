"""Discover raw files and decode them into ingest records.

Raw files are only read, never changed. Every entry found ends up either as a record or as a
reject with a reason; sidecars (``<file>.meta.json``) are attached to the file they describe, and a
sidecar without its document is rejected. Changes made to make a file usable (a guessed
encoding, repaired mojibake, cut lines) are returned as repairs with a reason, like rejects.
"""
from __future__ import annotations

import codecs
import datetime as dt
import errno
import hashlib
import json
import os
import re
import stat
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import ftfy
from ftfy.badness import BADNESS_RE

from commentary.settings import (
    MAX_CONTROL_SHARE, MAX_DECOMPRESSED_BYTES, MAX_HTML_CHARS, MAX_LINE_CHARS, MAX_PLAUSIBLE_YEAR, MAX_RAW_BYTES, MAX_SIDECAR_BYTES,
    MAX_TEXT_LINES, MIN_FILE_AGE_SECONDS, MIN_SIDECAR_YEAR,
)
from commentary.storage import RemoteFolder

SIDECAR_SUFFIX = ".meta.json"
FORMAT_BY_SUFFIX = {".txt": "text", ".html": "html", ".htm": "html", ".warc": "warc"}  # a WARC file becomes its records (commentary.warc)
SIDECAR_KEYS = {"url": str, "outlet": str, "published_date": str, "language": str}
#: Leading bytes of common binary formats that sometimes arrive under a text name.
BINARY_MAGIC = (b"\x89PNG", b"%PDF", b"\xff\xd8\xff", b"GIF8", b"PK\x03\x04", b"\x7fELF")
_HTML_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
#: The first line of a WARC file (``WARC/1.1``).
_WARC_VERSION_LINE = re.compile(rb"WARC/\d+\.\d+\r?\n")
#: An XHTML page's XML declaration and its encoding, read when no ``meta`` declares a charset (a saved page has no
#: HTTP header to say it was served as ``text/html``, under which browsers ignore it; a WARC record without an HTTP
#: charset is read as a saved page).
_XML_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
#: A language tag (BCP 47, in the shapes pages and sidecars use: "en", "en-GB", "zh-Hant-TW").
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
#: Byte order marks and the codec each names; UTF-32's first (its little-endian mark begins with UTF-16's).
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
BYTE_ORDER_MARKS = tuple(mark for mark, _ in _BOMS)
#: The encodings a page may declare: WHATWG's Encoding Standard (what browsers accept), by Python codec
#: name. A declared label is looked up with ``codecs.lookup``; a codec outside this set (``unicode_escape``,
#: ``rot13``, ``utf-7``...) is not a text encoding of the web and its declaration is ignored.
WHATWG_ENCODINGS = frozenset({
    "utf-8", "ibm866", "iso8859-2", "iso8859-3", "iso8859-4", "iso8859-5", "iso8859-6", "iso8859-7", "iso8859-8",
    "iso8859-10", "iso8859-13", "iso8859-14", "iso8859-15", "iso8859-16", "koi8-r", "koi8-u", "mac-roman",
    "mac-cyrillic", "cp874", "cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257",
    "cp1258", "gbk", "gb18030", "big5", "euc_jp", "iso2022_jp", "shift_jis", "euc_kr", "utf-16-le", "utf-16-be",
})
#: The UTF-16 codecs of WHATWG_ENCODINGS (which one, the bytes tell: ``_utf16_without_bom``).
UTF_16 = ("utf-16-le", "utf-16-be")
#: Text that reads with a larger mess ratio (charset-normalizer's measure: odd symbols, accents and
#: scripts mixed within words) in every encoding is rejected ``undecodable``; text has next to none,
#: a Russian page read as cp1252 about 1.0.
MAX_ENCODING_MESS = 0.2
#: French in cp1252 measures 0.055 and 0.0 read as cp1257 ("déją"); a page in another script read as
#: cp1252 measures 1.0 and more.
WESTERN_MESS_MARGIN = 0.1
#: Labels that browsers read as windows-1252 (its superset): latin-1 and ASCII.
_READ_AS_CP1252 = frozenset({"latin-1", "iso8859-1", "ascii"})
#: What ends a line of a text file besides ``\n``: the line and paragraph separators (U+2028, U+2029), NEL, form
#: feed and vertical tab, as Python's ``str.splitlines`` reads them. Not in HTML, where they may stand in a string of a
#: script (JSON allows U+2028 there, not a line break).
_TEXT_LINE_BREAK = re.compile("[\u2028\u2029\x85\x0c\x0b]")
#: What ``valid_text`` replaces (lone surrogates) or drops (control characters other than tabs and line breaks).
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f]")
#: Control characters that never occur in text (tab, line ends and form feed excluded), and U+FFFD.
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")
#: The same characters in UTF-8 bytes: every byte but the ASCII control codes (deleted to count those),
#: the C1 control codes, and U+FFFD.
_NOT_ASCII_CONTROL = bytes(b for b in range(256) if not (b < 0x09 or b == 0x0b or 0x0e <= b < 0x20 or b == 0x7f))
_C1_CONTROL_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")
_REPLACEMENT_UTF8 = "\ufffd".encode()
#: A UTF-8 lead byte read as cp1252 followed by a continuation byte read as cp1252: a sign of
#: mojibake, checked before the slower repair (ftfy) runs.
_MOJIBAKE_HINT = re.compile(
    "[\u00c2-\u00ef][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014"
    "\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
#: Characters before the first one that must be non-ASCII, at most, in a match of ftfy's mojibake pattern
#: (``BADNESS_RE``; each of its branches has one within its first three characters, checked by the tests).
_BADNESS_REACH = 2
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


class RejectedFile(Exception):
    """A raw file that cannot become a record; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class RawFile:
    """An entry found under the raw root (``rel_path`` uses forward slashes).

    ``refusal`` is ``(reason, detail)`` when discovery already knows the entry cannot be read:
    a symbolic link to a folder, a sidecar without its document, a name that is not UTF-8.
    """

    rel_path: str
    format: str | None
    compressed: bool
    refusal: tuple[str, str] | None = None

    @property
    def file(self) -> str:
        """The raw file this entry is read from (for a WARC record: its WARC file)."""
        return self.rel_path


def doc_id_for(source_path: str) -> str:
    """Stable document id: the same relative path gives the same id in every release."""
    return hashlib.sha256(source_path.encode("utf-8")).hexdigest()[:16]


def discover(raw_root: Path | RemoteFolder, skip: Path | None = None) -> list[RawFile]:
    """List every entry below ``raw_root`` that is not a sidecar of a document, in a stable order.

    Symbolic links to folders are listed (to be rejected), never followed; so are folders that
    cannot be listed (no permission, a path too long for the system), with the error. ``skip``: a
    folder inside ``raw_root`` not to enter (the curated folder, when it lies there).
    """
    if isinstance(raw_root, RemoteFolder):
        split = [(rel, *rel.rpartition("/")[::2]) for rel in raw_root.files()]
        names: dict[str, set[str]] = {}
        for _, folder, name in split:
            names.setdefault(folder, set()).add(name)
        return [entry for rel, folder, name in split if (entry := _entry(rel, name, names[folder])) is not None]
    found = []
    root, skipped = os.fspath(raw_root), os.fspath(skip) if skip else None

    def unlistable(error: OSError) -> None:
        rel = os.path.relpath(error.filename, root).replace(os.sep, "/") if error.filename else "."
        found.append(RawFile(shown_name(rel), None, False, ("unreadable-folder", f"folder not listed: {error.strerror or error}")))

    for folder, dirs, files in os.walk(raw_root, onerror=unlistable, followlinks=False):
        dirs.sort()
        linked = [name for name in dirs if os.path.islink(os.path.join(folder, name))]
        dirs[:] = [name for name in dirs if name not in linked and os.path.join(folder, name) != skipped]
        names = set(files)
        prefix = os.path.relpath(folder, raw_root).replace(os.sep, "/")  # strings: pathlib costs more than the walk
        for name in sorted(files + linked):
            rel = name if prefix == "." else f"{prefix}/{name}"
            if name in linked and is_utf8(rel):
                found.append(RawFile(rel, None, False, ("symlinked-folder", "symbolic link to a folder; not followed")))
            elif (entry := _entry(rel, name, names)) is not None:
                found.append(entry)
    return found


def _entry(rel: str, name: str, names: set[str]) -> RawFile | None:
    """What discovery lists for the file ``name`` at ``rel``; None for a sidecar whose document is among ``names`` (its folder's)."""
    if not is_utf8(rel):
        return RawFile(shown_name(rel), None, False, ("file-name-not-utf8", "the file name is not valid UTF-8; not read"))
    if name.endswith(SIDECAR_SUFFIX):
        document = name[: -len(SIDECAR_SUFFIX)]
        if document.endswith(SIDECAR_SUFFIX):
            return RawFile(rel, None, False, ("orphan-sidecar", "sidecar of a sidecar: a sidecar describes a document"))
        if document not in names:
            return RawFile(rel, None, False, ("orphan-sidecar", "sidecar without the document it describes"))
        if _format_of(document)[0] == "warc":
            return RawFile(rel, None, False, ("orphan-sidecar", "sidecar of a WARC file: its records take their URL and date "
                                                                "from the archive; a sidecar describes a page"))
        return None
    if name.lower().endswith(SIDECAR_SUFFIX):
        return RawFile(rel, None, False, ("invalid-sidecar", f"a sidecar's name ends in {SIDECAR_SUFFIX}, in lower case: "
                                                             f"{name[: -len(SIDECAR_SUFFIX)]} is read without this one"))
    return RawFile(rel, *_format_of(name))


def _format_of(name: str) -> tuple[str | None, bool]:
    """The format (``FORMAT_BY_SUFFIX``) of the file ``name``, and whether it is gzip-compressed."""
    compressed = name.lower().endswith(".gz")
    stem = name[:-3] if compressed else name
    return FORMAT_BY_SUFFIX.get(stem[stem.rfind("."):].lower() if "." in stem else ""), compressed


def is_utf8(name: str) -> bool:
    """Whether the path ``name`` (as Python decoded it from the system) is UTF-8 bytes: a byte that is not UTF-8 is kept
    as a lone surrogate, which cannot be encoded."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown_name(name: str) -> str:
    """``name`` as it can be printed and stored: the bytes that are not UTF-8 written as ``\\xff``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_raw(raw_root: Path | RemoteFolder, raw: RawFile) -> tuple[dict, list[tuple[str, str]]]:
    """Read, check and decode one raw file into an ingest record and its repairs ``(reason, detail)``.

    Raises RejectedFile when the file cannot become a record.
    """
    if raw.refusal:
        raise RejectedFile(*raw.refusal)
    if raw.format is None:
        raise RejectedFile("unsupported-format", f"extension of {raw.rel_path!r} is not .txt, .html or .htm")
    data = _read_bytes(raw_root, raw.rel_path, MAX_RAW_BYTES)
    content = _gunzip(data) if raw.compressed else data
    if _WARC_VERSION_LINE.match(content):
        raise RejectedFile("unsupported-format", f"a WARC archive under a page's name ({raw.rel_path!r}): named .warc or "
                                                 ".warc.gz, its records are read")
    text, repairs = decode_bytes(content, raw.format)
    if not text.strip():
        raise RejectedFile("empty", "file holds no text")
    if raw.format == "text":
        text = _TEXT_LINE_BREAK.sub("\n", text)
    check_cost(text, raw.format)
    if raw.format == "text":
        text, cut = cap_long_lines(text)
        repairs += cut
    sidecar = _read_sidecar(raw_root, raw.rel_path + SIDECAR_SUFFIX)
    record = {
        "doc_id": doc_id_for(raw.rel_path),
        "source_path": raw.rel_path,
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "format": raw.format,
        "bytes": len(data),
        "text": text,
        **sidecar,
    }
    return record, repairs


def check_cost(text: str, fmt: str) -> None:
    """Raise RejectedFile ``too-costly`` for a page too large to clean: HTML of more than MAX_HTML_CHARS characters,
    text of more than MAX_TEXT_LINES lines."""
    if fmt == "html" and len(text) > MAX_HTML_CHARS:
        raise RejectedFile("too-costly", f"{len(text)} characters of HTML > limit {MAX_HTML_CHARS}; not parsed")
    if fmt == "text" and (lines := text.count("\n") + (not text.endswith("\n"))) > MAX_TEXT_LINES:
        raise RejectedFile("too-costly", f"{lines} lines of text > limit {MAX_TEXT_LINES}; not cleaned")


def _read_bytes(raw_root: Path | RemoteFolder, rel_path: str, limit: int) -> bytes:
    """The bytes of the file ``rel_path`` below ``raw_root``, at most ``limit`` of them."""
    if not isinstance(raw_root, RemoteFolder):
        return _read_capped(raw_root, raw_root / rel_path, limit)
    try:
        with raw_root.fs.open(raw_root.path(rel_path), "rb") as handle:
            size = handle.size
            if size is not None and size > limit:
                raise RejectedFile("too-large", f"{size} bytes > limit {limit}")
            data = handle.read(limit + 1)
    except (OSError, ValueError) as error:
        raise RejectedFile("unreadable", f"{type(error).__name__}: {error}") from error
    if len(data) > limit:
        raise RejectedFile("too-large", f"grew beyond the limit of {limit} bytes while being read")
    return data


def check_settled(path: Path, info: os.stat_result) -> None:
    """RejectedFile ``still-being-written`` when ``path`` (whose status is ``info``) was modified less than
    ``MIN_FILE_AGE_SECONDS`` ago, or at a time ahead of the clock."""
    if (age := time.time() - info.st_mtime) < MIN_FILE_AGE_SECONDS:
        when = f"{age:.1f} s before it was read" if age >= 0 else f"at a time {-age:.0f} s after it was read (a clock ahead)"
        raise RejectedFile("still-being-written", f"{path.name} was modified {when} (< {MIN_FILE_AGE_SECONDS:g} s); "
                           "a later run reads it")


def _read_capped(raw_root: Path, path: Path, limit: int) -> bytes:
    """The bytes of a regular file inside ``raw_root`` (:func:`regular_file`), at most ``limit`` of them."""
    info = regular_file(raw_root, path)
    if info.st_size > limit:
        raise RejectedFile("too-large", f"{info.st_size} bytes > limit {limit}")
    check_settled(path, info)
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        raise RejectedFile("unreadable", f"{type(error).__name__}: {error.strerror or error}") from error
    if len(data) > limit:
        raise RejectedFile("too-large", f"grew beyond the limit of {limit} bytes while being read")
    return data


def regular_file(raw_root: Path, path: Path) -> os.stat_result:
    """The status of ``path``, a regular file in ``raw_root`` or a link to one; RejectedFile for anything else.

    Symbolic links that lead out of the raw folder are not followed; FIFOs, sockets and devices
    are not opened (reading them could block or never end).
    """
    try:
        outside = path.is_symlink() and not path.resolve().is_relative_to(raw_root.resolve())
    except (RuntimeError, OSError) as error:  # ``resolve`` on a loop of links
        raise RejectedFile("unreadable", "symbolic links that lead to each other in a loop") from error
    if outside:
        raise RejectedFile("symlink-outside-raw", "symbolic link leads out of the raw folder; not followed")
    try:
        info = path.stat()
    except OSError as error:
        raise RejectedFile("unreadable", f"{type(error).__name__}: {error.strerror or error}") from error
    if not stat.S_ISREG(info.st_mode):
        raise RejectedFile("not-a-regular-file", "a FIFO, socket or device, not a file; not read")
    return info


def _gunzip(data: bytes) -> bytes:
    """Decompress a gzip file (:func:`inflate`); a corrupt or truncated one is rejected ``corrupt-gzip``."""
    try:
        return inflate(data)
    except zlib.error as error:
        raise RejectedFile("corrupt-gzip", str(error)) from error


def inflate(data: bytes, wbits: int = 31) -> bytes:
    """Decompress gzip (``wbits`` 31, or 47 for gzip or zlib: every member of a multi-member stream) or deflate
    (15 zlib, -15 raw) with a cap on the output size (RejectedFile ``gzip-too-large``); zlib.error when the stream is
    corrupt, truncated or followed by other bytes."""
    out, rest = [], data
    while rest:
        inflater = zlib.decompressobj(wbits=wbits)
        out.append(inflater.decompress(rest, MAX_DECOMPRESSED_BYTES + 1))
        if sum(map(len, out)) > MAX_DECOMPRESSED_BYTES or inflater.unconsumed_tail:
            raise RejectedFile("gzip-too-large", f"decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes")
        if not inflater.eof:
            raise zlib.error("compressed stream is truncated")
        rest = inflater.unused_data
        if rest and wbits not in (31, 47):
            raise zlib.error(f"{len(rest)} bytes after the end of the compressed stream")
    return b"".join(out)


def valid_text(text: str) -> str:
    """``text`` without what cannot be stored or shown as text: lone surrogates (left by a JSON escape such
    as ``\\ud800``) become U+FFFD and control characters other than tabs and line breaks are dropped."""
    return _CONTROL.sub("", _SURROGATE.sub("\ufffd", text))


def decode_bytes(content: bytes, fmt: str) -> tuple[str, list[tuple[str, str]]]:
    """Decode bytes: BOM, UTF-16 by its NUL pattern, UTF-8, a declared HTML charset, then cp1252.

    Returns the text with line ends unified and without byte order marks (a leading one, and those that joining files
    left inside), and the repairs made; rejects bytes that are not text.
    """
    if content.startswith(BINARY_MAGIC):
        raise RejectedFile("binary-content", "bytes are an image, PDF, archive or executable, not text")
    repairs = []
    encoding = next((name for bom, name in _BOMS if content.startswith(bom)), None)
    if encoding == "utf-16" and b"\x00" not in content[2:8192] and _decodes(content[2:], "utf-8"):
        encoding, content = "utf-8", content[2:]  # UTF-8 after two stray bytes that look like a UTF-16 mark
        repairs.append(("invalid-bytes-replaced", "bytes FF FE or FE FF before UTF-8 text dropped"))
    if encoding is None and (encoding := _utf16_without_bom(content)):
        repairs.append(("encoding-guessed", f"no byte order mark; NUL byte pattern of {encoding}"))
    if encoding is None and b"\x00" in content[:8192]:
        raise RejectedFile("binary-content", "NUL bytes in a text file")
    if encoding is None:
        encoding, note = _text_encoding(content, fmt)
        if note:
            repairs.append(note)
    try:
        text, replaced = content.decode(encoding), 0
    except UnicodeDecodeError:
        text = content.decode(encoding, errors="replace")
        replaced = text.count("\ufffd") - content.decode(encoding, errors="ignore").count("\ufffd")
    if replaced:
        repairs.append(("invalid-bytes-replaced", f"{replaced} byte sequences not valid {encoding} replaced by U+FFFD"))
    utf8 = encoding == "utf-8" and not replaced  # text is exactly the bytes read as UTF-8
    # the hint's first character (U+00C2-U+00EF) is the byte C3 and a continuation byte in UTF-8
    if (not utf8 or b"\xc3" in content) and _MOJIBAKE_HINT.search(text) and _looks_bad(text) and (fixed := ftfy.fix_encoding(text)) != text:
        text, utf8 = fixed, False
        repairs.append(("mojibake-fixed", "UTF-8 text that had been decoded as cp1252 or latin-1 was restored"))
    bad = _not_text_count(content) if utf8 else len(_NOT_TEXT.findall(text))
    if bad > MAX_CONTROL_SHARE * len(text):
        raise RejectedFile("binary-content", f"{bad} of {len(text)} characters are control codes or undecodable as {encoding}")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", ""), repairs


def _looks_bad(text: str) -> bool:
    """``ftfy.badness.is_bad(text)``: whether ftfy sees mojibake, without which ``ftfy.fix_encoding`` returns the text as
    it is. The pattern is tried only where a match can start (at most _BADNESS_REACH characters before a non-ASCII
    character), not at every character: about a seventh of the time on the benchmark's pages."""
    tried = -1
    for found in _NON_ASCII.finditer(text):
        at = found.start()
        for start in range(max(at - _BADNESS_REACH, tried + 1), at + 1):
            if BADNESS_RE.match(text, start):
                return True
        tried = at
    return False


def _not_text_count(content: bytes) -> int:
    """How many characters of UTF-8 ``content`` ``_NOT_TEXT`` matches, counted in the bytes (three
    passes over them in C, a fraction of the regex's time over the decoded text)."""
    return (len(content.translate(None, _NOT_ASCII_CONTROL)) + len(_C1_CONTROL_UTF8.findall(content))
            + content.count(_REPLACEMENT_UTF8))


def _utf16_without_bom(content: bytes) -> str | None:
    """``utf-16-le`` or ``-be`` when NUL bytes stand at every other byte (at least one in twenty
    characters: the spaces and digits of text in any script), at the others ten times less often
    (characters such as U+5100), and the bytes decode as that."""
    head = content[:8192]
    if len(head) < 4 or len(content) % 2:
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    encoding = "utf-16-le" if odd >= 0.05 * len(head) / 2 and even * 10 <= odd else \
        "utf-16-be" if even >= 0.05 * len(head) / 2 and odd * 10 <= even else None
    return encoding if encoding and _decodes(content, encoding) else None


def _decodes(content: bytes, encoding: str) -> bool:
    try:
        content.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _text_encoding(content: bytes, fmt: str) -> tuple[str, tuple[str, str] | None]:
    """The encoding of NUL-free bytes, and a note when it is not what the bytes or page declare.

    UTF-8 when the bytes are valid UTF-8; else the page's declared charset (a ``meta`` charset, else its XML
    declaration's encoding) when it is a WHATWG encoding that decodes the bytes (iso-8859-1 and ascii read as
    windows-1252, as browsers do);
    else what charset-normalizer detects with confidence. Raises RejectedFile (``undecodable``) when
    nothing explains the bytes with confidence: mojibake is not released.
    """
    declared_match = (_HTML_CHARSET.search(content[:4096]) or _XML_ENCODING.match(content)) if fmt == "html" else None
    label = declared_match.group(1).decode("ascii").lower() if declared_match else None
    declared = web_encoding(label) if label else None
    if declared in UTF_16:
        declared = "utf-8"  # a page that declares UTF-16 in itself is read as UTF-8 (HTML standard, "prescan")
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if declared and declared != "utf-8" and not content.isascii():
            return "utf-8", ("charset-mismatch", f"page declares {label} but its bytes are valid UTF-8; decoded as UTF-8")
        return "utf-8", None
    if declared and declared != "utf-8":
        try:
            content.decode(declared)
            return declared, None
        except UnicodeDecodeError:
            pass
    reason = f"declared {label} {'does not decode the bytes' if declared else 'is not a web text encoding'}" if label else "no charset declared"
    detected = _detect_encoding(content)
    if detected is None:
        raise RejectedFile("undecodable", f"not valid UTF-8, {reason}, and no encoding explains the bytes with confidence")
    return detected, ("encoding-guessed", f"not valid UTF-8 and {reason}; detected as {detected}")


def web_encoding(label: str) -> str | None:
    """The Python codec of a declared charset label, when it names a WHATWG encoding; else None.

    "utf-16" without an order names UTF-16LE, as in the WHATWG Encoding Standard (Python reads it by a byte order mark).
    """
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    name = "cp1252" if name in _READ_AS_CP1252 else "utf-16-le" if name == "utf-16" else name
    return name if name in WHATWG_ENCODINGS else None


def _detect_encoding(content: bytes) -> str | None:
    """The WHATWG encoding that reads bytes that are not UTF-8 most cleanly, by charset-normalizer's
    measure of mess; None when none reads them with confidence (a mess ratio above MAX_ENCODING_MESS).

    windows-1252, the web's default, wins over any encoding that reads the bytes at most
    WESTERN_MESS_MARGIN more cleanly (it is measured with its few undefined bytes replaced, which
    are then recorded as a repair).
    """
    from charset_normalizer import from_bytes
    from charset_normalizer.md import mess_ratio

    western = mess_ratio(content.decode("cp1252", errors="replace"), maximum_threshold=1.0)
    found = next((match for match in from_bytes(content) if codecs.lookup(match.encoding).name in WHATWG_ENCODINGS), None)
    if western <= MAX_ENCODING_MESS and (found is None or western <= found.chaos + WESTERN_MESS_MARGIN):
        return "cp1252"
    return codecs.lookup(found.encoding).name if found is not None and found.chaos <= MAX_ENCODING_MESS else None


def cap_long_lines(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Cut lines longer than MAX_LINE_CHARS; the cut, if any, as a repair."""
    if len(text) <= MAX_LINE_CHARS:
        return text, []
    lines = text.split("\n")
    long_lines = sum(len(line) > MAX_LINE_CHARS for line in lines)
    if not long_lines:
        return text, []
    cut = "\n".join(line[:MAX_LINE_CHARS] for line in lines)
    return cut, [("long-lines-cut", f"{long_lines} lines longer than {MAX_LINE_CHARS} characters cut to that length")]


def _read_sidecar(raw_root: Path | RemoteFolder, rel_path: str) -> dict:
    """Parse the optional sidecar at ``rel_path``; wrong JSON or wrong types reject the document."""
    fields = dict.fromkeys(SIDECAR_KEYS)
    path = Path(rel_path)
    if isinstance(raw_root, RemoteFolder):
        if not raw_root.fs.isfile(raw_root.path(rel_path)):
            return fields
    else:
        try:
            os.lstat(raw_root / path)
        except OSError as error:  # none there, or a name longer than the system allows (so none can be there)
            if error.errno in (errno.ENOENT, errno.ENAMETOOLONG, errno.ENOTDIR):
                return fields
            raise RejectedFile("invalid-sidecar", f"{path.name}: {error.strerror or error}") from error
    try:
        meta = json.loads(_read_bytes(raw_root, rel_path, MAX_SIDECAR_BYTES).decode("utf-8-sig"))
    except RejectedFile as error:
        if error.reason == "still-being-written":
            raise
        raise RejectedFile("invalid-sidecar", f"{path.name}: {error.reason}: {error.detail}") from error
    except (ValueError, RecursionError) as error:  # bad UTF-8, bad JSON, absurd numbers or nesting
        raise RejectedFile("invalid-sidecar", f"{path.name}: not readable JSON ({error})") from error
    if not isinstance(meta, dict):
        raise RejectedFile("invalid-sidecar", f"{path.name}: expected a JSON object")
    for key, kind in SIDECAR_KEYS.items():
        value = meta.get(key)
        if value is not None and not isinstance(value, kind):
            raise RejectedFile("invalid-sidecar", f"{path.name}: {key} must be a string")
        fields[key] = " ".join(valid_text(value).split()) or None if value else None
    if fields["url"]:
        if (url := http_url(fields["url"])) is None:
            raise RejectedFile("invalid-sidecar", f"{path.name}: url {fields['url']!r} is not an http(s) URL with a host")
        fields["url"] = url
    if fields["language"]:
        if (tag := language_tag(fields["language"])) is None:
            raise RejectedFile("invalid-sidecar", f"{path.name}: language {fields['language']!r} is not a language tag")
        fields["language"] = tag
    if fields["published_date"]:
        fields["published_date"] = _sidecar_date(path.name, fields["published_date"])
    return fields


def language_tag(value: str) -> str | None:
    """``value`` as a language tag in BCP 47's case ("en", "en-GB", "zh-Hant-TW"; ``EN_us`` read as ``en-US``, as
    og:locale writes it), or None when it is none (``LANGUAGE_TAG``)."""
    tag = value.strip().replace("_", "-")
    if not LANGUAGE_TAG.match(tag):
        return None
    first, *rest = tag.split("-")
    return "-".join([first.lower(), *(part.title() if len(part) == 4 else part.upper() if len(part) == 2 or part.isdigit()
                                      else part.lower() for part in rest)])


def http_url(value: str) -> str | None:
    """``value`` with its scheme in lower case when it is an http(s) URL with a host and a valid port, else None."""
    try:
        url = urlparse(value)
        port_ok = url.port is None or url.port > 0
    except ValueError:  # a bracketed host that is no IPv6 address, a port out of range
        return None
    if url.scheme.lower() not in ("http", "https") or not url.hostname or " " in url.netloc or not port_ok:
        return None
    return url._replace(scheme=url.scheme.lower()).geturl()


def _sidecar_date(name: str, value: str) -> dt.date:
    """The date of an ISO date or date-time, all of it valid, from MIN_SIDECAR_YEAR to MAX_PLAUSIBLE_YEAR."""
    try:
        date = dt.date.fromisoformat(value) if len(value) == 10 else dt.datetime.fromisoformat(value).date()
    except ValueError as error:
        raise RejectedFile("invalid-sidecar", f"{name}: published_date {value!r} is not an ISO date or date-time") from error
    if not MIN_SIDECAR_YEAR <= date.year <= MAX_PLAUSIBLE_YEAR:
        raise RejectedFile("invalid-sidecar", f"{name}: published_date {value!r} is not between {MIN_SIDECAR_YEAR} and "
                                              f"{MAX_PLAUSIBLE_YEAR}")
    return date
