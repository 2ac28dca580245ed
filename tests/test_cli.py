"""The release commands: releases, diff, show (verify is tested with the releases)."""
from __future__ import annotations

import subprocess
import sys

import polars as pl
from builders import build_release

from commentary import load
from commentary.cli import main
from commentary.ingest import doc_id_for

CHANGED = "000_019dbd7b0e031552.txt"


def test_releases_diff_and_show_after_one_raw_file_changed(raw_copy, tmp_path, capsys):
    curated = str(tmp_path / "curated")
    build_release(raw_copy, tmp_path / "curated")
    text = (raw_copy / CHANGED).read_text()
    (raw_copy / CHANGED).write_text(text.replace("Low-level talks", "Low-level negotiations"))
    assert build_release(raw_copy, tmp_path / "curated")["version"] == "1.0.1"
    capsys.readouterr()

    assert main(["releases", "--curated", curated]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["version", "created", "change", "articles"]
    assert lines[1].split()[:2] == ["1.0.1", "(latest)"] and lines[1].split()[4:] == ["patch", "5", "5", "0", "0", "0", "1"]
    assert lines[2].split()[0] == "1.0.0" and lines[2].split()[3:] == ["first", "5", "5", "0", "5", "0", "0"]

    assert main(["diff", "1.0.0", "1.0.1", "--curated", curated]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1.0.0 -> 1.0.1: patch change\n0 articles added, 0 removed, 1 modified.")
    assert f"| modified | {doc_id_for(CHANGED)} | {CHANGED} |" in out
    assert "Fields changed: `source_sha256` (1), `body` (1), `body_sha256` (1)." in out

    assert main(["show", doc_id_for(CHANGED), "--curated", curated]) == 0
    out = capsys.readouterr().out
    assert "Low-level negotiations" in out and "1.0.1    modified (source_sha256, body, body_sha256)" in out
    assert "1.0.0    added" in out
    removed = load(table="furniture", engine="polars", curated=curated).filter(pl.col("doc_id") == doc_id_for(CHANGED))
    assert f"furniture removed ({removed.height} lines):" in out and removed.height
    assert all(f"{n:5} {category:12} {rule}" in out for n, category, rule in removed.select("line_no", "category", "rule_id").rows())

    assert main(["show", "ffffffffffffffff", "--curated", curated]) == 2
    assert "no article ffffffffffffffff in release 1.0.1" in capsys.readouterr().err


def test_show_into_a_closed_pipe_stops_quietly(raw_copy, tmp_path):
    """``commentary show ID | head`` must not print a traceback when the reader leaves early."""
    build_release(raw_copy, tmp_path / "curated")
    process = subprocess.Popen([sys.executable, "-m", "commentary.cli", "show", doc_id_for(CHANGED),
                                "--curated", str(tmp_path / "curated")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    errors = process.stderr.read()
    assert process.wait(timeout=120) == 141 and errors == b""
