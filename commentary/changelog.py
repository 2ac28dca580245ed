"""What changed between two releases: article changes, column changes, the version bump, changelogs.

Articles are matched by ``doc_id``. An article is ``modified`` when any column it has in both
releases, or its furniture audit, differs; ``changed_fields`` names them (``furniture`` for the
audit). Columns are compared one at a time, so two releases never have to fit in memory together.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from commentary import tables
from schemas.models import CHANGE_KINDS

#: Tables whose content and columns decide the version; ``changes`` itself is not compared.
COMPARED_TABLES = ("articles", "furniture")
FURNITURE_FIELD = "furniture"
#: Changed articles listed by name in a changelog; the full list is in ``changes.parquet``.
LISTED_CHANGES = 50


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


def diff(old: dict[str, pl.LazyFrame] | None, new: dict[str, pl.LazyFrame]) -> Diff:
    """Compare two releases' tables (``old`` None: everything is added)."""
    if old is None:
        ids = new["articles"].select("doc_id").collect()
        added = ids.with_columns(change=pl.lit("added"), changed_fields=pl.lit([], dtype=pl.List(pl.String)))
        return Diff(_as_changes(added), {t: {"removed": [], "added": [], "retyped": []} for t in COMPARED_TABLES})
    schemas = {t: (old[t].collect_schema(), new[t].collect_schema()) for t in COMPARED_TABLES}
    columns = {t: {"removed": [c for c in before if c not in after], "added": [c for c in after if c not in before],
                   "retyped": [c for c in before if c in after and before[c] != after[c]]}
               for t, (before, after) in schemas.items()}
    old_ids, new_ids = old["articles"].select("doc_id").collect(), new["articles"].select("doc_id").collect()
    kept = old_ids.join(new_ids, on="doc_id", how="semi")
    differing = [_differing(old["articles"], new["articles"], column)
                 for column, kind in schemas["articles"][1].items() if column != "doc_id" and schemas["articles"][0].get(column) == kind]
    differing.append(_differing_furniture(old["furniture"], new["furniture"], schemas["furniture"], kept))
    modified = (pl.concat(differing).group_by("doc_id", maintain_order=True).agg(pl.col("field").alias("changed_fields"))
                .with_columns(change=pl.lit("modified")))
    no_fields = pl.lit([], dtype=pl.List(pl.String))
    added = new_ids.join(old_ids, on="doc_id", how="anti").with_columns(change=pl.lit("added"), changed_fields=no_fields)
    removed = old_ids.join(new_ids, on="doc_id", how="anti").with_columns(change=pl.lit("removed"), changed_fields=no_fields)
    return Diff(_as_changes(pl.concat([added, removed, modified], how="diagonal")), columns)


def _as_changes(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.from_arrow(tables.to_arrow(frame.sort("doc_id"), tables.CHANGES))


def _differing(old: pl.LazyFrame, new: pl.LazyFrame, column: str) -> pl.DataFrame:
    """``doc_id``, ``field`` of the articles in both releases whose ``column`` differs."""
    joined = old.select("doc_id", column).join(new.select("doc_id", column), on="doc_id", suffix="__new")
    return joined.filter(pl.col(column).ne_missing(pl.col(f"{column}__new"))).select("doc_id", field=pl.lit(column)).collect()


def _differing_furniture(old: pl.LazyFrame, new: pl.LazyFrame, schemas: tuple, kept: pl.DataFrame) -> pl.DataFrame:
    """Articles in both releases whose removed lines differ (compared on the columns both audits share)."""
    before, after = schemas
    shared = [c for c in after if c != "doc_id" and before.get(c) == after[c]]

    def per_doc(lines: pl.LazyFrame) -> pl.LazyFrame:
        return (lines.select("doc_id", *shared).sort("doc_id", *shared)
                .group_by("doc_id", maintain_order=True).agg(pl.struct(shared).alias("lines")))

    joined = per_doc(old).join(per_doc(new), on="doc_id", how="full", coalesce=True, suffix="__new")
    differing = joined.filter(pl.col("lines").ne_missing(pl.col("lines__new"))).select("doc_id").collect()
    return differing.join(kept, on="doc_id", how="semi").with_columns(field=pl.lit(FURNITURE_FIELD))


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
        names = pl.concat([frame.select("doc_id", "source_path", "title").collect()
                           for frame in (new_articles, old_articles) if frame is not None]).unique("doc_id", keep="first")
        shown = result.changes.head(limit).join(names, on="doc_id", how="left", maintain_order="left")
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
