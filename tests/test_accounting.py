"""One run over a raw folder full of hostile files: every good file released, every bad one rejected
with its reason, repairs recorded, the ledger balanced file by file, the raw folder untouched."""
from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import json
import os
import time

import polars as pl
import pytest
from builders import settle
from conftest import html_page, text_page

from commentary import cache, locking, reader, stages, steps
from commentary.ingest import RawFile
from commentary.ledger import ReleaseOutcome, Result, ledger
from commentary.settings import MAX_DECOMPRESSED_BYTES, MAX_RAW_BYTES

FURNITURE_ONLY = ("<html><head><title>Example Outlet</title></head><body><nav><a href='/'>Home</a> <a href='/about'>About</a>"
                  "</nav><footer><p>© 2021 Example Outlet. All rights reserved.</p><a href='/privacy'>Privacy</a></footer></body></html>")
LISTING = ("<html><head><title>Opinion archive</title></head><body><h1>Opinion</h1><ul>"
           + "".join(f"<li><h2><a href='/2021/06/story-{n}'>Headline {n} on the budget debate</a></h2>"
                     f"<p><a href='/2021/06/story-{n}'>Read more</a></p></li>" for n in range(12))
           + "</ul><a href='/page/2'>Next page</a></body></html>")
NON_UTF8_NAME = os.fsdecode(b"caf\xe9.txt")
#: A release outcome under which the run's articles count as released.
NOT_PUBLISHED = ReleaseOutcome(Result.NOTHING_CHANGED, "1.0.0")


def _half(article: tuple[str, str], second: bool) -> tuple[str, str]:
    """A distinct article from a gold one: the first or second half of its paragraphs, under its own title.

    Halves share no passage, so near-duplicate detection keeps them apart.
    """
    title, body = article
    paragraphs = body.split("\n\n")
    middle = len(paragraphs) // 2
    return f"{title}, part {2 if second else 1}", "\n\n".join(paragraphs[middle:] if second else paragraphs[:middle])


