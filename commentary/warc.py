"""WARC input: every HTTP ``response`` record of a ``.warc`` or ``.warc.gz`` file is a document.

Discovery lists a WARC file's response records (``expand``) as entries ``<file>#<offset>`` that
ingest reads one by one (``Reader``), so the records of one large file spread over the shards like
any other files. Files are read streaming with fastwarc (a compressed file record by record, as
the WARC standard recommends), never unpacked to disk. The record offsets of a file whose stamp
is unchanged are taken from ``<curated>/cache/warc/`` instead of scanning the file again.

Request, metadata, warcinfo and other records are not documents and are not listed. A response
record becomes a reject with its reason when it is not a fetched HTML page: a redirect, an HTTP
error, another content type, a truncated or unreadable record.
"""
from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
import os
import re
import zlib
from collections.abc import Iterator
from itertools import groupby
from operator import attrgetter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fastwarc.warc import ArchiveIterator, WarcRecordType

from commentary.ingest import (BYTE_ORDER_MARKS, UTF_16, RawFile, RejectedFile, check_cost, check_settled, decode_bytes, doc_id_for, http_url,
                               inflate, regular_file, web_encoding)
from commentary.clean.dates import plausible
from commentary.settings import MAX_DECOMPRESSED_BYTES
from commentary.storage import RemoteFolder

#: HTTP content types that are documents; every other type is rejected (``not-html``).
HTML_TYPES = {"text/html", "application/xhtml+xml"}
_GZIP_MAGIC = b"\x1f\x8b"
#: How a kept index was made; an index made otherwise is made again. Records are read in fastwarc's quirks mode:
#: header lines that end in a bare line feed, as some crawlers write them, would make a response record of unknown
#: type, skipped without a trace. Since "quirks-gaps", the bytes that quirks mode skips between the records of an
#: uncompressed file are looked for (``_stray_bytes``), and the gzip members of a compressed one that no record
#: was read in (``_first_unread_member``).
_SCAN = "quirks-gaps"
#: Bytes of a WARC header read at once to find its end (most are under 1 KiB; a longer one is read on).
_HEADER_READ = 2048
#: The most bytes of a WARC header read; after a longer header, what follows its record is not checked.
_HEADER_MAX = 65536
#: Compressed bytes read at once when gzip members are looked for or inflated.
_INFLATE_READ = 1 << 20
#: The first bytes of a gzip member: its magic number and the deflate method.
_MEMBER_START = _GZIP_MAGIC + b"\x08"
#: The largest record whose gzip member is checked against its length: a page at the size cap, with its headers.
_MEMBER_MAX = MAX_DECOMPRESSED_BYTES + _HEADER_MAX
#: The ``source_path`` of a WARC record: its file's path and its offset.
_RECORD_PATH = re.compile(r"(?is).*\.warc(\.gz)?#\d+")
#: The end of a header: a line end and a blank line, each CR LF or, as quirks mode reads them, a bare line feed.
_BLANK_LINE = re.compile(rb"\n\r?\n")
#: The length of a WARC record's block, in its header.
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d{1,20})[ \t]*\r?$")
#: A chunk size of chunked transfer coding (at most 64 bits).
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


@dataclass(frozen=True)
class WarcRecordEntry(RawFile):
    """A response record of a WARC file: ``rel_path`` is ``<container>#<offset>``, the record's byte offset in it."""

    container: str = ""
    offset: int = 0

    @property
    def file(self) -> str:
        return self.container


def is_record_path(source_path: str) -> bool:
    """Whether ``source_path`` names a record of a WARC file (``<file>.warc#<offset>``, ``.warc.gz`` too): a file of
    such a name is never read as a document (its extension is none that ingest reads)."""
    return _RECORD_PATH.fullmatch(source_path) is not None


def is_warc(raw: RawFile) -> bool:
    """Whether discovery listed ``raw`` as a WARC file (to be expanded into its records)."""
    return raw.format == "warc" and not isinstance(raw, WarcRecordEntry)


