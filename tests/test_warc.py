"""WARC input: response records are documents, every one with exactly one outcome; other records are not documents."""
from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import os
import random
import re
import time
import zlib
from pathlib import Path

import brotli
import polars as pl
import pytest
from builders import PASSED, clean_run, settle
from conftest import html_page
from fastwarc.warc import WarcRecord, WarcRecordType

from commentary import cache, ledger, stages, steps, tables, warc
from commentary.ingest import RawFile, RejectedFile, discover, read_raw


def _record(kind: WarcRecordType, number: int, block: bytes, uri: str = "https://example.org/", content_type: str | None = None) -> bytes:
    """One WARC record written by fastwarc, with a fixed id and date so that the file is the same every time."""
    record = WarcRecord()
    record.init_headers(record_type=kind, record_urn=f"uuid:00000000-0000-0000-0000-{number:012d}".encode())
    record.headers["WARC-Date"] = f"2026-11-02T10:00:{number:02d}Z"
    record.headers["WARC-Target-URI"] = uri
    if content_type or kind in (WarcRecordType.response, WarcRecordType.request):
        record.headers["Content-Type"] = content_type or f"application/http; msgtype={'response' if kind == WarcRecordType.response else 'request'}"
    record.set_bytes_content(block)
    out = io.BytesIO()
    record.write(out)
    return out.getvalue()


def _http(status: str, headers: dict[str, str], body: bytes) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body


def _chunked(data: bytes, size: int = 700) -> bytes:
    pieces = [data[i:i + size] for i in range(0, len(data), size)]
    return b"".join(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in pieces) + b"0\r\n\r\n"


#: Every kind of record, with the outcome its response records must get (None: not a document).
def _crawl(articles) -> list[tuple[bytes, str | None]]:
    (title_a, body_a), (title_b, body_b), (title_c, body_c) = articles[:3]
    cp1252_page = html_page(title_a, body_a + "\n\nThe café's terrace was full.").encode("cp1252")
    gzip_page = gzip.compress(html_page(title_b, body_b).encode(), mtime=0)
    R = WarcRecordType
    return [
        (_record(R.warcinfo, 1, b"software: test\r\n", content_type="application/warc-fields"), None),
        (_record(R.request, 2, b"GET /a HTTP/1.1\r\nHost: example.org\r\n\r\n", "https://example.org/a"), None),
        (_record(R.response, 3, _http("200 OK", {"Content-Type": "text/html; charset=windows-1252"}, cp1252_page), "https://example.org/a"), "released"),
        (_record(R.metadata, 4, b"fetchTimeMs: 120\r\n", "https://example.org/a", "application/warc-fields"), None),
        (_record(R.response, 5, _http("200 OK", {"Content-Type": "text/html", "Content-Encoding": "gzip", "Transfer-Encoding": "chunked"},
                                      _chunked(gzip_page)), "https://example.org/b"), "released"),
        (_record(R.response, 6, _http("200 OK", {"Content-Type": "application/pdf"}, b"%PDF-1.7 ..."), "https://example.org/c.pdf"), "not-html"),
        (_record(R.response, 7, _http("404 Not Found", {"Content-Type": "text/html"}, b"<html><body>Not found</body></html>"),
                 "https://example.org/gone"), "http-error"),
        (_record(R.response, 8, _http("503 Service Unavailable", {"Content-Type": "text/html"}, b"<html>busy</html>"),
                 "https://example.org/busy"), "http-error"),
        (_record(R.response, 9, _http("301 Moved Permanently", {"Location": "https://example.org/c", "Content-Type": "text/html"}, b""),
                 "http://example.org/c"), "http-redirect"),
        (_record(R.resource, 10, b"<html><body>a stored resource</body></html>", "https://example.org/r", "text/html"), None),
        (_record(R.response, 11, _http("200 OK", {"Content-Type": "text/html; charset=utf-8"}, html_page(title_c, body_c).encode()),
                 "https://example.org/c"), "released"),
    ]


