"""What changed between two releases: article changes, column changes, the version bump, changelogs.

Articles are matched by ``doc_id``. An article is ``modified`` when any column it has in both
releases, or its furniture audit, differs; ``changed_fields`` names them (``furniture`` for the
audit). Values are compared through 64-bit hashes computed a thousand rows at a time, so neither
release has to fit in memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from commentary import tables
from commentary.tables import TableFiles
from schemas.models import CHANGE_KINDS

#: Tables whose content and columns decide the version; ``changes`` itself is not compared.
COMPARED_TABLES = ("articles", "furniture")
FURNITURE_FIELD = "furniture"
#: Changed articles listed by name in a changelog; the full list is in ``changes.parquet``.
LISTED_CHANGES = 50
#: Fixed, so that the two releases' hashes are comparable (both are computed in the same process).
_HASH_SEED = 0


@dataclass(frozen=True)
class Diff:
    """Article changes (``tables.CHANGES`` rows, by ``doc_id``) and column changes per table."""

    changes: pl.DataFrame
    columns: dict[str, dict[str, list[str]]]

    def counts(self) -> dict[str, int]:
        found = dict(self.changes.group_by("change").len().iter_rows())
        return {kind: found.get(kind, 0) for kind in CHANGE_KINDS}

    def field_counts(self) -> dict[str, int]:
        exploded = self.changes.select(pl.col("changed_fields").explode()).drop_nulls()
        return dict(exploded.group_by("changed_fields", maintain_order=True).len().sort("len", descending=True).iter_rows())

    @property
    def bump(self) -> str | None:
        """``major`` (a column removed, renamed or retyped), ``minor`` (articles or columns added or
        removed), ``patch`` (only existing articles changed) or None (nothing changed)."""
        counts = self.counts()
        if any(c["removed"] or c["retyped"] for c in self.columns.values()):
            return "major"
        if counts["added"] or counts["removed"] or any(c["added"] for c in self.columns.values()):
            return "minor"
        return "patch" if counts["modified"] else None

    def summary(self) -> dict:
        return {"bump": self.bump, "articles": self.counts(), "fields": self.field_counts(),
                "columns": {t: c for t, c in self.columns.items() if any(c.values())}}


def diff(old: dict[str, TableFiles] | None, new: dict[str, TableFiles]) -> Diff:
    """Compare two releases' tables (``old`` None: everything is added).

    Only narrow columns are held: each article's ``doc_id`` with a 64-bit hash per column, and a hash
    of each article's removed lines, read a thousand rows at a time (``TableFiles.chunks``).
    """
    if old is None:
        ids = pl.concat([*new["articles"].frames(["doc_id"]), pl.DataFrame(schema={"doc_id": pl.String})])
        added = ids.with_columns(change=pl.lit("added"), changed_fields=pl.lit([], dtype=pl.List(pl.String)))
        return Diff(_as_changes(added), {t: {"removed": [], "added": [], "retyped": []} for t in COMPARED_TABLES})
    schemas = {t: (pl.from_arrow(old[t].schema.empty_table()).schema, pl.from_arrow(new[t].schema.empty_table()).schema)
               for t in COMPARED_TABLES}
    columns = {t: {"removed": [c for c in before if c not in after], "added": [c for c in after if c not in before],
                   "retyped": [c for c in before if c in after and before[c] != after[c]]}
               for t, (before, after) in schemas.items()}
    compared = {t: [c for c, kind in after.items() if c != "doc_id" and before.get(c) == kind] for t, (before, after) in schemas.items()}
    old_rows, new_rows = (_column_hashes(side["articles"], compared["articles"]) for side in (old, new))
    old_lines, new_lines = (_furniture_hashes(side["furniture"], compared["furniture"]) for side in (old, new))
    lines = old_lines.join(new_lines, on="doc_id", how="full", coalesce=True, suffix="__new")
    lines_differ = lines.filter(pl.col("lines").ne_missing(pl.col("lines__new")))["doc_id"].implode()
    flags = [pl.when(pl.col(c).ne_missing(pl.col(f"{c}__new"))).then(pl.lit(c)) for c in compared["articles"]]
    flags.append(pl.when(pl.col("doc_id").is_in(lines_differ)).then(pl.lit(FURNITURE_FIELD)))
    modified = (old_rows.join(new_rows, on="doc_id", suffix="__new")
                .select("doc_id", changed_fields=pl.concat_list(flags).list.drop_nulls())
                .filter(pl.col("changed_fields").list.len() > 0).with_columns(change=pl.lit("modified")))
    no_fields = pl.lit([], dtype=pl.List(pl.String))
    old_ids, new_ids = old_rows.select("doc_id"), new_rows.select("doc_id")
    added = new_ids.join(old_ids, on="doc_id", how="anti").with_columns(change=pl.lit("added"), changed_fields=no_fields)
    removed = old_ids.join(new_ids, on="doc_id", how="anti").with_columns(change=pl.lit("removed"), changed_fields=no_fields)
    return Diff(_as_changes(pl.concat([added, removed, modified], how="diagonal")), columns)


def _as_changes(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.from_arrow(tables.to_arrow(frame.sort("doc_id"), tables.CHANGES))


def _column_hashes(articles: TableFiles, columns: list[str]) -> pl.DataFrame:
    """``doc_id`` and, per column in ``columns``, a hash of the article's value."""
    frames = [frame.select("doc_id", *(pl.col(c).hash(_HASH_SEED) for c in columns)) for frame in articles.frames(["doc_id", *columns])]
    return pl.concat(frames) if frames else pl.DataFrame(schema={"doc_id": pl.String} | dict.fromkeys(columns, pl.UInt64))


