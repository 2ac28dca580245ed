"""Reading raw files: formats, compression, sidecars and the reasons for rejecting a file."""
from __future__ import annotations

import codecs
import gzip
import json

import pytest

from commentary.ingest import RejectedFile, discover, doc_id_for, read_raw


def _read(root, name):
    (raw,) = [f for f in discover(root) if f.rel_path == name]
    record, _repairs = read_raw(root, raw)
    return record


def test_discover_finds_nested_files_in_stable_order_and_skips_sidecars(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("b/z.html.gz", "a.txt", "b/a.htm", "a.txt.meta.json", "notes.md"):
        (tmp_path / name).write_bytes(b"x")
    found = discover(tmp_path)
    assert [f.rel_path for f in found] == ["a.txt", "notes.md", "b/a.htm", "b/z.html.gz"]
    assert not any(f.refusal for f in found)
    assert [f.format for f in found] == ["text", None, "html", "html"]
    assert found[-1].compressed


def test_gzip_and_sidecar_are_read(tmp_path):
    (tmp_path / "page.html.gz").write_bytes(gzip.compress("<p>Grüße</p>".encode()))
    (tmp_path / "page.html.gz.meta.json").write_text(json.dumps(
        {"url": "https://example.org/a", "outlet": "Example", "published_date": "2021-06-25", "language": "de"}))
    record = _read(tmp_path, "page.html.gz")
    assert record["text"] == "<p>Grüße</p>"
    assert record["format"] == "html"
    assert record["outlet"] == "Example" and str(record["published_date"]) == "2021-06-25"
    assert record["doc_id"] == doc_id_for("page.html.gz") != doc_id_for("other.html.gz")


@pytest.mark.parametrize("content, encoding", [
    ("Café – “quoted”", "cp1252"),
    ("Café déjà vu", "utf-16"),
    ("Zürich", "utf-8-sig"),
])
def test_text_in_other_encodings_is_decoded(tmp_path, content, encoding):
    (tmp_path / "page.txt").write_bytes(content.encode(encoding))
    assert _read(tmp_path, "page.txt")["text"] == content


@pytest.mark.parametrize("order", ["le", "be"])
def test_utf32_with_a_byte_order_mark_is_not_read_as_utf16(tmp_path, order):
    mark = codecs.BOM_UTF32_LE if order == "le" else codecs.BOM_UTF32_BE
    (tmp_path / "page.txt").write_bytes(mark + "Café déjà vu\n".encode(f"utf-32-{order}"))
    assert _read(tmp_path, "page.txt")["text"] == "Café déjà vu\n"


def test_declared_html_charset_is_honoured(tmp_path):
    html = '<html><head><meta charset="koi8-r"></head><body>Привет</body></html>'
    (tmp_path / "page.html").write_bytes(html.encode("koi8-r"))
    assert "Привет" in _read(tmp_path, "page.html")["text"]


def test_a_page_that_declares_utf_16_itself_is_not_read_as_utf_16(tmp_path):
    html = '<html><head><meta charset="utf-16"></head><body>Café déjà vu</body></html>'
    assert len(html) % 2 == 0  # bytes that UTF-16 would decode, into another script
    (tmp_path / "page.html").write_bytes(html.encode("cp1252"))
    assert "Café déjà vu" in _read(tmp_path, "page.html")["text"]


@pytest.mark.parametrize("name, content, sidecar, reason", [
    ("empty.txt", b"  \n\t\n", None, "empty"),
    ("image.txt", b"\x89PNG\r\n\x1a\n" + bytes(64), None, "binary-content"),
    ("doc.html", b"%PDF-1.7 ...", None, "binary-content"),
    ("cut.txt.gz", gzip.compress(b"hello world " * 100)[:-20], None, "corrupt-gzip"),
    ("bad.txt.gz", b"\x1f\x8bnot gzip at all", None, "corrupt-gzip"),
    ("notes.md", b"# hello", None, "unsupported-format"),
    ("a.txt", b"text", "{not json", "invalid-sidecar"),
    ("a.txt", b"text", '{"published_date": "yesterday"}', "invalid-sidecar"),
    ("a.txt", b"text", '{"url": "javascript:alert(1)"}', "invalid-sidecar"),
    ("a.txt", b"text", '{"outlet": 42}', "invalid-sidecar"),
])
def test_bad_files_are_rejected_with_a_reason(tmp_path, name, content, sidecar, reason):
    (tmp_path / name).write_bytes(content)
    if sidecar is not None:
        (tmp_path / f"{name}.meta.json").write_text(sidecar)
    with pytest.raises(RejectedFile) as error:
        _read(tmp_path, name)
    assert error.value.reason == reason and error.value.detail


def test_symlink_out_of_the_raw_folder_is_not_followed(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    root = tmp_path / "raw"
    root.mkdir()
    (root / "link.txt").symlink_to(outside)
    with pytest.raises(RejectedFile) as error:
        _read(root, "link.txt")
    assert error.value.reason == "symlink-outside-raw"


def test_line_ends_are_normalised(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"one\r\ntwo\rthree\n")
    assert _read(tmp_path, "a.txt")["text"] == "one\ntwo\nthree\n"


def test_long_lines_are_cut_in_text_but_not_in_html(tmp_path):
    from commentary.settings import MAX_LINE_CHARS
    line = "x" * (MAX_LINE_CHARS + 10)
    (tmp_path / "a.txt").write_text(line)
    (tmp_path / "a.html").write_text(f"<p>{line}</p>")
    assert len(_read(tmp_path, "a.txt")["text"]) == MAX_LINE_CHARS
    assert _read(tmp_path, "a.html")["text"].endswith("x</p>")


def _outcome(root, name):
    """``"read"`` or the reject reason of the entry ``name``; raises when discovery did not list it."""
    (raw,) = [f for f in discover(root) if f.rel_path == name]
    try:
        read_raw(root, raw)
    except RejectedFile as error:
        return error.reason
    return "read"


def test_a_sidecar_that_is_a_folder_or_fifo_or_describes_a_sidecar_gets_an_outcome(tmp_path):
    import os

    for name in ("folder.txt", "fifo.txt", "a.txt"):
        (tmp_path / name).write_text("Some text of a page.")
    (tmp_path / "folder.txt.meta.json").mkdir()
    (tmp_path / "folder.txt.meta.json" / "inside.txt").write_text("A file inside a folder named like a sidecar.")
    os.mkfifo(tmp_path / "fifo.txt.meta.json")
    (tmp_path / "a.txt.meta.json").write_text("{}")
    (tmp_path / "a.txt.meta.json.meta.json").write_text("{}")
    assert _outcome(tmp_path, "folder.txt") == "invalid-sidecar"
    assert _outcome(tmp_path, "fifo.txt") == "invalid-sidecar"
    assert _outcome(tmp_path, "folder.txt.meta.json/inside.txt") == "read"
    assert _outcome(tmp_path, "a.txt.meta.json.meta.json") == "orphan-sidecar"
    assert _outcome(tmp_path, "a.txt") == "read"


def test_a_sidecar_named_in_upper_case_is_told_apart_from_an_unknown_file(tmp_path):
    (tmp_path / "a.txt").write_text("Some text of a page.")
    (tmp_path / "a.txt.META.JSON").write_text('{"outlet": "Example"}')
    (raw,) = [f for f in discover(tmp_path) if f.rel_path == "a.txt.META.JSON"]
    with pytest.raises(RejectedFile) as error:
        read_raw(tmp_path, raw)
    assert error.value.reason == "invalid-sidecar" and "in lower case: a.txt is read without this one" in error.value.detail
    assert _outcome(tmp_path, "a.txt") == "read"


def test_a_name_too_long_to_have_a_sidecar_is_read(tmp_path):
    name = "n" * 246 + ".txt"  # 250 bytes: legal; its sidecar's name (260 bytes) is not
    (tmp_path / name).write_text("Some text of a page.")
    assert _outcome(tmp_path, name) == "read"


def test_extensions_are_case_insensitive(tmp_path):
    (tmp_path / "LOUD.TXT.GZ").write_bytes(gzip.compress(b"Some text of a page."))
    (tmp_path / "Page.HTML").write_text("<p>Some text of a page.</p>")
    assert _outcome(tmp_path, "LOUD.TXT.GZ") == "read" and _outcome(tmp_path, "Page.HTML") == "read"
    assert _read(tmp_path, "LOUD.TXT.GZ")["text"] == "Some text of a page."


def test_a_file_modified_moments_ago_is_left_for_a_later_run(tmp_path, monkeypatch):
    (tmp_path / "fresh.txt").write_text("A page a scraper is still writing")
    monkeypatch.setattr("commentary.ingest.MIN_FILE_AGE_SECONDS", 60)
    assert _outcome(tmp_path, "fresh.txt") == "still-being-written"
    (tmp_path / "old.txt").write_text("A page written long ago.")
    _age(tmp_path / "old.txt", 120)
    (tmp_path / "old.txt.meta.json").write_text("{}")
    assert _outcome(tmp_path, "old.txt") == "still-being-written"  # its sidecar is fresh
    _age(tmp_path / "old.txt.meta.json", 120)
    assert _outcome(tmp_path, "old.txt") == "read"


def test_a_file_dated_in_the_future_is_told_so(tmp_path):
    (tmp_path / "ahead.txt").write_text("A page copied from a machine whose clock runs ahead.")
    _age(tmp_path / "ahead.txt", -3600)
    (raw,) = discover(tmp_path)
    with pytest.raises(RejectedFile) as error:
        read_raw(tmp_path, raw)
    assert error.value.reason == "still-being-written" and "3600 s after it was read (a clock ahead)" in error.value.detail


def _age(path, seconds):
    """Set the modification time of ``path`` ``seconds`` back."""
    import os

    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns - seconds * 10**9))