def write_warc(path: Path, records: list[bytes], compressed: bool) -> list[int]:
    """Write records (each its own gzip member when ``compressed``); returns each record's offset."""
    offsets, data = [], b""
    for block in records:
        offsets.append(len(data))
        data += gzip.compress(block, mtime=0) if compressed else block
    path.write_bytes(data)
    return offsets


@pytest.fixture
def crawl_raw(tmp_path, articles) -> tuple[Path, dict[str, str | None]]:
    """A raw folder with ``crawl.warc.gz`` (every kind of record) and ``cut.warc`` (its last record truncated);
    returns the folder and each response record's expected outcome by source path."""
    raw = tmp_path / "raw"
    raw.mkdir()
    crawl = _crawl(articles)
    offsets = write_warc(raw / "crawl.warc.gz", [block for block, _ in crawl], compressed=True)
    expected = {f"crawl.warc.gz#{offset}": outcome for offset, (_, outcome) in zip(offsets, crawl, strict=True) if outcome}
    title, body = articles[3]
    whole = _record(WarcRecordType.response, 12, _http("200 OK", {"Content-Type": "text/html"}, html_page(title, body).encode()),
                    "https://example.org/d")
    cut = write_warc(raw / "cut.warc", [crawl[2][0], whole], compressed=False)
    (raw / "cut.warc").write_bytes((raw / "cut.warc").read_bytes()[:-700])
    expected |= {f"cut.warc#{cut[0]}": "released", f"cut.warc#{cut[1]}": "warc-truncated"}
    return raw, expected


def _run(raw: Path, curated: Path, shard_size: int = 500) -> tuple[steps.RunPlan, dict]:
    plan = clean_run(raw, curated, shard_size)
    steps.curate_step(plan)
    outcome = steps.release_step(plan, PASSED)
    return plan, ledger.ledger(plan, outcome)


@pytest.mark.parametrize(("warc_date", "day"), [("2026-11-02T23:30:00-05:00", dt.date(2026, 11, 3)),
                                               ("2026-11-02T10:00:03Z", dt.date(2026, 11, 2)),
                                               ("2026-11-02T10:00:03", dt.date(2026, 11, 2)),
                                               ("yesterday", None), (None, None),
                                               # out of range once in UTC, or a crawler's clock reset: no fetch day
                                               ("0001-01-01T00:00:00+01:00", None), ("9999-12-31T23:00:00Z", None),
                                               ("1970-01-01T00:00:00Z", None)])
def test_a_record_was_fetched_on_its_warc_date_in_utc(warc_date, day):
    assert warc.fetched_on(warc_date) == day


def test_a_record_dated_more_than_a_day_after_its_fetch_loses_that_date_to_the_next_source(tmp_path, articles):
    title, body = articles[0]

    def page(published: str, dateline: str = "November 1, 2026") -> bytes:  # its metadata date and its visible dateline
        html = html_page(title, f"{dateline}\n\n" + body).replace(
            "</title>", f"</title><meta property='article:published_time' content='{published}'>")
        return _http("200 OK", {"Content-Type": "text/html"}, html.encode())

    fetched_on_2026_11_02 = [page("2026-11-04"), page("2026-11-03"), page("2026-11-01", dateline="November 9, 2026")]
    write_warc(tmp_path / "crawl.warc", [_record(WarcRecordType.response, n, block, f"https://example.org/{n}")
                                         for n, block in enumerate(fetched_on_2026_11_02, start=1)], False)
    ingested, _, _ = stages.ingest(tmp_path, warc.expand(tmp_path, discover(tmp_path), None))
    articles, _, _, _, repairs = stages.clean(ingested)
    assert dict(articles.select("url", "published_date").iter_rows()) == {
        "https://example.org/1": dt.date(2026, 11, 1), "https://example.org/2": dt.date(2026, 11, 3),
        "https://example.org/3": dt.date(2026, 11, 1)}
    # Only a date passed over is named: the third page's later dateline was never its date.
    assert [row["detail"] for row in repairs if row["reason"] == "metadata-dropped"] == [
        "published_date 2026-11-04 from og is more than a day after the page was fetched, on 2026-11-02"]


