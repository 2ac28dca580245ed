"""Hostile raw files, one at a time: each is rejected with a reason, or decoded and its repair recorded."""
from __future__ import annotations

import datetime as dt
import gzip
import os
import random

import pytest
from conftest import text_page

from commentary import ingest, settings, stages
from commentary.clean import extractors
from commentary.clean.html import extract_html, extract_html_shard, parse_html
from commentary.clean.text import SOURCE_LINE_MIN_CHARS, SOURCE_LINE_MIN_CODE_SHARE
from commentary.ingest import RejectedFile, discover, read_raw
from commentary.settings import (
    BLOCK_PAGE_LINE_MAX_WORDS, BLOCK_PAGE_MAX_WORDS, HTML_ISOLATE_CHARS, HTML_TIMEOUT_SECONDS, KEEP_RUNS, MAX_CONTROL_SHARE, MAX_DECOMPRESSED_BYTES, MAX_HTML_CHARS,
    MAX_LINE_CHARS, MAX_QUARANTINED_SHARE, MAX_RAW_BYTES, MAX_SIDECAR_BYTES, MAX_TEXT_LINES, MIN_QUARANTINED_TO_HOLD,
)

TEXT = "Zürich – “quoted” naïve café, déjà vu. Straße."


def _entry(root, name):
    (raw,) = [f for f in discover(root) if f.rel_path == name]
    return raw


def _read(root, name):
    """(text, repair reasons) of one file."""
    record, repairs = read_raw(root, _entry(root, name))
    return record["text"], [reason for reason, _ in repairs]


def _reject(root, name) -> RejectedFile:
    with pytest.raises(RejectedFile) as error:
        read_raw(root, _entry(root, name))
    assert error.value.detail
    return error.value


def _noise(size: int) -> bytes:
    """Random bytes without NUL and without a known magic number."""
    return bytes(b or 1 for b in random.Random(7).randbytes(size))


