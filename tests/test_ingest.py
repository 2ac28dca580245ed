"""Reading raw files: formats, compression, sidecars and the reasons for rejecting a file."""
from __future__ import annotations

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


def test_declared_html_charset_is_honoured(tmp_path):
    html = '<html><head><meta charset="koi8-r"></head><body>Привет</body></html>'
    (tmp_path / "page.html").write_bytes(html.encode("koi8-r"))
    assert "Привет" in _read(tmp_path, "page.html")["text"]


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