def test_each_response_record_is_one_document_and_other_records_are_none(crawl_raw):
    raw, expected = crawl_raw
    found = warc.expand(raw, [RawFile("crawl.warc.gz", "warc", True), RawFile("cut.warc", "warc", False)], None)
    assert sorted(entry.rel_path for entry in found) == sorted(expected)
    assert all(entry.file in ("crawl.warc.gz", "cut.warc") for entry in found)


def test_every_response_record_gets_exactly_its_outcome_in_the_ledger(crawl_raw, tmp_path):
    raw, expected = crawl_raw
    plan, entry = _run(raw, tmp_path / "curated")
    assert entry["balanced"] and entry["seen"] == len(expected)
    rejects = dict(ledger.merge_notes(plan.run, "rejects").select("source_path", "reason").iter_rows())
    released = set(plan.run.articles().frame(["source_path"])["source_path"])
    assert released == {path for path, outcome in expected.items() if outcome == "released"}
    assert rejects == {path: outcome for path, outcome in expected.items() if outcome != "released"}
    assert entry["rejected_by_reason"] == {"http-error": 2, "http-redirect": 1, "not-html": 1, "warc-truncated": 1}


def test_a_record_is_decoded_with_its_http_charset_and_keeps_url_and_fetch_date(crawl_raw, tmp_path):
    raw, expected = crawl_raw
    plan, _ = _run(raw, tmp_path / "curated")
    ingested = tables.read_parquet(plan.run.shards("ingest"), tables.INGESTED)
    first = ingested.filter(pl.col("url") == "https://example.org/a")
    assert "The café" in first["text"][0]
    assert first["source_path"][0] in expected and first["fetched_at"][0] == "2026-11-02T10:00:03Z"
    repairs = ledger.merge_notes(plan.run, "repairs")
    assert repairs.filter(pl.col("source_path") == first["source_path"][0]).is_empty()  # no guessed encoding
    gzipped = ingested.filter(pl.col("url") == "https://example.org/b")
    assert gzipped["text"][0].startswith("<!DOCTYPE html>")
    released = pl.read_parquet(tmp_path / "curated" / "latest" / "articles" / "*.parquet")
    assert released.filter(pl.col("url") == "https://example.org/a")["field_sources"].struct.field("url").unique().to_list() == ["warc"]


def test_the_same_warc_input_gives_byte_identical_releases(crawl_raw, tmp_path):
    raw, _ = crawl_raw
    versions = [(_run(raw, tmp_path / name)[1]["release"]["version"], tmp_path / name) for name in ("one", "two")]
    files = [{path.relative_to(folder / "releases" / version).as_posix(): path.read_bytes()
              for path in sorted((folder / "releases" / version).rglob("*.parquet"))} for version, folder in versions]
    assert files[0] and files[0] == files[1]


def test_one_warc_file_is_spread_over_several_shards(crawl_raw, tmp_path):
    raw, expected = crawl_raw
    plan = steps.plan_run(raw, tmp_path / "curated", shard_size=2)
    holding = [{raw_file.file for raw_file in shard} for shard in plan.shards]
    assert sum("crawl.warc.gz" in files for files in holding) >= 3
    assert sorted(f.rel_path for shard in plan.shards for f in shard) == sorted(expected)


def test_an_unchanged_warc_file_is_neither_scanned_nor_read_again(crawl_raw, tmp_path, monkeypatch, articles):
    raw, _ = crawl_raw
    curated = tmp_path / "curated"
    monkeypatch.setattr(cache, "STAMP_SETTLE_SECONDS", 0)
    _run(raw, curated, shard_size=3)
    scan, read_record = warc._scan, warc.read_record
    monkeypatch.setattr(warc, "_scan", lambda *a: pytest.fail("an unchanged WARC file was scanned again"))
    monkeypatch.setattr(warc, "read_record", lambda *a: pytest.fail("a record of an unchanged WARC file was read again"))
    plan = steps.plan_run(raw, curated, 3)
    assert set(steps.link_unchanged_shards(plan)) == set(range(len(plan.layout)))
    monkeypatch.setattr(warc, "_scan", scan)
    monkeypatch.setattr(warc, "read_record", read_record)
    (raw / "crawl.warc.gz").write_bytes((raw / "crawl.warc.gz").read_bytes() + gzip.compress(_crawl(articles)[3][0], mtime=0))
    plan = steps.plan_run(raw, curated, 3)
    assert len(steps.link_unchanged_shards(plan)) < len(plan.layout)  # a changed file is read again