def expand(raw_root: Path | RemoteFolder, found: list[RawFile], index_dir: Path | None) -> list[RawFile]:
    """Replace each WARC file among ``found`` by its response records, in offset order.

    A file that cannot be read to its end is listed as well, under its own path and refused with
    the reason (``warc-corrupt``, ``warc-not-record-gzipped``, ``warc-without-responses``,
    ``unreadable``): its readable records before that point are still documents. ``index_dir``
    keeps each file's offsets under its stamp (None: scan every time). A file still being written is not read: the
    records an earlier scan listed are refused ``still-being-written`` (so that the run keeps the versions it read
    before, ``steps.earlier_versions``), else the file is.
    """
    from commentary.cache import file_stamps  # cache imports ingest; imported here to keep the modules apart

    out: list[RawFile] = []
    for raw in found:
        if not is_warc(raw) or raw.refusal:
            out.append(raw)
            continue
        if writing := _being_written(raw_root, raw):
            out.extend(_earlier_records(index_dir, raw, writing))
            continue
        stamp = file_stamps(raw_root, [raw])["stamp"][0]
        index = _load_index(index_dir, raw.rel_path, stamp) if stamp is not None else None
        if index is None:
            index = _scan(raw_root, raw)
            if stamp is not None and index_dir is not None:
                _save_index(index_dir, raw.rel_path, stamp, index)
        offsets, refusal, compressed = index["offsets"], index["refusal"], index["compressed"]
        out.extend(WarcRecordEntry(f"{raw.rel_path}#{offset}", "warc", compressed, None, raw.rel_path, offset) for offset in offsets)
        if refusal:
            out.append(RawFile(raw.rel_path, "warc", compressed, tuple(refusal)))
    return out


def _being_written(raw_root: Path | RemoteFolder, raw: RawFile) -> tuple[str, str] | None:
    """The refusal ``still-being-written`` of a WARC file on a local disk modified too recently, or None."""
    if isinstance(raw_root, RemoteFolder):
        return None
    path = Path(raw_root, raw.rel_path)
    try:
        check_settled(path, path.stat())
    except RejectedFile as error:
        return error.reason, error.detail
    except OSError:
        return None  # the scan tells why it cannot be read
    return None


def _earlier_records(index_dir: Path | None, raw: RawFile, refusal: tuple[str, str]) -> list[RawFile]:
    """The records that the last scan of a WARC file listed, each refused with ``refusal``; the file itself when it was
    never scanned."""
    index = _load_index(index_dir, raw.rel_path, None)
    if index is None or not index["offsets"]:
        return [RawFile(raw.rel_path, "warc", raw.compressed, refusal)]
    return [WarcRecordEntry(f"{raw.rel_path}#{offset}", "warc", index.get("compressed", raw.compressed), refusal,
                            raw.rel_path, offset) for offset in index["offsets"]]


def _index_path(index_dir: Path, rel_path: str) -> Path:
    return index_dir / f"{hashlib.sha256(rel_path.encode()).hexdigest()[:32]}.json"


def _load_index(index_dir: Path | None, rel_path: str, stamp: str | None) -> dict | None:
    """The kept index of ``rel_path`` made under ``stamp`` by this scan (``_SCAN``), or None; with ``stamp`` None, the
    last index kept, however it was made (its offsets name the records an earlier run listed)."""
    if index_dir is None:
        return None
    try:
        index = json.loads(_index_path(index_dir, rel_path).read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(index, dict) and index.get("path") == rel_path and isinstance(index.get("offsets"), list)):
        return None
    return index if stamp is None or (index.get("scan") == _SCAN and index.get("stamp") == stamp) else None