@pytest.mark.parametrize("name, content, reason", [
    ("zero.html", b"", "empty"),
    ("blank.txt", b" \n\r\n\t \xc2\xa0\n", "empty"),
    ("photo.html", b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(100), "binary-content"),
    ("noise.txt", _noise(4096), "undecodable"),  # no encoding reads random bytes as text
    ("packed.txt.gz", gzip.compress(b"\x89PNG\r\n\x1a\n" + bytes(200)), "binary-content"),
    ("trailing.txt.gz", gzip.compress(b"hello") + b"not a second member", "corrupt-gzip"),
    ("bomb.txt.gz", gzip.compress(b"a" * (MAX_DECOMPRESSED_BYTES + 1), compresslevel=1), "gzip-too-large"),
])
def test_bad_bytes_are_rejected_with_a_reason(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    assert _reject(tmp_path, name).reason == reason


LEGACY = {
    "cp1251": "Переговоры между делегациями завершились вчера вечером без согласия по ключевым вопросам бюджета.",
    "cp1256": "انتهت المفاوضات بين الوفود مساء أمس دون اتفاق على القضايا الرئيسية في الميزانية. وقال الوزير إن العمل سيستمر.",
    "gb18030": "代表团之间的谈判昨晚结束，在预算的关键问题上没有达成一致。部长表示，工作将在下周继续进行。",
    "cp1252": "Les négociations « sur le budget » – déjà l’été – n’ont abouti à rien, a déclaré le ministre.",
}


@pytest.mark.parametrize("encoding", list(LEGACY))
def test_legacy_encodings_without_a_declaration_are_detected(tmp_path, encoding):
    content = f"A title\n\n{LEGACY[encoding]}\n"
    (tmp_path / "page.txt").write_bytes(content.encode(encoding))
    text, repairs = _read(tmp_path, "page.txt")
    assert text == content and repairs == ["encoding-guessed"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_detected_in_any_script(tmp_path, encoding):
    content = f"A title\n\n{LEGACY['cp1251']}\n\n{LEGACY['gb18030']}\n"
    (tmp_path / "page.txt").write_bytes(content.encode(encoding))
    assert _read(tmp_path, "page.txt") == (content, ["encoding-guessed"])


def test_utf8_after_bytes_that_look_like_a_utf16_mark_is_read_as_utf8(tmp_path):
    (tmp_path / "page.txt").write_bytes(b"\xff\xfe" + f"A title\n\n{LEGACY['cp1251']}\n".encode())
    assert _read(tmp_path, "page.txt") == (f"A title\n\n{LEGACY['cp1251']}\n", ["invalid-bytes-replaced"])


@pytest.mark.parametrize("declared, written, repairs", [
    ("unicode_escape", "cp1251", ["encoding-guessed"]),   # not a web encoding: ignored, the bytes detected
    ("iso-8859-1", "cp1252", []),                         # read as windows-1252, as browsers do
    ("utf-8", "gb18030", ["encoding-guessed"]),           # the declaration does not decode the bytes
])
def test_a_declared_charset_must_be_a_web_encoding_and_agree_with_the_bytes(tmp_path, declared, written, repairs):
    words = {"cp1251": LEGACY["cp1251"], "cp1252": "“Curly” quotes – and dashes — in the title", "gb18030": LEGACY["gb18030"]}[written]
    page = f'<html><head><meta charset="{declared}"><title>{words}</title></head><body><p>{words} \\u0041</p></body></html>'
    (tmp_path / "page.html").write_bytes(page.encode(written))
    assert _read(tmp_path, "page.html") == (page, repairs)


def test_multi_member_gzip_is_read_whole(tmp_path):
    (tmp_path / "two.txt.gz").write_bytes(gzip.compress(b"first part\n") + gzip.compress(b"second part\n"))
    assert _read(tmp_path, "two.txt.gz") == ("first part\nsecond part\n", [])


def test_a_file_over_the_size_cap_is_rejected_unread(tmp_path):
    with (tmp_path / "huge.txt").open("wb") as handle:
        handle.truncate(MAX_RAW_BYTES + 1)  # sparse: nothing is written to disk
    error = _reject(tmp_path, "huge.txt")
    assert error.reason == "too-large" and str(MAX_RAW_BYTES) in error.detail


def test_an_enormous_line_is_cut_and_the_cut_recorded(tmp_path):
    long_line = "word " * (MAX_LINE_CHARS // 2)
    (tmp_path / "long.txt").write_text(f"Title\n\n{long_line}\nLast line.\n")
    text, repairs = _read(tmp_path, "long.txt")
    lines = text.split("\n")
    assert len(lines[2]) == MAX_LINE_CHARS and long_line.startswith(lines[2])
    assert lines[:2] == ["Title", ""] and lines[3] == "Last line."
    assert repairs == ["long-lines-cut"]


@pytest.mark.parametrize("content, encoding, repairs", [
    (TEXT, "utf-8", []),
    (TEXT, "cp1252", ["encoding-guessed"]),
    ("Año, señor, Größe: ½ ± ¼", "latin-1", ["encoding-guessed"]),
    (TEXT, "utf-16", []),                      # with byte order mark
    (TEXT, "utf-16-be", ["encoding-guessed"]),  # no byte order mark
    (TEXT, "utf-16-le", ["encoding-guessed"]),
    (TEXT, "utf-8-sig", []),
])
def test_text_in_other_encodings_is_decoded(tmp_path, content, encoding, repairs):
    (tmp_path / "page.txt").write_bytes(content.encode(encoding))
    assert _read(tmp_path, "page.txt") == (content, repairs)


@pytest.mark.parametrize("misread_as", ["cp1252", "latin-1"])
def test_mojibake_is_repaired_and_recorded(tmp_path, misread_as):
    content = "Zürich – naïve café, déjà vu. Straße. Ärger über Größe."
    (tmp_path / "page.txt").write_text(content.encode("utf-8").decode(misread_as), encoding="utf-8")
    assert _read(tmp_path, "page.txt") == (content, ["mojibake-fixed"])


def test_bytes_no_encoding_explains_are_replaced_and_recorded(tmp_path):
    (tmp_path / "page.txt").write_bytes(TEXT.encode("cp1252") + b" \x81 end")
    text, repairs = _read(tmp_path, "page.txt")
    assert text == TEXT + " \ufffd end"
    assert repairs == ["encoding-guessed", "invalid-bytes-replaced"]


@pytest.mark.parametrize("declared, written, repairs", [
    ("koi8-r", "koi8-r", []),
    ("iso-8859-2", "iso-8859-2", []),
    ("utf-8", "cp1251", ["encoding-guessed"]),  # the declaration does not decode the bytes: detected
])
def test_an_xhtml_page_s_xml_declaration_declares_its_encoding(tmp_path, declared, written, repairs):
    words = LEGACY["cp1251"] if written != "iso-8859-2" else "Zażółć gęślą jaźń, powiedział minister w środę."
    page = f'<?xml version="1.0" encoding="{declared}"?>\n<html><head><title>{words}</title></head><body><p>{words}</p></body></html>'
    (tmp_path / "page.html").write_bytes(page.encode(written))
    record, found = read_raw(tmp_path, _entry(tmp_path, "page.html"))
    assert record["text"] == page and [reason for reason, _ in found] == repairs
    assert all("no charset declared" not in detail for _, detail in found)


def test_a_meta_charset_wins_over_the_xml_declaration(tmp_path):
    page = (f'<?xml version="1.0" encoding="koi8-r"?>\n<html><head><meta charset="windows-1251"><title>{LEGACY["cp1251"]}'
            f'</title></head><body><p>{LEGACY["cp1251"]}</p></body></html>')
    (tmp_path / "page.html").write_bytes(page.encode("cp1251"))
    assert _read(tmp_path, "page.html") == (page, [])


@pytest.mark.parametrize("declared, encoding, repairs", [
    ("windows-1251", "windows-1251", []),                       # declared and true
    ("iso-8859-1", "utf-8", ["charset-mismatch"]),              # declared wrongly, bytes are UTF-8
    ("utf-8", "cp1252", ["encoding-guessed"]),                  # declared UTF-8, bytes are not
    ("x-no-such-charset", "cp1252", ["encoding-guessed"]),
])
def test_a_declared_charset_is_used_only_when_the_bytes_agree(tmp_path, declared, encoding, repairs):
    words = "Привет" if encoding == "windows-1251" else "Größe – “quoted”"
    page = f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={declared}"></head><body><p>{words}</p></body></html>'
    (tmp_path / "page.html").write_bytes(page.encode(encoding))
    assert _read(tmp_path, "page.html") == (page, repairs)


@pytest.mark.parametrize("sidecar, detail", [
    ("{not json", "not readable JSON"),
    ('["a", "list"]', "expected a JSON object"),
    ('{"published_date": "2021-02-30"}', "published_date"),
    ('{"published_date": 20210225}', "published_date must be a string"),
    ('{"url": "not a url"}', "is not an http(s) URL"),
    ('{"url": "file:///etc/passwd"}', "is not an http(s) URL"),
    ('{"language": "English (US)"}', "not a language tag"),
    ('{"outlet": ' + "9" * 5000 + "}", "not readable JSON"),
    ("[" * 50_000, "not readable JSON"),
    ('{"outlet": "' + "x" * 70_000 + '"}', "too-large"),
])
def test_a_bad_sidecar_rejects_its_document(tmp_path, sidecar, detail):
    (tmp_path / "a.txt").write_text("Some text.")
    (tmp_path / "a.txt.meta.json").write_text(sidecar)
    error = _reject(tmp_path, "a.txt")
    assert error.reason == "invalid-sidecar" and detail in error.detail


def test_a_sidecar_that_is_not_utf8_rejects_its_document(tmp_path):
    (tmp_path / "a.txt").write_text("Some text.")
    (tmp_path / "a.txt.meta.json").write_bytes('{"outlet": "Größe"}'.encode("latin-1"))
    assert _reject(tmp_path, "a.txt").reason == "invalid-sidecar"


def test_a_sidecar_without_its_document_is_rejected(tmp_path):
    (tmp_path / "gone.txt.meta.json").write_text("{}")
    assert _reject(tmp_path, "gone.txt.meta.json").reason == "orphan-sidecar"


def test_a_sidecar_of_a_warc_file_is_rejected_not_ignored(tmp_path):
    (tmp_path / "crawl.warc.gz").write_bytes(b"")
    (tmp_path / "crawl.warc.gz.meta.json").write_text('{"outlet": "Example"}')
    error = _reject(tmp_path, "crawl.warc.gz.meta.json")
    assert error.reason == "orphan-sidecar" and "WARC" in error.detail


def test_a_sidecar_linked_from_outside_is_not_followed(tmp_path):
    (tmp_path / "secret.json").write_text('{"outlet": "Secret"}')
    root = tmp_path / "raw"
    root.mkdir()
    (root / "a.txt").write_text("Some text.")
    (root / "a.txt.meta.json").symlink_to(tmp_path / "secret.json")
    error = _reject(root, "a.txt")
    assert error.reason == "invalid-sidecar" and "symlink-outside-raw" in error.detail


def test_a_link_to_a_folder_is_listed_and_not_followed(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "inside.txt").write_text("Not ours.")
    root = tmp_path / "raw"
    root.mkdir()
    (root / "linked").symlink_to(outside, target_is_directory=True)
    assert [f.rel_path for f in discover(root)] == ["linked"]
    assert _reject(root, "linked").reason == "symlinked-folder"


def test_a_dangling_link_is_unreadable(tmp_path):
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    assert _reject(tmp_path, "dangling.txt").reason == "unreadable"


def test_a_loop_of_links_is_unreadable(tmp_path):
    (tmp_path / "a.txt").symlink_to(tmp_path / "b.txt")
    (tmp_path / "b.txt").symlink_to(tmp_path / "a.txt")
    assert _reject(tmp_path, "a.txt").reason == "unreadable"
    assert "loop" in _reject(tmp_path, "b.txt").detail


def test_a_file_without_read_permission_is_unreadable(tmp_path, monkeypatch):
    path = tmp_path / "locked.txt"
    path.write_text("Some text.")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make opening this file fail as it would for a user
        real_open = type(path).open
        monkeypatch.setattr(type(path), "open", lambda self, *a, **k: (_ for _ in ()).throw(
            PermissionError(13, "Permission denied")) if self == path else real_open(self, *a, **k))
    error = _reject(tmp_path, "locked.txt")
    assert error.reason == "unreadable" and "Permission denied" in error.detail


def test_a_fifo_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")  # opening it would block the run forever
    assert _reject(tmp_path, "pipe.txt").reason == "not-a-regular-file"


def test_a_name_that_is_not_utf8_is_rejected_and_shown_escaped(tmp_path):
    (tmp_path / os.fsdecode(b"caf\xe9.txt")).write_text("Some text.")
    (raw,) = discover(tmp_path)
    assert raw.rel_path == "caf\\xe9.txt"
    assert _reject(tmp_path, raw.rel_path).reason == "file-name-not-utf8"


@pytest.mark.parametrize("name", ["with spaces.txt", "Ünïcødé – 北京.txt", "new\nline.txt", "-leading dash.txt", ".txt"])  # ".txt": a name that is only its extension
def test_unusual_file_names_are_read(tmp_path, name):
    (tmp_path / name).write_text("Some text.")
    assert _read(tmp_path, name) == ("Some text.", [])


def test_the_caps_are_the_documented_ones():
    limits = (ingest.Path(__file__).parents[1] / "README.md").read_text().split("## Limits")[1]
    for value in (MAX_RAW_BYTES, MAX_DECOMPRESSED_BYTES):
        assert f"| {value // 2**20} MiB |" in limits
    assert f"| {MAX_LINE_CHARS:,} characters |" in limits
    assert f"| {MAX_SIDECAR_BYTES // 2**10} KiB |" in limits
    assert f"| {MAX_CONTROL_SHARE:.0%} of characters |" in limits
    assert f"| {MAX_HTML_CHARS // 2**20} Mi characters (`MAX_HTML_CHARS`) |" in limits
    assert f"| {MAX_TEXT_LINES:,} lines (`MAX_TEXT_LINES`) |" in limits
    assert f"| {HTML_ISOLATE_CHARS // 2**20} Mi characters (`HTML_ISOLATE_CHARS`) |" in limits
    assert f"| {HTML_TIMEOUT_SECONDS:g} s (`HTML_TIMEOUT_SECONDS`) |" in limits
    assert f"| {KEEP_RUNS} (`KEEP_RUNS`)" in limits and f"| {MAX_QUARANTINED_SHARE:.0%} of a run's articles" in limits
    assert f"at least {MIN_QUARANTINED_TO_HOLD} of them (`MIN_QUARANTINED_TO_HOLD`)" in limits
    assert f"at most {BLOCK_PAGE_MAX_WORDS} words (`BLOCK_PAGE_MAX_WORDS`) that say so in a line of at most {BLOCK_PAGE_LINE_MAX_WORDS} words" in limits
    assert (f"of at least {SOURCE_LINE_MIN_CHARS:,} (`SOURCE_LINE_MIN_CHARS`) of which {SOURCE_LINE_MIN_CODE_SHARE:.0%} is the "
            "punctuation of code") in limits


ARTICLE_HTML = ("<html><head><title>Night buses</title><meta property='article:published_time' content='2024-03-05'>"
                "<meta name='author' content='Alex Smith'></head><body><nav><a href='/'>Home</a></nav><article>"
                + "".join(f"<p>The council voted on Tuesday to expand the night bus network, paragraph {i}.</p>"
                          for i in range(12))
                + "</article></body></html>")


def test_an_html_page_that_outlives_its_time_is_rejected_and_the_others_released(tmp_path, monkeypatch):
    # One line of 40,000 tiny paragraphs: about 5 CPU seconds of extraction for 440 K characters.
    (tmp_path / "costly.html").write_text("<html><body>" + "<p>word</p>" * 40_000 + "</body></html>")
    (tmp_path / "good.html").write_text(ARTICLE_HTML)
    monkeypatch.setattr(settings, "HTML_ISOLATE_CHARS", 100_000)
    monkeypatch.setattr(settings, "HTML_TIMEOUT_SECONDS", 1.0)
    ingested, _, _ = stages.ingest(tmp_path, discover(tmp_path))
    articles, _, _, rejects, _ = stages.clean(ingested)
    assert articles["source_path"].to_list() == ["good.html"]
    assert [(r["source_path"], r["reason"]) for r in rejects] == [("costly.html", "too-costly")]
    assert "took more than 1 s" in rejects[0]["detail"]


def test_an_html_page_whose_extraction_process_is_killed_is_too_costly_and_the_others_released(tmp_path, monkeypatch):
    # The out-of-memory killer stops a process with SIGKILL; so does this stand-in for the interpreter.
    killer = tmp_path / "killed-python"
    killer.write_text("#!/bin/sh\nkill -9 $$\n")
    killer.chmod(0o755)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "huge.html").write_text(ARTICLE_HTML.replace("</body>", "<p>" + "word " * 200 + "</p></body>"))
    (raw / "good.html").write_text(ARTICLE_HTML)
    monkeypatch.setattr(settings, "HTML_ISOLATE_CHARS", len(ARTICLE_HTML))
    monkeypatch.setattr("commentary.clean.html.sys.executable", str(killer))
    ingested, _, _ = stages.ingest(raw, discover(raw))
    articles, _, _, rejects, _ = stages.clean(ingested)
    assert articles["source_path"].to_list() == ["good.html"]
    assert [(r["source_path"], r["reason"]) for r in rejects] == [("huge.html", "too-costly")]
    assert "killed by signal 9" in rejects[0]["detail"]


@pytest.mark.parametrize("line_break", ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\n\ufeff"])
def test_a_text_written_with_other_line_breaks_or_inner_byte_order_marks_is_cleaned_as_with_newlines(raw_copy, line_break):
    name = "002_f01ea41778e67a9c.txt"
    text = (raw_copy / name).read_text()
    (raw_copy / f"other-breaks-{name}").write_text(text.replace("\n", line_break))
    ingested, _, _ = stages.ingest(raw_copy, [f for f in discover(raw_copy) if f.rel_path.endswith(name)])
    articles, furniture, _, rejects, _ = stages.clean(ingested)
    assert not rejects
    original, other = articles.sort("source_path").drop("doc_id", "source_path", "source_sha256").rows()
    assert other == original and "\ufeff" not in "".join(map(str, other))
    lines = furniture.sort("doc_id", "line_no").partition_by("doc_id")
    assert lines[0].select("text", "rule_id").rows() == lines[1].select("text", "rule_id").rows()


def test_lone_surrogates_and_control_characters_in_metadata_are_cleaned_and_the_run_goes_on(tmp_path, articles):
    # JSON escapes can name half of a surrogate pair (a CMS cutting an emoji in two) or a control character.
    headline = '<script type="application/ld+json">{"@type": "NewsArticle", "headline": "Night \\ud83d buses\\u001b[31m"}</script>'
    (tmp_path / "page.html").write_text(ARTICLE_HTML.replace("</head>", headline + "</head>"))
    (tmp_path / "page.txt").write_text(text_page(*articles[0]))
    (tmp_path / "page.txt.meta.json").write_text('{"outlet": "The \\ud800 Courier\\u0000"}')
    (tmp_path / "good.txt").write_text(text_page(*articles[1]))
    ingested, rejects, _ = stages.ingest(tmp_path, discover(tmp_path))
    released, _, _, clean_rejects, _ = stages.clean(ingested)
    assert rejects == clean_rejects == []
    fields = {row["source_path"]: row for row in released.to_dicts()}
    assert fields["page.html"]["title"] == "Night \ufffd buses[31m"
    assert fields["page.txt"]["outlet"] == "The \ufffd Courier"
    assert sorted(fields) == ["good.txt", "page.html", "page.txt"]


@pytest.mark.parametrize(("page", "phrase"), [
    ("<html><head><title>Just a moment...</title></head><body><div><p>Checking if the site connection is secure. "
     "example.org needs to review the security of your connection before proceeding, which takes a few seconds."
     "</p></div></body></html>", "'just a moment...'"),  # a block page that says so only in its title
    ("<html><head><title>Night buses</title><script>window.location.replace('https://example.org/night-buses');</script>"
     "</head><body><p>If you are not redirected automatically, <a href='https://example.org/night-buses'>follow this link "
     "to the new page</a>.</p></body></html>", "'if you are not redirected'"),  # a script redirects it: no meta refresh
], ids=["block-page-title", "script-redirect"])
def test_a_block_or_redirect_page_that_says_so_in_a_short_line_is_not_an_article(tmp_path, page, phrase):
    (tmp_path / "stub.html").write_text(page)
    (tmp_path / "good.html").write_text(ARTICLE_HTML)
    ingested, _, _ = stages.ingest(tmp_path, discover(tmp_path))
    articles, _, _, rejects, _ = stages.clean(ingested)
    assert articles["source_path"].to_list() == ["good.html"]
    assert [(r["source_path"], r["reason"]) for r in rejects] == [("stub.html", "not-an-article")]
    assert phrase in rejects[0]["detail"].lower()


def test_a_page_nested_deeper_than_the_parser_default_keeps_its_article_and_an_empty_one_has_no_body(tmp_path):
    (tmp_path / "deep.html").write_text(ARTICLE_HTML.replace("<body>", "<body>" + "<div>" * 300))  # libxml2 stops at 256
    (tmp_path / "deeper.html").write_text(ARTICLE_HTML.replace("<body>", "<body>" + "<div>" * 1500))  # beyond Python's stack
    (tmp_path / "too-deep.html").write_text(ARTICLE_HTML.replace("<body>", "<body>" + "<div>" * 3000))  # and huge_tree's 2,048
    (tmp_path / "empty.html").write_text("<html><head><title>Night buses</title></head><body><div></div></body></html>")
    ingested, _, _ = stages.ingest(tmp_path, discover(tmp_path))
    articles, _, _, rejects, _ = stages.clean(ingested)
    assert articles["source_path"].to_list() == ["deep.html", "deeper.html"]
    assert all("paragraph 11." in body for body in articles["body"])
    assert sorted((r["source_path"], r["reason"]) for r in rejects) == [("empty.html", "no-article-body"), ("too-deep.html", "extraction-failed")]
    assert "nested more than 2,048 deep" in next(r["detail"] for r in rejects if r["source_path"] == "too-deep.html")
    assert "paragraph 11." in extractors.page_blocks(parse_html((tmp_path / "deeper.html").read_text()))[0]  # the block model's lines


def test_an_extractor_failing_with_the_page_in_its_error_logs_one_short_line(monkeypatch, caplog):
    def failing(tree):
        raise ValueError("Unparseable: " + ARTICLE_HTML * 50)

    monkeypatch.setattr(extractors, "readability_text", failing)
    texts = extractors.extractor_texts(ARTICLE_HTML, parse_html(ARTICLE_HTML))
    assert texts["readability"] == "" and texts["trafilatura"]
    (message,) = [m for m in caplog.messages if m.startswith("readability failed")]
    assert "\n" not in message and len(message) < 400


def test_a_large_page_extracted_in_its_own_process_comes_out_as_in_this_one(monkeypatch):
    monkeypatch.setattr(settings, "HTML_ISOLATE_CHARS", len(ARTICLE_HTML) - 1)
    (isolated,) = extract_html_shard([(ARTICLE_HTML, "https://example.org/a")])
    in_process = extract_html(ARTICLE_HTML, "https://example.org/a")
    assert "paragraph 11." in isolated.text and isolated.metadata["published_date"] == (dt.date(2024, 3, 5), "og")
    assert (isolated.text, isolated.metadata, isolated.not_an_article) == (
        in_process.text, in_process.metadata, in_process.not_an_article)