def test_a_corrupt_warc_keeps_the_records_before_the_damage_and_rejects_the_rest(tmp_path, articles):
    raw = tmp_path / "raw"
    raw.mkdir()
    crawl = _crawl(articles)
    good = gzip.compress(crawl[2][0], mtime=0)
    (raw / "broken.warc.gz").write_bytes(good + b"not gzip at all" * 20 + gzip.compress(crawl[10][0], mtime=0))
    (raw / "requests-only.warc").write_bytes(crawl[1][0])
    plan, entry = _run(raw, tmp_path / "curated")
    rejects = dict(ledger.merge_notes(plan.run, "rejects").select("source_path", "reason").iter_rows())
    assert rejects == {"broken.warc.gz": "warc-corrupt", "requests-only.warc": "warc-without-responses"}
    assert entry["balanced"] and entry["released"] == 1


@pytest.mark.parametrize("stray", [b"\x00", b"not a record\r\n"], ids=["byte", "line"])
def test_bytes_between_the_records_of_an_uncompressed_warc_reject_the_file_and_keep_its_records(tmp_path, articles, stray):
    raw = tmp_path / "raw"
    raw.mkdir()
    records = [_record(WarcRecordType.response, n, _http("200 OK", {"Content-Type": "text/html"}, html_page(*articles[n]).encode()),
                       f"https://example.org/{n}") for n in range(3)]
    (raw / "crawl.warc").write_bytes(records[0] + stray + records[1] + records[2])
    plan, entry = _run(raw, tmp_path / "curated")
    rejects = ledger.merge_notes(plan.run, "rejects")
    assert rejects.select("source_path", "reason").rows() == [("crawl.warc", "warc-corrupt")]
    assert f"from byte {len(records[0])} " in rejects["detail"][0]
    assert entry["balanced"] and entry["released"] == (2 if stray == b"\x00" else 3)  # a damaged first line hides its record


@pytest.mark.parametrize("compressed", [False, True], ids=["warc", "warc.gz"])
@pytest.mark.parametrize("lie", [300, -1500], ids=["longer", "shorter"])
def test_a_record_that_declares_a_wrong_length_is_never_released_cut_and_no_other_is_lost(tmp_path, articles, compressed, lie):
    raw = tmp_path / "raw"
    raw.mkdir()
    records = [_record(WarcRecordType.response, n, _http("200 OK", {"Content-Type": "text/html"}, html_page(*articles[n]).encode()),
                       f"https://example.org/{n}") for n in range(3)]
    length = re.search(rb"Content-Length: (\d+)", records[0])
    records[0] = records[0][:length.start(1)] + str(int(length[1]) + lie).encode() + records[0][length.end(1):]
    name = "crawl.warc.gz" if compressed else "crawl.warc"
    offsets = write_warc(raw / name, records, compressed)
    plan, entry = _run(raw, tmp_path / "curated")
    assert entry["balanced"]
    outcomes = dict(ledger.merge_notes(plan.run, "rejects").select("source_path", "reason").iter_rows())
    released = set(pl.read_parquet(tmp_path / "curated" / "latest" / "articles" / "*.parquet")["source_path"])
    assert f"{name}#{offsets[0]}" not in released and f"{name}#{offsets[2]}" in released
    # The record after the lie is released, or the file's refusal tells that it was lost.
    assert f"{name}#{offsets[1]}" in released or outcomes.get(name) == "warc-corrupt"


@pytest.mark.parametrize(("compressed", "kept"), [(False, 9), (True, 9), (False, 30)],
                         ids=["warc-status-line", "warc.gz-status-line", "warc-http-headers"])