def build_raw(root, articles) -> tuple[dict[str, str], set[str], dict[str, str]]:
    """Write the hostile folder; returns released paths -> expected repair (or ""), duplicate paths, rejected paths -> reason."""
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("Secret text outside the raw folder.")
    for folder in ("good", "repaired", "names", "bad", "later"):
        (root / folder).mkdir(parents=True)

    (root / "good/a.txt").write_text(text_page(*_half(articles[0], False)))
    (root / "good/b.html").write_text(html_page(*_half(articles[1], False)))
    (root / "good/c.txt.gz").write_bytes(gzip.compress(text_page(*_half(articles[2], False)).encode()))
    (root / "good/c.txt.gz.meta.json").write_text(json.dumps({"url": "https://example.org/c", "published_date": "2021-06-25"}))
    (root / "repaired/cp1252.txt").write_bytes(text_page(*_half(articles[3], False)).encode("cp1252"))
    (root / "repaired/utf16.txt").write_bytes(text_page(*_half(articles[4], False)).encode("utf-16"))
    (root / "repaired/mojibake.txt").write_text(text_page(*_half(articles[0], True)).encode().decode("latin-1"))
    long_body = "A sentence of a body that never breaks its line. " * 2500
    (root / "repaired/one enormous line.txt").write_text(text_page("A title over one enormous line", long_body))
    (root / "names/with spaces, ünïcødé – 北京.txt").write_text(text_page(*_half(articles[1], True)))
    (root / "names/new\nline.txt").write_text(text_page(*_half(articles[2], True)))
    (root / "later/copy of a.txt").write_text(text_page(*_half(articles[0], False)))

    bad = {
        "empty.txt": b"", "blank.html": b" \n\t\n", "image.txt": b"\x89PNG\r\n\x1a\n" + bytes(64),
        "report.html": b"%PDF-1.7\n" + bytes(64), "cut.txt.gz": gzip.compress(text_page(*articles[3]).encode())[:-30],
        "bomb.txt.gz": gzip.compress(b"a" * (MAX_DECOMPRESSED_BYTES + 1), compresslevel=1),
        "notes.md": b"# Notes", "furniture.html": FURNITURE_ONLY.encode(), "listing.html": LISTING.encode(),
        "bad-date.txt": text_page(*_half(articles[3], True)).encode(), "bad-url.txt": text_page(*_half(articles[4], True)).encode(),
        NON_UTF8_NAME: b"Some text.",
        "feed.html": ('<?xml version="1.0"?><rss version="2.0"><channel><title>Feed</title>' + "".join(
            f"<item><title>{title}</title><description>{body[:300]}</description></item>" for title, body in articles)
            + "</channel></rss>").encode(),
        "export.txt": ("id,title,published\n" + "\n".join(f'{n},"{title}",2024-03-0{n + 1}' for n, (title, _) in
                                                            enumerate(articles))).encode(),
        "crawl.html.gz": gzip.compress(b"WARC/1.1\r\nWARC-Type: warcinfo\r\nContent-Length: 0\r\n\r\n\r\n\r\n"),
    }
    for name, content in bad.items():
        (root / "bad" / name).write_bytes(content)
    (root / "bad/bad-date.txt.meta.json").write_text('{"published_date": "31/12/2021"}')
    (root / "bad/bad-url.txt.meta.json").write_text('{"url": "www.example.org/no-scheme"}')
    (root / "bad/orphan.txt.meta.json").write_text("{}")
    with (root / "bad/huge.txt").open("wb") as handle:
        handle.truncate(MAX_RAW_BYTES + 1)
    (root / "bad/link-out.txt").symlink_to(outside / "secret.txt")
    (root / "bad/linked-folder").symlink_to(outside, target_is_directory=True)
    os.mkfifo(root / "bad/pipe.txt")
    (root / "bad/folder-sidecar.txt").write_text(text_page(*_half(articles[3], False)))
    (root / "bad/folder-sidecar.txt.meta.json").mkdir()
    (root / "bad/fifo-sidecar.txt").write_text(text_page(*_half(articles[4], False)))
    os.mkfifo(root / "bad/fifo-sidecar.txt.meta.json")
    (root / "bad/orphan.txt.meta.json.meta.json").write_text("{}")
    (root / "names/LOUD.TXT.GZ").write_bytes(gzip.compress(text_page(*_half(articles[3], True)).encode()))
    (root / "names" / ("n" * 246 + ".txt")).write_text(text_page(*_half(articles[4], True)))  # its sidecar's name would be too long
    fd, nested = os.open(root / "bad", os.O_RDONLY), []
    while len(os.fsencode(os.path.join(root, "bad", *nested))) < 4096:  # folders nested until the path is longer than PATH_MAX
        nested.append("d" * 250)
        os.mkdir(nested[-1], dir_fd=fd)
        inner = os.open(nested[-1], os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)

    released = {
        "good/a.txt": "", "good/b.html": "", "good/c.txt.gz": "", "repaired/cp1252.txt": "encoding-guessed",
        "repaired/utf16.txt": "", "repaired/mojibake.txt": "mojibake-fixed", "repaired/one enormous line.txt": "long-lines-cut",
        "names/with spaces, ünïcødé – 北京.txt": "", "names/new\nline.txt": "", "names/LOUD.TXT.GZ": "", "names/" + "n" * 246 + ".txt": "",
    }
    rejected = {
        "empty.txt": "empty", "blank.html": "empty", "image.txt": "binary-content", "report.html": "binary-content",
        "cut.txt.gz": "corrupt-gzip", "bomb.txt.gz": "gzip-too-large", "huge.txt": "too-large", "notes.md": "unsupported-format",
        "bad-date.txt": "invalid-sidecar", "bad-url.txt": "invalid-sidecar", "orphan.txt.meta.json": "orphan-sidecar",
        "link-out.txt": "symlink-outside-raw", "linked-folder": "symlinked-folder", "pipe.txt": "not-a-regular-file",
        "caf\\xe9.txt": "file-name-not-utf8", "folder-sidecar.txt": "invalid-sidecar", "fifo-sidecar.txt": "invalid-sidecar",
        "orphan.txt.meta.json.meta.json": "orphan-sidecar", "/".join(nested): "unreadable-folder",
        "furniture.html": "no-article-body",  # the HTML extractor finds no main text
        "listing.html": "not-an-article",     # the HTML extractor's listing-page signal
        "feed.html": "not-an-article", "export.txt": "not-an-article", "crawl.html.gz": "unsupported-format",
    }
    return released, {"later/copy of a.txt"}, {f"bad/{name}": reason for name, reason in rejected.items()}