@pytest.mark.parametrize("sidecar, accepted", [
    ({"published_date": "2021-02-28T99:99 garbage"}, False),
    ({"published_date": "2999-01-01"}, False),
    ({"published_date": "2099-12-31"}, True),        # fixed bounds: the same outcome on every day a run is made
    ({"published_date": "1899-12-31"}, False),
    ({"published_date": "2021-02-30"}, False),
    ({"published_date": "2021-02-28T10:15:00+01:00"}, True),
    ({"url": "http://"}, False),
    ({"url": "https:///path-without-host"}, False),
    ({"url": "HTTPS://Example.org/a"}, True),
    ({"url": "http://[::1"}, False),                 # once an ingest failure instead of a rejected sidecar
    ({"url": "http://example.org:99999/a"}, False),
    ({"url": "http://exa mple.org/a"}, False),
    ({"language": "en-a-bbb-x-a-ccc"}, True),        # extension and private-use subtags of one character
    ({"language": "English (UK)"}, False),
])
def test_sidecar_values_are_checked_strictly(tmp_path, sidecar, accepted):
    (tmp_path / "a.txt").write_text("Some text of a page.")
    (tmp_path / "a.txt.meta.json").write_text(json.dumps(sidecar))
    assert _outcome(tmp_path, "a.txt") == ("read" if accepted else "invalid-sidecar")