def test_a_record_cut_in_its_http_head_is_truncated(tmp_path, articles, compressed, kept):
    raw = tmp_path / "raw"
    raw.mkdir()
    records = [_record(WarcRecordType.response, n, _http("200 OK", {"Content-Type": "text/html"}, html_page(*articles[n]).encode()),
                       f"https://example.org/{n}") for n in (0, 1)]
    cut = records[1][:records[1].index(b"\r\n\r\n") + 4 + kept]  # the WARC headers and the first bytes of the HTTP head
    name = "cut.warc.gz" if compressed else "cut.warc"
    offsets = write_warc(raw / name, [records[0], cut], compressed)
    plan, entry = _run(raw, tmp_path / "curated")
    assert entry["balanced"] and entry["released"] == 1
    assert dict(ledger.merge_notes(plan.run, "rejects").select("source_path", "reason").iter_rows()) == {f"{name}#{offsets[1]}": "warc-truncated"}


def test_a_warc_compressed_as_one_stream_is_rejected_with_its_reason(tmp_path, articles):
    raw = tmp_path / "raw"
    raw.mkdir()
    crawl = _crawl(articles)
    (raw / "single.warc.gz").write_bytes(gzip.compress(crawl[2][0] + crawl[10][0], mtime=0))
    found = warc.expand(raw, [RawFile("single.warc.gz", "warc", True)], None)
    assert [(entry.rel_path, entry.refusal[0]) for entry in found] == [("single.warc.gz", "warc-not-record-gzipped")]


def test_a_warc_file_is_read_as_its_bytes_are_compressed_whatever_its_name(tmp_path, articles):
    raw = tmp_path / "raw"
    raw.mkdir()
    crawl = _crawl(articles)
    plain = write_warc(raw / "plain.warc.gz", [crawl[2][0], crawl[10][0]], compressed=False)
    zipped = write_warc(raw / "zipped.warc", [crawl[2][0], crawl[10][0]], compressed=True)
    found = warc.expand(raw, [RawFile("plain.warc.gz", "warc", True), RawFile("zipped.warc", "warc", False)], None)
    assert [(entry.rel_path, entry.compressed, entry.refusal) for entry in found] == \
        [(f"plain.warc.gz#{plain[0]}", False, None), (f"plain.warc.gz#{plain[1]}", False, None),
         (f"zipped.warc#{zipped[0]}", True, None), (f"zipped.warc#{zipped[1]}", True, None)]
    outcomes = [outcome for _, outcome in warc.read_records(raw, found)]
    assert [record["url"] for record, _ in outcomes] == ["https://example.org/a", "https://example.org/c"] * 2


def test_a_warc_file_under_a_page_name_is_rejected_with_the_name_that_reads_it(tmp_path, articles):
    crawl = _crawl(articles)
    write_warc(tmp_path / "crawl.html.gz", [crawl[2][0], crawl[10][0]], compressed=True)
    write_warc(tmp_path / "crawl.txt", [crawl[2][0]], compressed=False)
    for name in ("crawl.html.gz", "crawl.txt"):
        (entry,) = [raw for raw in discover(tmp_path) if raw.rel_path == name]
        with pytest.raises(RejectedFile) as error:
            read_raw(tmp_path, entry)
        assert error.value.reason == "unsupported-format" and "named .warc or .warc.gz" in error.value.detail
    # a text that only opens with the word
    (tmp_path / "notes.txt").write_text("WARC/1.1 explained: how web archives store a crawl\n\nThe format keeps records.")
    (entry,) = [raw for raw in discover(tmp_path) if raw.rel_path == "notes.txt"]
    assert read_raw(tmp_path, entry)[0]["text"].startswith("WARC/1.1 explained")


def test_a_record_too_costly_to_parse_is_rejected_unparsed_and_a_target_uri_urllib_cannot_read_is_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr("commentary.ingest.MAX_HTML_CHARS", 1000)
    page = lambda words: _http("200 OK", {"Content-Type": "text/html"}, f"<html><body><p>{'word ' * words}</p></body></html>".encode())
    offsets = write_warc(tmp_path / "crawl.warc", [_record(WarcRecordType.response, 1, page(400)),
                                                   _record(WarcRecordType.response, 2, page(20), uri="http://[::1/a")], compressed=False)
    found = warc.expand(tmp_path, [RawFile("crawl.warc", "warc", False)], None)
    (_, costly), (_, odd) = warc.read_records(tmp_path, found)
    assert isinstance(costly, warc.RejectedFile) and costly.reason == "too-costly"
    record, repairs = odd
    assert record["source_path"] == f"crawl.warc#{offsets[1]}" and record["url"] is None
    assert repairs == [("metadata-dropped", "WARC-Target-URI 'http://[::1/a' is not an absolute http(s) URL")]


