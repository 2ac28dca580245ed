"""A release's notes: the Markdown of what changed, its ``CHANGELOG.md`` section and ``<curated>/CHANGELOG.md``."""
from __future__ import annotations

from pathlib import Path

import polars as pl

from commentary.release.versions import Diff, parse_version

#: Changed articles listed by name in a changelog; the full list is in ``changes.parquet``.
LISTED_CHANGES = 50


def describe(result: Diff, new_articles: pl.LazyFrame, old_articles: pl.LazyFrame | None, limit: int = LISTED_CHANGES) -> str:
    """Markdown: counts, column changes, fields changed, and the first ``limit`` changed articles."""
    counts = result.counts()
    lines = [f"{counts['added']} {'article' if counts['added'] == 1 else 'articles'} added, {counts['removed']} removed, "
             f"{counts['modified']} modified."]
    for table, changed in result.columns.items():
        for kind, names in changed.items():
            if names:
                lines.append(f"Columns {kind} in `{table}`: {', '.join(f'`{n}`' for n in names)}.")
    if fields := result.field_counts():
        lines.append("Fields changed: " + ", ".join(f"`{name}` ({n})" for name, n in fields.items()) + ".")
    if result.changes.height:
        shown = result.changes.head(limit)
        ids = shown["doc_id"].implode()
        names = pl.concat([frame.filter(pl.col("doc_id").is_in(ids)).select("doc_id", "source_path", "title", "duplicate_of").collect()
                           for frame in (new_articles, old_articles) if frame is not None]).unique("doc_id", keep="first")
        shown = shown.join(names, on="doc_id", how="left", maintain_order="left")
        lines += ["", "| change | doc_id | source_path | title | fields |", "|---|---|---|---|---|"]
        lines += [f"| {_change(r)} | {r['doc_id']} | {_cell(r['source_path'])} | {_cell(r['title'])} | {', '.join(r['changed_fields'])} |"
                  for r in shown.iter_rows(named=True)]
        if result.changes.height > limit:
            lines.append(f"\n... and {result.changes.height - limit} more (see `changes.parquet`).")
    return "\n".join(lines) + "\n"


def _change(row: dict) -> str:
    """The change, with an added article that is a copy of another marked as such."""
    if row["change"] == "added" and row["duplicate_of"]:
        return f"added (duplicate of {row['duplicate_of']})"
    return row["change"]


def _cell(value: str | None) -> str:
    return (value or "").replace("|", "\\|").replace("\n", " ")[:80]


def release_notes(version: str, previous: str | None, date: str, body: str) -> str:
    """A release's ``CHANGELOG.md`` section."""
    since = f"Changes since {previous}" if previous else "First release"
    return f"## {version} ({date})\n\n{since}: {body}"


def history(release_folders: list[Path]) -> str:
    """``<curated>/CHANGELOG.md``: every release's notes, newest first (rewritten whole each time)."""
    ordered = sorted(release_folders, key=lambda folder: parse_version(folder.name), reverse=True)
    return "# Changelog\n\n" + "\n".join((folder / "CHANGELOG.md").read_text() for folder in ordered)