def _fingerprint(root) -> dict[str, str]:
    """Content hash of every regular file under ``root`` (links and FIFOs not followed)."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    out[path] = hashlib.sha256(handle.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, articles):
    base = tmp_path_factory.mktemp("hostile")
    raw, curated = base / "raw", base / "curated"
    expected = build_raw(raw, articles)
    before = _fingerprint(raw)
    entry = steps.run(raw, curated, shard_size=8)
    return raw, curated, entry, expected, before


def test_every_good_file_is_released(hostile_run):
    _, curated, entry, (released, duplicates, _), _ = hostile_run
    assert entry["release"]["published"]
    articles = reader.scan_table(curated, "articles").collect()
    assert set(articles.filter(pl.col("duplicate_of").is_null())["source_path"]) == set(released)
    assert set(articles.filter(pl.col("duplicate_of").is_not_null())["source_path"]) == duplicates
    assert entry["released"] == len(released) and entry["duplicates"] == len(duplicates)


def test_every_bad_file_is_rejected_with_its_reason_and_a_detail(hostile_run):
    _, curated, entry, (_, _, rejected), _ = hostile_run
    rejects = pl.read_parquet(curated / "runs" / entry["run_id"] / "rejects.parquet")
    assert dict(zip(rejects["source_path"], rejects["reason"], strict=True)) == rejected
    assert rejects["stage"].is_in(["ingest", "clean"]).all()
    assert (rejects["detail"].str.len_chars() > 0).all()


def test_repairs_are_recorded_with_their_reason(hostile_run):
    _, curated, entry, (released, _, _), _ = hostile_run
    repairs = pl.read_parquet(curated / "runs" / entry["run_id"] / "repairs.parquet")
    assert dict(zip(repairs["source_path"], repairs["reason"], strict=True)) == {p: r for p, r in released.items() if r}
    assert entry["repaired"] == sum(1 for r in released.values() if r)
    body = reader.scan_table(curated, "articles").collect().filter(pl.col("source_path") == "repaired/mojibake.txt")["body"][0]
    assert "Ã" not in body


def test_the_ledger_balances_file_by_file(hostile_run):
    raw, curated, entry, (released, duplicates, rejected), _ = hostile_run
    assert entry["seen"] == len(released) + len(duplicates) + len(rejected)
    assert entry["seen"] == entry["released"] + entry["rejected"] + entry["duplicates"]
    assert entry["balanced"] and entry["unaccounted"] == entry["counted_twice_or_unknown"] == []
    assert json.loads((curated / "runs" / entry["run_id"] / "ledger.json").read_text())["balanced"]


def test_the_raw_folder_is_left_untouched(hostile_run):
    raw, _, _, _, before = hostile_run
    assert _fingerprint(raw) == before


@contextlib.contextmanager
def _curated_one_file(tmp_path, article):
    """Hold the run lock over a run of one good file taken up to the curate step; yields its plan."""
    raw, curated = tmp_path / "raw", tmp_path / "curated"
    raw.mkdir()
    (raw / "a.txt").write_text(text_page(*_half(article, False)))
    with locking.run_lock(curated):
        plan = steps.plan_run(raw, curated)
        (job,) = plan.jobs(set())
        steps.ingest_step(job)
        steps.clean_step(job)
        steps.curate_step(plan)
        yield plan


def test_a_file_that_disappears_unaccounted_stops_the_run(tmp_path, articles):
    with _curated_one_file(tmp_path, articles[0]) as plan:
        lost = dataclasses.replace(plan, layout=[cache.Shard(plan.shards[0] + [RawFile("lost.txt", "text", False)], None)])
        with pytest.raises(RuntimeError, match="ledger does not balance"):
            ledger(lost, NOT_PUBLISHED)
    saved = json.loads((plan.run.path / "ledger.json").read_text())
    assert saved["unaccounted"] == ["lost.txt"] and not saved["balanced"]


def test_a_file_counted_twice_stops_the_run_even_when_the_sums_agree(tmp_path, articles):
    with _curated_one_file(tmp_path, articles[0]) as plan:
        # b.txt was seen but has no outcome, while a.txt is both released and rejected: 2 = 1 + 1 + 0
        seen_two = dataclasses.replace(plan, layout=[cache.Shard(plan.shards[0] + [RawFile("b.txt", "text", False)], None)])
        plan.run.write_notes("rejects", "release", 0, [stages.reject("a.txt", "release", "x", "y")])
        with pytest.raises(RuntimeError, match="ledger does not balance"):
            ledger(seen_two, NOT_PUBLISHED)
    saved = json.loads((plan.run.path / "ledger.json").read_text())
    assert saved["unaccounted"] == ["b.txt"] and saved["counted_twice_or_unknown"] == ["a.txt"]


#: Runs ``steps.run`` and prints the ledger as JSON; started under ``setpriv`` so that permissions bite root too.
_RUN = ("import json, sys; from pathlib import Path; from commentary import steps; "
        "print(json.dumps(steps.run(Path(sys.argv[1]), Path(sys.argv[2]), shard_size=8), default=str))")


def test_folders_that_cannot_be_listed_are_rejected_and_balance_the_ledger(tmp_path, articles):
    import shutil
    import subprocess
    import sys

    from conftest import REPO

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop the permission override (CAP_DAC_OVERRIDE) for the run")
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
    if subprocess.run([*drop, "true"], capture_output=True).returncode:
        pytest.skip("setpriv cannot drop the permission override here")
    raw, curated = tmp_path / "raw", tmp_path / "curated"
    for folder, mode in (("closed", 0o000), ("enter-only", 0o111), ("open", 0o755)):
        (raw / folder).mkdir(parents=True)
        (raw / folder / "page.txt").write_text(text_page(*articles[len(folder) % 5]))
        (raw / folder).chmod(mode)
    try:
        ran = subprocess.run([*drop, sys.executable, "-c", _RUN, str(raw), str(curated)], cwd=REPO, capture_output=True, text=True, timeout=300)
    finally:
        for folder in ("closed", "enter-only"):
            (raw / folder).chmod(0o755)
    assert ran.returncode == 0, ran.stderr[-3000:]
    entry = json.loads(ran.stdout.strip().splitlines()[-1])
    assert entry["balanced"] and (entry["seen"], entry["released"], entry["rejected"]) == (3, 1, 2)
    assert entry["rejected_by_reason"] == {"unreadable-folder": 2}
    rejects = pl.read_parquet(curated / "runs" / entry["run_id"] / "rejects.parquet")
    assert sorted(rejects["source_path"]) == ["closed", "enter-only"]
    assert rejects["detail"].str.contains("Permission denied").all()


def test_a_curated_folder_inside_the_raw_folder_is_not_read_as_raw_input(tmp_path, articles, caplog):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text(text_page(*articles[0]))
    first = steps.run(raw, raw / "curated")
    second = steps.run(raw, raw / "curated")
    assert (first["seen"], first["released"]) == (1, 1) and second["seen"] == 1
    assert second["release"]["reason"] == Result.NOTHING_CHANGED
    assert any("lies inside the raw folder" in message for message in caplog.messages)
    with pytest.raises(ValueError, match="is the raw folder"):
        steps.run(raw, raw)


def test_a_file_still_being_written_is_rejected_and_read_by_the_next_run(tmp_path, articles, monkeypatch):
    raw, curated = tmp_path / "raw", tmp_path / "curated"
    raw.mkdir()
    (raw / "a.txt").write_text(text_page(*_half(articles[0], False)))
    (raw / "b.txt").write_text(text_page(*_half(articles[1], False))[:300])  # a scraper is still writing it
    old = (raw / "a.txt").stat()
    os.utime(raw / "a.txt", ns=(old.st_atime_ns, old.st_mtime_ns - 60 * 10**9))
    monkeypatch.setattr("commentary.ingest.MIN_FILE_AGE_SECONDS", 30)
    monkeypatch.setattr("commentary.cache.MIN_FILE_AGE_SECONDS", 30)
    first = steps.run(raw, curated)
    assert first["balanced"] and first["rejected_by_reason"] == {"still-being-written": 1} and first["released"] == 1
    (raw / "b.txt").write_text(text_page(*_half(articles[1], False)))  # finished; a later run finds it settled
    for name in ("a.txt", "b.txt"):
        info = (raw / name).stat()
        os.utime(raw / name, ns=(info.st_atime_ns, info.st_mtime_ns - 60 * 10**9))
    monkeypatch.setattr("commentary.cache.time.time_ns", lambda: old.st_mtime_ns + 3600 * 10**9)  # ctime too has settled
    second = steps.run(raw, curated)
    assert second["balanced"] and second["rejected"] == 0 and second["released"] == 2
    body = reader.scan_table(curated, "articles").collect().filter(pl.col("source_path") == "b.txt")["body"][0]
    assert body.split()[-1] == _half(articles[1], False)[1].split()[-1]  # the whole page, not the part first seen


def test_a_file_being_fetched_again_keeps_its_earlier_version_in_the_release(tmp_path, articles, monkeypatch):
    raw, curated = tmp_path / "raw", tmp_path / "curated"
    raw.mkdir()
    for name, article in (("a.txt", articles[0]), ("b.txt", _half(articles[1], False))):
        (raw / name).write_text(text_page(*article))
    settle(monkeypatch, raw / "a.txt", raw / "b.txt")
    first = steps.run(raw, curated)
    assert first["released"] == 2
    monkeypatch.setattr("commentary.cache.time.time_ns", time.time_ns)
    (raw / "b.txt").write_text(text_page(*articles[1])[:300])  # the scraper is writing a new version of it
    second = steps.run(raw, curated)
    assert second["balanced"] and (second["released"], second["rejected"]) == (2, 0)
    assert not second["release"]["published"] and second["release"]["version"] == first["release"]["version"]  # no churn
    repairs = pl.read_parquet(curated / "runs" / second["run_id"] / "repairs.parquet")
    assert repairs.select("source_path", "reason").rows() == [("b.txt", "earlier-version-kept")]
    assert "still being written" not in repairs["detail"][0] and "was modified" in repairs["detail"][0]
    body = reader.scan_table(curated, "articles").collect().filter(pl.col("source_path") == "b.txt")["body"][0]
    assert body.split()[-1] == _half(articles[1], False)[1].split()[-1]  # the version read before
    (raw / "new.txt").write_text(text_page(*articles[2]))  # never read before: left for a later run
    third = steps.run(raw, curated)
    assert third["rejected_by_reason"] == {"still-being-written": 1} and third["released"] == 2


def _page_with_head(head: str, article: tuple[str, str]) -> str:
    return html_page(*article).replace("<head>", f"<head>{head}", 1)


def test_a_bad_url_from_the_page_is_dropped_and_recorded_never_a_reject(tmp_path, articles):
    raw, curated = tmp_path / "raw", tmp_path / "curated"
    raw.mkdir()
    pages = {
        "relative.html": '<link rel="canonical" href="/2021/06/relative-story">',
        "script.html": "<meta property=\"og:url\" content=\"javascript:alert('x')\">",
        "file.html": '<link rel="canonical" href="file:///etc/passwd">',
        "sidecar.html": '<link rel="canonical" href="/2021/06/relative-story">',
        "upper.html": '<link rel="canonical" href="HTTPS://Example.org/2021/06/story">',
        "ipv6.html": '<link rel="canonical" href="http://[::1/2021/06/story">',  # urllib cannot read it
    }
    for n, (name, head) in enumerate(pages.items()):
        (raw / name).write_text(_page_with_head(head, _half(articles[n % len(articles)], n >= len(articles))))
    (raw / "sidecar.html.meta.json").write_text(json.dumps({"url": "https://example.org/section/page"}))
    entry = steps.run(raw, curated)
    assert entry["balanced"] and entry["rejected"] == 0 and entry["released"] == 6
    urls = dict(reader.scan_table(curated, "articles").collect().select("source_path", "url").iter_rows())
    assert urls == {"relative.html": None, "script.html": None, "file.html": None, "ipv6.html": None,
                    "sidecar.html": "https://example.org/section/page", "upper.html": "https://Example.org/2021/06/story"}
    repairs = pl.read_parquet(curated / "runs" / entry["run_id"] / "repairs.parquet")
    assert dict(zip(repairs["source_path"], repairs["reason"], strict=True)) == dict.fromkeys(
        ["file.html", "ipv6.html", "relative.html", "script.html"], "metadata-dropped")