@pytest.mark.parametrize("compressed", [False, True], ids=["warc", "warc.gz"])
@pytest.mark.parametrize("blank", [b"\n\n", b"\n\r\n"], ids=["lf", "lf-then-crlf"])
def test_a_record_whose_header_lines_end_in_a_bare_line_feed_is_read_with_the_others(tmp_path, articles, compressed, blank):
    def response(n: int, title: str, body: str) -> bytes:
        return _record(WarcRecordType.response, n, _http("200 OK", {"Content-Type": "text/html"}, html_page(title, body).encode()),
                       f"https://example.org/{n}")

    warc_head, rest = response(2, *articles[1]).split(b"\r\n\r\n", 1)
    bare = warc_head.replace(b"\r\n", b"\n") + blank + rest  # as some crawlers write it
    name = "crawl.warc.gz" if compressed else "crawl.warc"
    offsets = write_warc(tmp_path / name, [response(1, *articles[0]), bare, response(3, *articles[2])], compressed)
    ingested, rejects, _ = stages.ingest(tmp_path, warc.expand(tmp_path, discover(tmp_path), None))
    assert not rejects and ingested["source_path"].to_list() == [f"{name}#{offset}" for offset in offsets]
    assert ingested["url"].to_list() == ["https://example.org/1", "https://example.org/2", "https://example.org/3"]


def test_a_warc_file_being_fetched_again_keeps_its_earlier_records_and_a_new_one_waits(tmp_path, articles, monkeypatch):
    raw, curated = tmp_path / "raw", tmp_path / "curated"
    raw.mkdir()
    records = [_record(WarcRecordType.response, n, _http("200 OK", {"Content-Type": "text/html"}, html_page(*articles[n]).encode()),
                       f"https://example.org/{n}") for n in range(3)]
    offsets = write_warc(raw / "crawl.warc.gz", records, True)
    settle(monkeypatch, raw / "crawl.warc.gz")
    first = steps.run(raw, curated)
    assert first["released"] == 3
    monkeypatch.setattr("commentary.cache.time.time_ns", time.time_ns)
    write_warc(raw / "crawl.warc.gz", records[:1], True)  # the crawler is writing the file anew
    write_warc(raw / "new.warc", records[1:2], False)  # never scanned: left for a later run
    second = steps.run(raw, curated)
    assert second["balanced"] and (second["released"], second["rejected_by_reason"]) == (3, {"still-being-written": 1})
    assert not second["release"]["published"]  # the earlier records stay released: nothing removed
    repairs = pl.read_parquet(curated / "runs" / second["run_id"] / "repairs.parquet")
    kept = repairs.filter(pl.col("reason") == "earlier-version-kept")["source_path"].to_list()
    assert set(kept) == {f"crawl.warc.gz#{offset}" for offset in offsets}


@pytest.mark.parametrize("compressed", [False, True], ids=["warc", "warc.gz"])
def test_line_ends_after_the_last_record_and_a_response_holding_a_warc_gz_are_no_damage(tmp_path, articles, compressed):
    rng = random.Random(0)
    archive = gzip.compress(_record(WarcRecordType.response, 9, _http("200 OK", {"Content-Type": "text/html"}, b"<p>inner</p>")), mtime=0)
    download = _http("200 OK", {"Content-Type": "application/gzip"}, rng.randbytes(20_000) + archive + rng.randbytes(20_000))
    records = [_record(WarcRecordType.response, 1, _http("200 OK", {"Content-Type": "text/html"}, html_page(*articles[0]).encode())),
               _record(WarcRecordType.response, 2, download, "https://example.org/crawl.warc.gz"),
               _record(WarcRecordType.response, 3, _http("200 OK", {"Content-Type": "text/html"}, html_page(*articles[1]).encode()))
               + (b"" if compressed else b"\r\n" * 40)]
    name = "crawl.warc.gz" if compressed else "crawl.warc"
    offsets = write_warc(tmp_path / name, records, compressed)
    assert not compressed or archive in (tmp_path / name).read_bytes()  # stored as it is: its gzip member shows
    found = warc.expand(tmp_path, discover(tmp_path), None)
    assert [(entry.rel_path, entry.refusal) for entry in found] == [(f"{name}#{offset}", None) for offset in offsets]