def _save_index(index_dir: Path, rel_path: str, stamp: str, index: dict) -> None:
    """Write the index atomically (a reader never sees half of it)."""
    path = _index_path(index_dir, rel_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.tmp")
    aside.write_text(json.dumps({"path": rel_path, "stamp": stamp, "scan": _SCAN, **index}) + "\n")
    os.replace(aside, path)


def _open(raw_root: Path | RemoteFolder, rel_path: str) -> BinaryIO:
    if isinstance(raw_root, RemoteFolder):
        return raw_root.fs.open(raw_root.path(rel_path), "rb")
    return open(os.path.join(raw_root, rel_path), "rb")  # noqa: SIM115 - the caller closes it


def _scan(raw_root: Path | RemoteFolder, raw: RawFile) -> dict:
    """``offsets`` of the response records of a WARC file, the ``refusal`` of the file, if any, and whether it is
    ``compressed`` (told by its first bytes, not its name: ``.warc.gz`` files are sometimes not)."""
    offsets: list[int] = []
    records: list[tuple[int, int]] = []  # every record's offset and block length
    refusal, compressed = None, raw.compressed  # as its name says, until its first bytes are read
    if not isinstance(raw_root, RemoteFolder):
        try:
            regular_file(Path(raw_root), Path(raw_root, raw.rel_path))
        except RejectedFile as error:
            return {"offsets": [], "refusal": (error.reason, error.detail), "compressed": compressed}
    try:
        with _open(raw_root, raw.rel_path) as handle:
            compressed = handle.read(2) == _GZIP_MAGIC
            handle.seek(0)
            try:
                for record in ArchiveIterator(handle, parse_http=False, quirks_mode=True):
                    records.append((record.stream_pos, record.content_length))
                    if record.record_type == WarcRecordType.response:
                        offsets.append(record.stream_pos)
            except OSError as error:
                after = f"after the record at byte {offsets[-1]}" if offsets else "from the start"
                refusal = ("warc-corrupt", f"records {after} could not be read: {error}")
            if records and not compressed and refusal is None and (stray := _stray_bytes(handle, records)):
                at, wrong_length = stray
                refusal = ("warc-corrupt", f"the bytes from byte {at} are no WARC record: a record damaged there could not be read"
                           + (f"; the record at byte {wrong_length} does not end where its length says and is left out"
                              if wrong_length is not None else ""))
                offsets = [offset for offset in offsets if offset != wrong_length]
            if records and compressed and refusal is None and (
                    unread := _first_unread_member(handle, {start for start, _ in records})) is not None:
                refusal = ("warc-corrupt", f"no record could be read in the gzip member at byte {unread} (does the record "
                                           "before it declare a wrong length?)")
            if compressed and len(offsets) > 1:
                handle.seek(offsets[1])
                if sorted(set(offsets)) != offsets or handle.read(2) != _GZIP_MAGIC:
                    refusal = ("warc-not-record-gzipped", "compressed as one gzip stream, not record by record: records cannot be read apart")
                    offsets = []
    except OSError as error:
        offsets, refusal = [], ("unreadable", f"{type(error).__name__}: {error}")
    if not offsets and refusal is None:
        refusal = ("warc-without-responses", "no HTTP response record in the file")
    return {"offsets": offsets, "refusal": refusal, "compressed": compressed}


def _stray_bytes(handle: BinaryIO, records: list[tuple[int, int]]) -> tuple[int, int | None] | None:
    """Where the first bytes of an uncompressed WARC file lie that neither a record (``records``: offset and block length
    of each, in file order) nor the line ends after one hold, and the offset of the record before them when they follow
    its block at once (its length is wrong: it ends elsewhere), or None. Quirks mode reads on at the next record past
    such bytes, and past a record whose first line they damaged."""
    size = handle.seek(0, os.SEEK_END)
    next_starts = [start for start, _ in records[1:]] + [size]
    for (start, length), next_start in zip([(0, -1), *records], [records[0][0], *next_starts]):
        end = start if length < 0 else _block_start(handle, start)
        if end is None:
            continue
        end += max(length, 0)
        if next_start < end:
            if next_start == size:
                continue  # the last record cut short: its own outcome says so (``read_record``)
            return start, start  # its length runs into the next record
        if (stray := _first_other_than_line_ends(handle, end, next_start)) is not None:
            return stray, start if length >= 0 and stray == end else None
    return None


def _first_other_than_line_ends(handle: BinaryIO, start: int, end: int) -> int | None:
    """The offset of the first byte from ``start`` to ``end`` that is no CR or LF, or None."""
    handle.seek(start)
    while start < end and (chunk := handle.read(min(end - start, _INFLATE_READ))):
        if rest := chunk.lstrip(b"\r\n"):
            return start + len(chunk) - len(rest)
        start += len(chunk)
    return None


def _block_start(handle: BinaryIO, start: int) -> int | None:
    """The offset where the block of the record at ``start`` begins (``_header_end``), or None when no blank line comes
    within ``_HEADER_MAX``."""
    handle.seek(start)
    head = b""
    while len(head) < _HEADER_MAX and (chunk := handle.read(_HEADER_READ if not head else _HEADER_MAX - len(head))):
        head += chunk
        if (end := _header_end(head)) is not None:
            return start + end
    return None


def _header_end(record: bytes) -> int | None:
    """Where the block of a record's bytes begins, after its header and the blank line that ends it (``_BLANK_LINE``),
    or None."""
    blank = _BLANK_LINE.search(record, 0, _HEADER_MAX)
    return blank.end() if blank else None


def _first_unread_member(handle: BinaryIO, records: set[int]) -> int | None:
    """The offset of the first gzip member of a compressed WARC file that holds a record although none was read there
    (``records``: the offsets of those read), or None: a record before it that declares more bytes than its member holds
    makes the reader run on into the next member and past the record there. Members are found by their first bytes
    (``_MEMBER_START``); those bytes also occur inside a member (a response may hold a ``.warc.gz``), so each is tried:
    it must inflate to a record and begin where the member of the record read before it ends."""
    read = sorted(records)
    handle.seek(0)
    position, tail = 0, b""
    while chunk := handle.read(_INFLATE_READ):
        data = tail + chunk
        start = position - len(tail)
        found = data.find(_MEMBER_START)
        while found >= 0:
            at = start + found
            before = read[bisect.bisect_left(read, at) - 1] if read and read[0] < at else None
            if at not in records and _opens_record(handle, at) and (before is None or _member_end(handle, before) == at):
                return at
            found = data.find(_MEMBER_START, found + 1)
        position += len(chunk)
        tail = data[-(len(_MEMBER_START) - 1):]
        handle.seek(position)
    return None


def _opens_record(handle: BinaryIO, offset: int) -> bool:
    """Whether a gzip member at ``offset`` inflates to the start of a WARC record."""
    handle.seek(offset)
    try:
        return zlib.decompressobj(31).decompress(handle.read(_HEADER_READ), len(b"WARC/")) == b"WARC/"
    except zlib.error:
        return False


def _member_end(handle: BinaryIO, offset: int) -> int | None:
    """Where the gzip member at ``offset`` ends (inflated a step at a time, the output dropped), or None when it is
    damaged or cut short."""
    handle.seek(offset)
    inflater, position = zlib.decompressobj(31), offset
    data = handle.read(_INFLATE_READ)
    try:
        while data and not inflater.eof:
            inflater.decompress(data, _INFLATE_READ)
            rest = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            position += len(data) - len(rest)
            data = rest if rest or inflater.eof else handle.read(_INFLATE_READ)
    except zlib.error:
        return None
    return position if inflater.eof else None


def _member_mismatch(handle: BinaryIO, offset: int) -> tuple[str, str] | None:
    """Why the record in the gzip member at ``offset`` does not fill its member, or None: the record ends before the
    length it declares (``warc-truncated``), or the member holds more than that (``warc-corrupt``: its
    ``Content-Length`` is wrong). Only a record that is about to be released is checked; a member too large to hold in
    memory is not (``read_record`` rejects its record)."""
    handle.seek(offset)
    inflater = zlib.decompressobj(31)
    try:
        record = inflater.decompress(handle.read(_INFLATE_READ), _MEMBER_MAX + 1)
        while not inflater.eof and len(record) <= _MEMBER_MAX and (more := inflater.unconsumed_tail or handle.read(_INFLATE_READ)):
            record += inflater.decompress(more, _MEMBER_MAX + 1 - len(record))
    except zlib.error:
        return None  # a damaged member: the record's own reading has said so
    if len(record) > _MEMBER_MAX or not inflater.eof or (block := _header_end(record)) is None:
        return None
    if not (declared := _CONTENT_LENGTH.search(record, 0, block)):
        return None
    length, held = int(declared[1]), len(record) - block
    if held < length:
        return "warc-truncated", f"the record ends after {held} of its {length} bytes"
    if record[block + length:].strip(b"\r\n"):
        return "warc-corrupt", f"the record declares {length} bytes but its gzip member holds {held}"
    return None


def read_records(raw_root: Path | RemoteFolder, entries: list[WarcRecordEntry]) -> Iterator[tuple[WarcRecordEntry, tuple[dict, list[tuple[str, str]]] | Exception]]:
    """Each entry with its ingest record and repairs (``read_record``), or the error that keeps it from being a document.

    Entries are read file by file in offset order, each WARC file opened once; an error on one
    record never stops the others.
    """
    for container, group in groupby(sorted(entries, key=attrgetter("container", "offset")), key=attrgetter("container")):
        try:
            handle = _open(raw_root, container)
        except OSError as error:
            failure = RejectedFile("unreadable", f"{type(error).__name__}: {error}")
            yield from ((entry, failure) for entry in group)
            continue
        with handle:
            for entry in group:
                try:
                    if entry.refusal:
                        raise RejectedFile(*entry.refusal)
                    outcome = read_record(handle, entry)
                except Exception as error:  # noqa: BLE001 - one bad record must not stop the others
                    outcome = error
                yield entry, outcome


def read_record(handle: BinaryIO, entry: WarcRecordEntry) -> tuple[dict, list[tuple[str, str]]]:
    """The ingest record of the response record at ``entry.offset`` of the open WARC file, and its repairs.

    Raises RejectedFile when the record is not a fetched HTML page.
    """
    handle.seek(entry.offset)
    if entry.compressed and handle.read(2) != _GZIP_MAGIC:
        raise RejectedFile("warc-corrupt", f"no gzip member at byte {entry.offset}: the file changed since it was listed")
    if not entry.compressed and (cut := _cut_short(handle, entry.offset)):
        raise RejectedFile("warc-truncated", cut)
    handle.seek(entry.offset)
    try:
        record = next(iter(ArchiveIterator(handle, parse_http=True, auto_decode="none", quirks_mode=True)), None)
        if record is None or record.record_type != WarcRecordType.response:
            raise RejectedFile("warc-corrupt", f"no response record at byte {entry.offset}: the file changed since it was listed")
        if not record.is_http or record.http_headers is None:
            raise RejectedFile("not-http", f"response record of {record.headers.get('WARC-Target-URI')!r} holds no HTTP response")
        headers = record.http_headers
        if headers.status_code is None and len(record.reader.read(wanted := min(record.content_length, MAX_DECOMPRESSED_BYTES))) < wanted:
            raise RejectedFile("warc-truncated", f"the record ends before its HTTP response ({record.content_length} bytes declared)")
        _check_status(headers.status_code, headers.get("Location"))
        mime = (record.http_content_type or "").strip().lower()
        if mime not in HTML_TYPES:
            raise RejectedFile("not-html", f"Content-Type {mime or 'missing'}")
        if (truncated := record.headers.get("WARC-Truncated")) is not None:
            raise RejectedFile("warc-truncated", f"the crawler truncated the record (WARC-Truncated: {truncated})")
        if record.content_length > MAX_DECOMPRESSED_BYTES:
            raise RejectedFile("too-large", f"{record.content_length} bytes > limit {MAX_DECOMPRESSED_BYTES}")
        body = record.reader.read(MAX_DECOMPRESSED_BYTES + 1)
    except OSError as error:
        raise RejectedFile("warc-corrupt", f"record at byte {entry.offset} could not be read: {error}") from error
    if len(body) < record.content_length:
        raise RejectedFile("warc-truncated", f"the record ends after {len(body)} of {record.content_length} payload bytes")
    if entry.compressed and (mismatch := _member_mismatch(handle, entry.offset)):  # the record is read: the handle is free
        raise RejectedFile(*mismatch)
    payload = _decode_transfer(body, headers.get("Transfer-Encoding"), headers.get("Content-Encoding"))
    if not payload.strip():
        raise RejectedFile("empty", "response holds no content")
    text, repairs = _decode_html(payload, record.http_charset)
    if not text.strip():
        raise RejectedFile("empty", "response holds no text")
    check_cost(text, "html")
    uri = record.headers.get("WARC-Target-URI") or ""
    url = http_url(uri)
    if uri and url is None:
        repairs.append(("metadata-dropped", f"WARC-Target-URI {uri[:200]!r} is not an absolute http(s) URL"))
    return {
        "doc_id": doc_id_for(entry.rel_path),
        "source_path": entry.rel_path,
        "source_sha256": hashlib.sha256(payload).hexdigest(),
        "format": "html",
        "bytes": len(payload),
        "text": text,
        "url": url,
        "outlet": None,
        "published_date": None,
        "language": None,
        "fetched_at": record.headers.get("WARC-Date"),
    }, repairs


def _cut_short(handle: BinaryIO, offset: int) -> str | None:
    """Why the record at ``offset`` of an uncompressed WARC file is cut short (its ``Content-Length`` runs past the
    end of the file), or None."""
    size = handle.seek(0, os.SEEK_END)
    block = _block_start(handle, offset)
    if block is None:
        return None
    handle.seek(offset)
    declared = _CONTENT_LENGTH.search(handle.read(block - offset))
    if declared and block + int(declared[1]) > size:
        return f"the record ends after {size - block} of its {int(declared[1])} bytes"
    return None


def fetched_on(warc_date: str | None) -> dt.date | None:
    """The day (UTC) of a ``WARC-Date`` (ISO 8601), or None when it is missing, not a date-time or out of the years
    a publication date may take (a crawler whose clock was reset)."""
    try:
        fetched = dt.datetime.fromisoformat(warc_date or "")
        return plausible(fetched.astimezone(dt.UTC).date() if fetched.tzinfo else fetched.date())
    except (ValueError, OverflowError):  # OverflowError: a time zone that takes it out of the years 1-9999
        return None


def _check_status(status: int | None, location: str | None) -> None:
    """Reject anything but a 2xx response: redirects, client and server errors, the rest."""
    if status is None:
        raise RejectedFile("not-http", "no HTTP status line")
    if 300 <= status < 400:
        raise RejectedFile("http-redirect", f"HTTP {status} to {location or 'no Location'}")
    if 400 <= status < 600:
        raise RejectedFile("http-error", f"HTTP {status}")
    if not 200 <= status < 300:
        raise RejectedFile("http-status", f"HTTP {status} is not a page")


def _decode_transfer(body: bytes, transfer: str | None, encoding: str | None) -> bytes:
    """Undo chunked transfer coding and a gzip, deflate or brotli content coding, as an HTTP client does."""
    import brotli

    coding = (encoding or "").strip().lower()
    if coding not in ("", "identity", "gzip", "x-gzip", "deflate", "br"):
        raise RejectedFile("unsupported-content-encoding", f"Content-Encoding {coding}")
    try:
        if transfer and "chunked" in transfer.lower():
            body = _unchunk(body)
        if coding in ("gzip", "x-gzip", "deflate"):
            body = inflate(body, 47 if coding != "deflate" else 15 if body[:1] == b"\x78" else -15)
        elif coding == "br":
            decompressor = brotli.Decompressor()
            body = decompressor.process(body, output_buffer_limit=MAX_DECOMPRESSED_BYTES + 1)
            if len(body) <= MAX_DECOMPRESSED_BYTES and not decompressor.is_finished():
                raise ValueError("the brotli stream ends before its last block")
    except (zlib.error, ValueError, brotli.error) as error:
        raise RejectedFile("corrupt-content-encoding", f"{type(error).__name__}: {error}") from error
    if len(body) > MAX_DECOMPRESSED_BYTES:
        raise RejectedFile("gzip-too-large", f"decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes")
    return body


def _unchunk(body: bytes) -> bytes:
    """The content of a chunked HTTP body (``size CRLF data CRLF``..., ``0 CRLF CRLF``); ValueError when a
    size is not a hexadecimal number or the body ends inside a chunk."""
    out, position = [], 0
    while True:
        end = body.index(b"\r\n", position)
        size_field = body[position:end].split(b";")[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_field):
            raise ValueError(f"chunk size {size_field[:20]!r} is not a hexadecimal number")
        size = int(size_field, 16)
        if size == 0:
            return b"".join(out)
        if end + 2 + size > len(body):
            raise ValueError("the body ends inside a chunk")
        out.append(body[end + 2:end + 2 + size])
        position = end + 2 + size + 2


def _decode_html(payload: bytes, charset: str | None) -> tuple[str, list[tuple[str, str]]]:
    """Decode with the HTTP charset when it names a WHATWG encoding (iso-8859-1 read as windows-1252),
    else as a raw HTML file (``ingest.decode_bytes``: UTF-8, the page's declared charset, detection).

    Bytes that are valid UTF-8 are UTF-8 whatever the header says (a note records the mismatch); a byte order mark
    wins over the header, as in browsers.
    """
    if payload.startswith(BYTE_ORDER_MARKS):
        return decode_bytes(payload, "html")
    declared = web_encoding(charset) if charset else None
    if declared in (None, "utf-8", *UTF_16):  # UTF-16 is told LE or BE by its NUL bytes, as "utf-16" says neither
        text, repairs = decode_bytes(payload, "html")
        if charset and declared is None:
            return text, [("charset-mismatch", f"HTTP header declares {charset}, not a web text encoding: ignored"), *repairs]
        return text, repairs
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        text, repairs = decode_bytes(payload, "html")
        if payload.isascii():
            return text, repairs
        return text, [("charset-mismatch", f"HTTP header declares {charset} but the bytes are valid UTF-8; decoded as UTF-8"), *repairs]
    try:
        transcoded = payload.decode(declared).encode("utf-8")
    except UnicodeDecodeError:
        text, repairs = decode_bytes(payload, "html")
        return text, [("charset-mismatch", f"HTTP header declares {charset}, which does not decode the bytes"), *repairs]
    return decode_bytes(transcoded, "text")  # decoded as the header says: the page's own declaration is not consulted