def _furniture_hashes(furniture: TableFiles, columns: list[str]) -> pl.DataFrame:
    """``doc_id`` and ``lines``: a hash of the article's removed lines (their ``columns``, in any order).

    An article's lines may span two chunks: the last article of each chunk waits for the next.
    """
    def per_article(lines: pl.DataFrame) -> pl.DataFrame:
        return lines.group_by("doc_id").agg(pl.col("line").sort()).select("doc_id", lines=pl.col("line").hash(_HASH_SEED))

    found, waiting = [], pl.DataFrame(schema={"doc_id": pl.String, "line": pl.UInt64})
    for frame in furniture.frames(["doc_id", *columns]):
        if not frame.height:
            continue
        lines = pl.concat([waiting, frame.select("doc_id", line=pl.struct(columns).hash(_HASH_SEED))])
        last = pl.col("doc_id") == lines["doc_id"][-1]
        found.append(per_article(lines.filter(~last)))
        waiting = lines.filter(last)
    return pl.concat([*found, per_article(waiting)])


def next_version(previous: str | None, bump: str) -> str:
    """The semantic version after ``previous`` for a ``major``, ``minor`` or ``patch`` change."""
    if previous is None:
        return "1.0.0"
    major, minor, patch = parse_version(previous)
    return {"major": f"{major + 1}.0.0", "minor": f"{major}.{minor + 1}.0", "patch": f"{major}.{minor}.{patch + 1}"}[bump]


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.10.0"`` -> ``(1, 10, 0)``; ValueError for anything that is not MAJOR.MINOR.PATCH."""
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{version!r} is not a semantic version MAJOR.MINOR.PATCH")
    return int(parts[0]), int(parts[1]), int(parts[2])


def describe(result: Diff, new_articles: pl.LazyFrame, old_articles: pl.LazyFrame | None, limit: int = LISTED_CHANGES) -> str:
    """Markdown: counts, column changes, fields changed, and the first ``limit`` changed articles."""
    counts = result.counts()
    lines = [f"{counts['added']} articles added, {counts['removed']} removed, {counts['modified']} modified."]
    for table, changed in result.columns.items():
        for kind, names in changed.items():
            if names:
                lines.append(f"Columns {kind} in `{table}`: {', '.join(f'`{n}`' for n in names)}.")
    if fields := result.field_counts():
        lines.append("Fields changed: " + ", ".join(f"`{name}` ({n})" for name, n in fields.items()) + ".")
    if result.changes.height:
        shown = result.changes.head(limit)
        ids = shown["doc_id"].implode()
        names = pl.concat([frame.filter(pl.col("doc_id").is_in(ids)).select("doc_id", "source_path", "title").collect()
                           for frame in (new_articles, old_articles) if frame is not None]).unique("doc_id", keep="first")
        shown = shown.join(names, on="doc_id", how="left", maintain_order="left")
        lines += ["", "| change | doc_id | source_path | title | fields |", "|---|---|---|---|---|"]
        lines += [f"| {r['change']} | {r['doc_id']} | {_cell(r['source_path'])} | {_cell(r['title'])} | {', '.join(r['changed_fields'])} |"
                  for r in shown.iter_rows(named=True)]
        if result.changes.height > limit:
            lines.append(f"\n... and {result.changes.height - limit} more (see `changes.parquet`).")
    return "\n".join(lines) + "\n"


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