@pytest.mark.parametrize("earlier", [{"offsets": [0, 900], "scan": "quirks"}, {"offsets": [], "scan": "quirks-gaps"}],
                         ids=["records-listed-by-an-older-scan", "no-record-listed"])
def test_a_warc_file_being_written_is_refused_by_the_records_its_last_scan_listed_or_else_whole(tmp_path, monkeypatch, earlier):
    raw, index = tmp_path / "raw", tmp_path / "index"
    raw.mkdir()
    index.mkdir()
    (raw / "crawl.warc.gz").write_bytes(b"\x1f\x8b being written")
    monkeypatch.setattr("commentary.ingest.MIN_FILE_AGE_SECONDS", 30)
    warc._index_path(index, "crawl.warc.gz").write_text(json.dumps({"path": "crawl.warc.gz", "stamp": "1:1:1/-", "refusal": None,
                                                                      "compressed": True, **earlier}))
    found = [(entry.rel_path, entry.refusal[0]) for entry in warc.expand(raw, discover(raw), index)]
    listed = [f"crawl.warc.gz#{offset}" for offset in earlier["offsets"]] or ["crawl.warc.gz"]
    assert found == [(path, "still-being-written") for path in listed]


def test_an_index_made_by_an_earlier_scan_is_made_again(tmp_path):
    stamp = "100:1:1/-"
    for earlier in ({"offsets": [], "refusal": ["warc-not-record-gzipped", "one stream"]},  # before compression was read
                    {"offsets": [0], "refusal": None, "compressed": False}):  # before quirks mode: records missed
        warc._index_path(tmp_path, "plain.warc.gz").write_text(json.dumps({"path": "plain.warc.gz", "stamp": stamp, **earlier}))
        assert warc._load_index(tmp_path, "plain.warc.gz", stamp) is None
    warc._save_index(tmp_path, "plain.warc.gz", stamp, {"offsets": [0, 900], "refusal": None, "compressed": False})
    assert warc._load_index(tmp_path, "plain.warc.gz", stamp)["offsets"] == [0, 900]


def test_content_codings_are_undone_and_a_broken_one_is_a_reason():
    page = b"<html><body><p>text</p></body></html>"
    assert warc._decode_transfer(zlib.compress(page), None, "deflate") == page
    assert warc._decode_transfer(_chunked(page, 5), "chunked", None) == page
    with pytest.raises(warc.RejectedFile) as error:
        warc._decode_transfer(b"not gzip", None, "gzip")
    assert error.value.reason == "corrupt-content-encoding"
    with pytest.raises(warc.RejectedFile) as error:
        warc._decode_transfer(page, None, "compress")
    assert error.value.reason == "unsupported-content-encoding"


#: A page of distinct paragraphs, compressed.
_PAGE = "".join(f"<p>paragraph {n} of the page</p>" for n in range(300)).encode()
_PACKED = {"gzip": gzip.compress(_PAGE, mtime=0), "br": brotli.compress(_PAGE)}