@pytest.mark.parametrize(("given", "tag"), [("EN-us", "en-US"), ("en_GB", "en-GB"), ("zh-hant-tw", "zh-Hant-TW"), ("es-419", "es-419")])
def test_a_sidecar_language_is_a_language_tag_in_one_case_as_on_pages(tmp_path, given, tag):
    (tmp_path / "a.txt").write_text("Some text of a page.")
    (tmp_path / "a.txt.meta.json").write_text(json.dumps({"language": given}))
    assert _read(tmp_path, "a.txt")["language"] == tag


def test_a_sidecar_with_a_utf8_byte_order_mark_is_read(tmp_path):
    (tmp_path / "a.txt").write_text("Some text of a page.")
    (tmp_path / "a.txt.meta.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"url": "HTTPS://example.org/a"}).encode())
    assert _read(tmp_path, "a.txt")["url"] == "https://example.org/a"


def test_an_html_page_too_costly_to_parse_is_rejected_unparsed(tmp_path, monkeypatch):
    monkeypatch.setattr("commentary.ingest.MAX_HTML_CHARS", 1000)
    (tmp_path / "huge.html").write_text("<p>" + "word " * 400 + "</p>")
    (tmp_path / "huge.txt").write_text("word " * 400)
    assert _outcome(tmp_path, "huge.html") == "too-costly" and _outcome(tmp_path, "huge.txt") == "read"


def test_a_text_file_of_too_many_lines_to_clean_is_rejected_uncleaned(tmp_path, monkeypatch):
    monkeypatch.setattr("commentary.ingest.MAX_TEXT_LINES", 100)
    (tmp_path / "lines.txt").write_text("Title\n\n" + "a\n" * 200)
    (tmp_path / "short.txt").write_text("Title\n\n" + "a\n" * 98)  # 100 lines, the last one ended by its line break
    assert _outcome(tmp_path, "lines.txt") == "too-costly" and _outcome(tmp_path, "short.txt") == "read"


def test_a_folder_that_cannot_be_listed_or_whose_path_is_too_long_is_rejected(tmp_path):
    import os

    deep = tmp_path / "deep"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY)
    try:  # nest folders by descriptor until the path is longer than PATH_MAX (4096)
        for _ in range(20):
            os.mkdir("d" * 250, dir_fd=fd)
            inner = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        with open(os.open("lost.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "w") as handle:
            handle.write("A page at the end of a path too long to open.")
    finally:
        os.close(fd)
    found = discover(tmp_path)
    refused = [f for f in found if f.refusal]
    assert len(refused) == 1 and refused[0].refusal[0] == "unreadable-folder"
    assert refused[0].rel_path.startswith("deep/" + "d" * 250) and "too long" in refused[0].refusal[1]


def _reach_of_branch(items) -> int | None:
    """Characters a branch of a parsed pattern may match before its first item that matches only non-ASCII; None when
    the branch has no such item or holds constructs this walk does not follow."""
    import re._constants as sre

    def ascii_possible(op, value) -> bool:
        if op == sre.LITERAL:
            return value < 128
        if op == sre.IN:
            return any(o in (sre.NEGATE, sre.CATEGORY) or (o == sre.LITERAL and v < 128) or (o == sre.RANGE and v[0] < 128)
                       for o, v in value)
        if op in (sre.ANY, sre.NOT_LITERAL):
            return True
        raise ValueError(f"unexpected pattern item {op}")

    consumed = 0
    for op, value in items:
        if op == sre.AT:
            continue
        if op == sre.MAX_REPEAT:
            low, high, (sub,) = value[0], value[1], value[2].data
            if high != 1:
                return None
            if low == 1 and not ascii_possible(*sub):
                return consumed
            consumed += 1
            continue
        if not ascii_possible(op, value):
            return consumed
        consumed += 1
    return None


def test_mojibake_check_tries_every_start_ftfy_could_match_at():
    import re
    import re._constants as sre
    import re._parser as sre_parse

    from ftfy.badness import BADNESS_RE

    from commentary import ingest
    assert not BADNESS_RE.flags & re.IGNORECASE  # a non-ASCII literal then matches only non-ASCII
    (op, (_, branches)), = sre_parse.parse(BADNESS_RE.pattern, BADNESS_RE.flags).data
    assert op == sre.BRANCH
    reaches = [_reach_of_branch(list(branch)) for branch in branches]
    assert None not in reaches and max(reaches) == ingest._BADNESS_REACH


@pytest.mark.parametrize("seed", range(3))
def test_mojibake_check_agrees_with_ftfy(seed):
    import random

    from ftfy.badness import is_bad

    from commentary import ingest
    rng = random.Random(seed)
    alphabet = ("ab Z.,!?\n\t-'\"0"  # ASCII, and characters of the pattern's branches
                "ÂÃÎÐØÙàâóéè€œŠš¢£Ÿž\xa0\xad®©°·»–—´‚Ä√±∂≈βΒΓВГРСЂўāœŒ×²°µ“”‘’…™\x85\x9d")
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(20000)]
    assert [ingest._looks_bad(text) for text in texts] == [is_bad(text) for text in texts]
    assert 1000 < sum(map(is_bad, texts)) < len(texts) - 1000  # both outcomes are tried
