"""Command line: run the pipeline (locally or on Dask), score the cleaning, list, compare, verify and inspect releases."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from commentary.settings import SHARD_SIZE, apply_environment_defaults

#: Exit codes from sysexits.h: try again later (another run holds the folder), I/O error (disk full).
EXIT_LOCKED, EXIT_DISK_FULL = 75, 74


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="commentary", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the pipeline on a raw folder and publish a release")
    run.add_argument("--raw", default="raw", help="raw landing folder: a path or an fsspec URL such as s3://bucket/raw (default: raw)")
    run.add_argument("--mirror", help="fsspec URL to copy each published release to (e.g. s3://bucket/curated), LATEST last")
    run.add_argument("--shard-size", type=int, default=SHARD_SIZE, help=f"documents per shard (default: {SHARD_SIZE})")
    run.add_argument("--inline", action="store_true", help="run every step in this process, without Prefect (small folders, debugging)")
    run.add_argument("--runner", choices=("local", "dask"), default="local",
                     help="run shards on local threads or on a Dask cluster (default: local)")
    run.add_argument("--scheduler", help="with --runner dask: address of an existing Dask scheduler "
                                         "(default: start a LocalCluster)")
    commands.add_parser("releases", help="list the releases with their counts")
    diff = commands.add_parser("diff", help="what changed between two releases")
    diff.add_argument("old", help="the earlier version")
    diff.add_argument("new", nargs="?", default="latest", help="the later version (default: latest)")
    diff.add_argument("--limit", type=int, default=50, help="changed articles listed (default: 50)")
    verify = commands.add_parser("verify", help="check release files against their manifest checksums")
    verify.add_argument("version", nargs="?", help="one version (default: every release)")
    show = commands.add_parser("show", help="one article of a release: fields, furniture, copies, history")
    show.add_argument("doc_id")
    show.add_argument("--version", default="latest", help="release to read (default: latest)")
    for command in commands.choices.values():
        command.add_argument("--curated", default="curated", help="curated output folder (default: curated)")
    args = parser.parse_args(argv)
    try:
        status = _dispatch(args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader left early (``commentary show ID | head``): stop quietly, with the status a
        # shell gives a program killed by SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _dispatch(args) -> int:
    try:
        if args.command == "run":
            return _run(args)
        return {"releases": _releases, "diff": _diff, "verify": _verify, "show": _show}[args.command](Path(args.curated), args)
    except (FileNotFoundError, ValueError) as error:
        print(f"commentary {args.command}: {error}", file=sys.stderr)
        return 2


def _run(args) -> int:
    apply_environment_defaults()  # before Arrow allocates: it picks its memory pool once
    from contextlib import ExitStack

    from commentary.pipeline import RunLocked, run as run_inline
    from commentary.storage import raw_folder
    from commentary.tables import DiskFull

    try:
        if args.inline:
            entry = run_inline(raw_folder(args.raw), Path(args.curated), args.shard_size, args.mirror)
        else:
            from flows.pipeline import shared_api_server, with_runner

            with ExitStack() as stack:
                if args.runner == "dask":
                    shared_api_server(stack)
                entry = with_runner(args.runner, args.scheduler)(raw=args.raw, curated=args.curated, shard_size=args.shard_size,
                                                                 mirror=args.mirror)
    except (RunLocked, DiskFull) as error:
        print(f"commentary run: {error}", file=sys.stderr)
        return EXIT_LOCKED if isinstance(error, RunLocked) else EXIT_DISK_FULL
    print(json.dumps(entry, indent=2, default=str))
    return 0 if entry["release"].get("published") or "nothing changed" in entry["release"].get("reason", "") else 1


def _releases(curated: Path, args) -> int:
    from commentary import release

    manifests = release.list_releases(curated)
    if not manifests:
        raise FileNotFoundError(f"no release in {curated}")
    latest = release.latest_version(curated)
    rows = [("version", "created", "change", "articles", "canonical", "duplicates", "added", "removed", "modified")]
    for m in reversed(manifests):
        changes = m["changes"]["articles"]
        rows.append((m["version"] + (" (latest)" if m["version"] == latest else ""), m["created_at"][:16].replace("T", " "),
                     m["changes"]["bump"] if m["previous_version"] else "first", *(str(m["counts"][k]) for k in ("articles", "canonical_articles", "duplicates")),
                     *(str(changes[k]) for k in ("added", "removed", "modified"))))
    print(_table(rows))
    return 0


def _diff(curated: Path, args) -> int:
    from commentary import changelog, release
    from commentary.tables import RELEASE_TABLES

    old_folder, new_folder = release.release_path(curated, args.old), release.release_path(curated, args.new)
    old, new = ({t: RELEASE_TABLES[t].in_release(folder) for t in changelog.COMPARED_TABLES} for folder in (old_folder, new_folder))
    result = changelog.diff(*({t: changelog.hash_table(files) for t, files in side.items()} for side in (old, new)))
    print(f"{old_folder.name} -> {new_folder.name}: {result.bump or 'no'} change")
    print(changelog.describe(result, new["articles"].scan(), old["articles"].scan(), limit=args.limit), end="")
    return 0


def _verify(curated: Path, args) -> int:
    from commentary import release

    versions = [args.version] if args.version else [m["version"] for m in release.list_releases(curated)]
    if not versions:
        raise FileNotFoundError(f"no release in {curated}")
    failed = False
    for version in versions:
        problems = release.verify(curated, version)
        failed |= bool(problems)
        print("\n".join(f"FAIL {problem}" for problem in problems) if problems
              else f"ok   {release.release_path(curated, version).name}: every file matches its manifest checksum")
    return 1 if failed else 0


def _show(curated: Path, args) -> int:
    import polars as pl

    from commentary import release

    version = release.release_path(curated, args.version).name
    articles = release.scan_table(curated, "articles", version)
    found = articles.filter(pl.col("doc_id") == args.doc_id).collect()
    if not found.height:
        raise ValueError(f"no article {args.doc_id} in release {version}")
    row = found.row(0, named=True)
    print(f"{args.doc_id} in release {version}")
    for name, value in row.items():
        if name != "body":
            print(f"  {name:16} {value}")
    copies = articles.filter(pl.col("duplicate_of") == args.doc_id).select("doc_id", "source_path").collect()
    for doc_id, source_path in copies.iter_rows():
        print(f"  copy             {doc_id} {source_path}")
    furniture = release.scan_table(curated, "furniture", version).filter(pl.col("doc_id") == args.doc_id).sort("line_no").collect()
    print(f"\nfurniture removed ({furniture.height} lines):")
    for line_no, category, rule_id, text in furniture.select("line_no", "category", "rule_id", "text").iter_rows():
        print(f"  {line_no:5} {category:12} {rule_id:28} {text[:80]}")
    print("\nhistory:")
    for manifest in release.list_releases(curated):
        change = release.scan_table(curated, "changes", manifest["version"]).filter(pl.col("doc_id") == args.doc_id).collect()
        if change.height:
            fields = ", ".join(change["changed_fields"][0])
            print(f"  {manifest['version']:8} {change['change'][0]}" + (f" ({fields})" if fields else ""))
    print(f"\nbody ({row['word_count']} words):\n{row['body']}")
    return 0


def _table(rows: list[tuple]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows)


if __name__ == "__main__":
    sys.exit(main())