@pytest.mark.parametrize(("transfer", "coding", "body"), [
    ("chunked", None, b"-6\r\nhello\r\n0\r\n\r\n"),              # a negative size once looped for ever
    ("chunked", None, b"zz\r\nhello\r\n0\r\n\r\n"),
    ("chunked", None, b"50\r\nhello\r\n0\r\n\r\n"),              # the body ends inside the chunk
    (None, "gzip", _PACKED["gzip"][:len(_PACKED["gzip"]) // 2]),  # cut short: once released in part
    (None, "gzip", gzip.compress(b"<p>text</p>", mtime=0) + b"more"),
    (None, "br", _PACKED["br"][:len(_PACKED["br"]) // 2]),
])
def test_a_broken_transfer_or_content_coding_is_a_reason_not_a_partial_page(transfer, coding, body):
    with pytest.raises(warc.RejectedFile) as error:
        warc._decode_transfer(body, transfer, coding)
    assert error.value.reason == "corrupt-content-encoding"


def test_every_gzip_member_is_read_and_every_coding_is_capped(monkeypatch):
    assert warc._decode_transfer(gzip.compress(b"first ", mtime=0) + gzip.compress(b"second", mtime=0), None, "gzip") == b"first second"
    monkeypatch.setattr(warc, "MAX_DECOMPRESSED_BYTES", 1000)
    for coding, packed in (("gzip", gzip.compress(bytes(10**6), mtime=0)), ("br", brotli.compress(bytes(10**6)))):
        with pytest.raises(warc.RejectedFile) as error:
            warc._decode_transfer(packed, None, coding)
        assert error.value.reason == "gzip-too-large"


def test_a_loop_of_links_named_warc_is_unreadable(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.warc").symlink_to("b.warc")
    (raw / "b.warc").symlink_to("a.warc")
    found = warc.expand(raw, [RawFile("a.warc", "warc", False)], None)
    assert [(entry.rel_path, entry.refusal[0]) for entry in found] == [("a.warc", "unreadable")]


def test_a_fifo_or_a_link_out_of_the_raw_folder_named_warc_is_refused_unread(tmp_path, articles):
    raw = tmp_path / "raw"
    raw.mkdir()
    os.mkfifo(raw / "pipe.warc")
    outside = tmp_path / "outside.warc"
    write_warc(outside, [_crawl(articles)[2][0]], compressed=False)
    (raw / "link.warc").symlink_to(outside)
    found = warc.expand(raw, [RawFile("link.warc", "warc", False), RawFile("pipe.warc", "warc", False)], None)
    assert [(entry.rel_path, entry.refusal[0]) for entry in found] == [("link.warc", "symlink-outside-raw"), ("pipe.warc", "not-a-regular-file")]


@pytest.mark.parametrize(("charset", "text"), [
    ("unicode_escape", "caf\\xe9 \\u00e9t\\u00e9"),   # a Python codec, not a web encoding: its escapes stay text
    ("iso-8859-1", "“quoted” – dash"),              # read as windows-1252, as browsers do
])
def test_an_http_charset_must_name_a_web_encoding(charset, text):
    payload = f"<html><body><p>{text}</p></body></html>".encode("cp1252" if charset == "iso-8859-1" else "ascii")
    decoded, _ = warc._decode_html(payload, charset)
    assert f"<p>{text}</p>" in decoded


@pytest.mark.parametrize("charset", ["utf-16", "UTF-16LE", "utf-16be"])
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_an_http_charset_of_utf_16_is_a_web_encoding_whose_byte_order_the_bytes_tell(charset, encoding):
    payload = "<html><body><p>Café “quoted”</p></body></html>".encode(encoding)
    decoded, repairs = warc._decode_html(payload, charset)
    assert decoded == "<html><body><p>Café “quoted”</p></body></html>"
    assert repairs == [("encoding-guessed", f"no byte order mark; NUL byte pattern of {encoding}")]  # no "not a web encoding"


def test_an_http_charset_of_utf_16_does_not_turn_text_without_nul_bytes_into_another_script():
    payload = "<html><body><p>Café</p></body></html>".encode()
    assert "<p>Café</p>" in warc._decode_html(payload, "utf-16")[0]
    with pytest.raises(warc.RejectedFile, match="NUL bytes"):  # nor text with a stray NUL byte
        warc._decode_html(payload.replace(b"Caf", b"Ca\x00f"), "utf-16")


@pytest.mark.parametrize("charset", ["windows-1252", "utf-16", "iso-8859-1", None])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_a_byte_order_mark_wins_over_the_http_charset(charset, encoding):
    payload = "<html><body><p>Café “quoted”</p></body></html>".encode(encoding)  # both codecs write a mark
    decoded, repairs = warc._decode_html(payload, charset)
    assert "<p>Café “quoted”</p>" in decoded and repairs == []
