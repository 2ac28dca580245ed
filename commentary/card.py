"""A release's self-description: the data card (``README.md``), its charts, ``report.html`` and ``datapackage.json``.

Everything here is generated: the card and the report from the run's statistics (one list of
sections rendered twice, as Markdown and as HTML), the Data Package and the card's ``features``
from the Pandera models through ``tables.RELEASE_TABLES``, so the schema has one source.
"""
from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import yaml

from commentary.settings import NEAR_DUPLICATE_THRESHOLD, SHINGLE_WORDS
from commentary.tables import RELEASE_TABLES

#: Dataset-card config of each table. ``articles`` and ``furniture`` hold duplicate copies too (``duplicate_of`` set),
#: while ``load()`` returns canonical articles: the names say so.
CONFIG_NAMES = {"articles": "articles_with_duplicates", "furniture": "furniture_with_duplicates", "changes": "changes"}
TASK_CATEGORIES = ("text-generation", "text-classification")
LICENSE_NAME = "publishers-terms"
LICENSE_FILE = "LICENSE.md"
LICENSE_TEXT = """# Licence

The articles in this release are the work of their authors and publishers and remain under each
publisher's own terms (the `url` and `outlet` fields name the source of each). The release gives
their text, cleaned of page furniture, for research and analysis; check a publisher's terms before
republishing an article. The derived data (fields, the furniture audit, duplicate marks, changes)
carries no further restriction.
"""
#: Fields whose share of canonical articles without a value the card shows.
MISSING_FIELDS = ("title", "authors", "published_date", "outlet", "language")
#: Rows shown in the card's count tables and bars drawn per chart; the rest are summed as "(other)".
TOP_ROWS = 15
CHARTS_DIR = "charts"
_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
KNOWN_LIMITS = (
    "Furniture is removed by rules; a line the rules do not know stays in `body`. The `furniture` "
    "table lists every removed line with the rule that removed it, so a removal can be checked or undone.",
    "`outlet`, `authors` and dates are left empty rather than guessed; see the missing-field shares above.",
    f"Near duplicates are found by MinHash on word {SHINGLE_WORDS}-grams (estimated Jaccard >= {NEAR_DUPLICATE_THRESHOLD:g}): a copy that was "
    "edited heavily is not found, and groups are transitive (A~B and B~C put A, B and C together).",
    "`language` comes from the sidecar or the page's metadata when they give one, else it is detected from the body "
    "(py3langid; `field_sources.language` is `detected:py3langid`); bodies too short or too mixed to tell have none.",
)


@dataclass
class RunReport:
    """What the card reports about the run besides the released tables."""

    seen: int | None = None
    quality: dict | None = None
    rejects: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema={"stage": pl.String, "reason": pl.String}))


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: list[tuple]


@dataclass(frozen=True)
class Image:
    path: str
    alt: str


#: The columns of ``articles`` the card's statistics read (never the bodies).
STATISTICS_COLUMNS = ("doc_id", "duplicate_of", "body_sha256", "word_count", *MISSING_FIELDS)


def statistics(articles: pl.LazyFrame, furniture: pl.LazyFrame, report: RunReport) -> dict:
    """The numbers the card shows, over the canonical articles unless named otherwise.

    Only narrow columns are loaded (``STATISTICS_COLUMNS``; furniture is counted by category).
    """
    articles = articles.select(STATISTICS_COLUMNS).collect()
    canonical = articles.filter(pl.col("duplicate_of").is_null())
    copies = articles.filter(pl.col("duplicate_of").is_not_null()).join(
        articles.select(pl.col("doc_id").alias("duplicate_of"), pl.col("body_sha256").alias("canonical_sha256")), on="duplicate_of")
    words = canonical["word_count"]
    by_category = _counts(furniture, pl.col("category"), top=None)
    return {
        "seen": report.seen,
        "articles": articles.height,
        "canonical": canonical.height,
        "exact_duplicates": copies.filter(pl.col("body_sha256") == pl.col("canonical_sha256")).height,
        "near_duplicates": copies.filter(pl.col("body_sha256") != pl.col("canonical_sha256")).height,
        "by_outlet": _counts(canonical.lazy(), pl.col("outlet").fill_null("(unknown)")),
        "by_year": sorted(_counts(canonical.lazy(), pl.col("published_date").dt.year().cast(pl.String).fill_null("(unknown)"), top=None)),
        "by_language": _counts(canonical.lazy(), pl.col("language").fill_null("(unknown)")),
        "body_words": {name: int(getattr(words, name)() or 0) if canonical.height else 0 for name in ("min", "median", "mean", "max")}
        | {f"p{q}": int(words.quantile(q / 100, "nearest") or 0) if canonical.height else 0 for q in (10, 90)},
        "word_counts": words.to_list(),
        "missing": {name: round(_missing_share(canonical, name), 3) for name in MISSING_FIELDS},
        "furniture_lines": sum(n for _, n in by_category),
        "furniture_by_category": by_category,
        "rejects_by_reason": sorted(report.rejects.group_by("stage", "reason").len().iter_rows(), key=lambda r: (-r[2], r[0], r[1])),
        "quality": [{"stage": stage, **outcome} for stage, result in (report.quality or {}).get("stages", {}).items()
                    for outcome in result["expectations"]],
        "data_docs": (report.quality or {}).get("data_docs"),
    }


def _counts(frame: pl.LazyFrame, key: pl.Expr, top: int | None = TOP_ROWS) -> list[tuple[str, int]]:
    counted = frame.group_by(key.alias("key")).len().sort(["len", "key"], descending=[True, False]).collect(engine="streaming").rows()
    if top is None or len(counted) <= top:
        return counted
    return counted[:top] + [("(other)", sum(n for _, n in counted[top:]))]


def _missing_share(frame: pl.DataFrame, name: str) -> float:
    if not frame.height:
        return 0.0
    column = frame[name]
    missing = column.list.len().eq(0).sum() if isinstance(column.dtype, pl.List) else column.is_null().sum()
    return missing / frame.height


def write(folder: Path, manifest: dict, stats: dict) -> list[Path]:
    """Write ``README.md``, ``report.html`` and the charts into a release folder; returns the files."""
    charts = _charts(folder / CHARTS_DIR, stats)
    sections = _sections(manifest, stats, charts, folder)
    readme = folder / "README.md"
    readme.write_text("---\n" + yaml.safe_dump(_card_header(folder, manifest, stats), sort_keys=False, allow_unicode=True)
                      + "---\n\n" + f"# commentary {manifest['version']}\n\n" + _markdown(sections))
    report = folder / "report.html"
    report.write_text(_html(f"commentary {manifest['version']}", sections))
    licence = folder / LICENSE_FILE
    licence.write_text(LICENSE_TEXT)
    return [readme, report, licence, *charts]


def data_fields() -> dict[str, list[tuple[str, str, str]]]:
    """Each release table's fields: name, type and description (from the Pandera models; empty where the model has none)."""
    found = {}
    for name, table in RELEASE_TABLES.items():
        columns = table.model.to_schema().columns
        found[name] = [(field.name, f"list of {_dtype(field.type.value_type)}" if pa.types.is_list(field.type) else _dtype(field.type),
                        " ".join((getattr(columns.get(field.name), "description", None) or "").split()))
                       for field in table.schema]
    return found


def _quality_sentence(quality: list[dict]) -> str:
    """How many expectations were met, and which were not or could not be checked."""
    if not quality:
        return "No quality report was given for this release."
    erred = [q for q in quality if q.get("error")]
    failed = [q for q in quality if not q["success"] and not q.get("error")]
    text = (f"{len(quality) - len(failed) - len(erred)} of {len(quality)} expectations met; articles failing a critical expectation "
            "about rows are left out (rejected at stage quality), a failure of the whole table stops the release.")
    if failed:
        text += " Not met: " + "; ".join(f"`{q['stage']}: {q['expectation']}({q['column'] or ''})` ({_why(q)})" for q in failed) + "."
    if erred:
        text += " Could not be checked (the check raised an error): " + "; ".join(
            f"`{q['stage']}: {q['expectation']}({q['column'] or ''})`" for q in erred) + "."
    return text


def _why(outcome: dict) -> str:
    """Why an expectation was not met: its error, the rows that broke it, or the value observed."""
    if outcome.get("error"):
        return f"error: {outcome['error']}"
    if outcome["success"]:
        return ""
    if outcome.get("unexpected_count"):
        return f"{outcome['unexpected_count']} unexpected rows"
    return f"observed {outcome['observed_value']}" if outcome.get("observed_value") is not None else "not met"


def _docs_link(data_docs: str, folder: Path) -> str:
    """The Data Docs index relative to the release folder (a staging folder has the same depth as the release)."""
    return Path(os.path.relpath(data_docs, folder)).as_posix()


def _sections(manifest: dict, stats: dict, charts: list[Path], folder: Path) -> list[tuple[str, list]]:
    chart = {path.stem: Image(f"{CHARTS_DIR}/{path.name}", path.stem.replace("_", " ")) for path in charts}
    counts = manifest["changes"]["articles"]
    words = stats["body_words"]
    quality = stats["quality"]
    seen = f" from {stats['seen']} raw files" if stats["seen"] is not None else ""
    return [
        ("Summary", [
            f"Cleaned commentary articles{seen}: {stats['canonical']} canonical articles and "
            f"{stats['exact_duplicates'] + stats['near_duplicates']} duplicates ({stats['exact_duplicates']} exact, "
            f"{stats['near_duplicates']} near), page furniture removed and audited line by line.",
            f"Release {manifest['version']} ("
            + (f"{manifest['changes']['bump']} change from {manifest['previous_version']}" if manifest["previous_version"] else "first release")
            + f"): {counts['added']} {'article' if counts['added'] == 1 else 'articles'} added, "
            f"{counts['removed']} removed, {counts['modified']} modified; see `CHANGELOG.md` and `changes.parquet`.",
        ]),
        ("Loading", [
            "`from commentary import load; articles = load(version=\"" + manifest["version"] + "\", engine=\"polars\")` "
            "(canonical articles; `include_duplicates=True` for all), or `commentary.duckdb_views()` for SQL views "
            "`articles`, `articles_all`, `furniture` and `changes`. Any Parquet reader works on `articles/*.parquet`.",
        ]),
        ("Tables", [Table(("config", "rows", "description"), [
            (CONFIG_NAMES["articles"], stats["articles"], "one row per article, duplicates included with `duplicate_of` set; "
             "canonical articles are those with `duplicate_of` null (what `load()` returns)"),
            (CONFIG_NAMES["furniture"], stats["furniture_lines"], "every removed line: doc_id, line_no, category, rule_id, text"),
            (CONFIG_NAMES["changes"], sum(counts.values()), "articles added, removed or modified since the previous release"),
        ])]),
        ("Articles by outlet", [Table(("outlet", "articles"), stats["by_outlet"]), chart["outlets"]]),
        ("Articles by year", [Table(("year", "articles"), stats["by_year"]), chart["years"]]),
        ("Articles by language", [Table(("language", "articles"), stats["by_language"])]),
        ("Body length", [Table(("words", "min", "p10", "median", "mean", "p90", "max"),
                               [("body", *(words[k] for k in ("min", "p10", "median", "mean", "p90", "max")))]),
                         chart["body_words"]]),
        ("Missing fields", [Table(("field", "share of articles without it"), list(stats["missing"].items()))]),
        ("Furniture removed by category", [Table(("category", "lines"), stats["furniture_by_category"]), chart["furniture"]]),
        ("Quality", [
            _quality_sentence(quality),
            *([f"Data Docs of the run (Great Expectations, they open offline): [{_docs_link(stats['data_docs'], folder)}]"
               f"({_docs_link(stats['data_docs'], folder)}), kept while the run folder is."] if stats.get("data_docs") else []),
            Table(("stage", "expectation", "column", "critical", "met", "why not"),
                  [(q["stage"], q["expectation"], q["column"] or "", q["critical"], "error" if q.get("error") else q["success"], _why(q))
                   for q in quality]),
        ]),
        ("Rejects", [
            "Raw files that did not become articles, by stage and reason (the run's `rejects.parquet` lists each file).",
            Table(("stage", "reason", "files"), stats["rejects_by_reason"]),
        ]),
        ("Known limits", list(KNOWN_LIMITS)),
        ("Data fields", [Table(("table", "field", "type", "description"),
                               [(table, name, kind, text) for table, fields in data_fields().items() for name, kind, text in fields])]),
        ("Cleaning models", [
            "The line models that decided what is body and what is furniture, and the data each was trained on. "
            "A model is a derived work of its training data: its licence terms follow that data's.",
            Table(("model", "dataset", "pages", "licence"), _model_rows(manifest.get("models") or {})),
        ]),
        ("Provenance", [Table(("", ""), [
            ("version", manifest["version"]), ("previous version", manifest["previous_version"] or ""),
            ("created", manifest["created_at"]), ("code version", manifest["code_version"]),
            ("rules version", manifest.get("rules_version") or ""), ("lock file sha256", manifest.get("lock_sha256") or ""),
            ("raw input fingerprint", manifest.get("raw_fingerprint") or ""), ("content fingerprint", manifest["content_fingerprint"]),
        ])]),
    ]


def _model_rows(models: dict) -> list[tuple]:
    """One row per model and training dataset, from the manifest's ``models``."""
    return [(f"{name} (`{model['sha256'][:12]}`)", dataset, facts["pages"], facts["licence"])
            for name, model in sorted(models.items()) for dataset, facts in sorted(model["trained_on"].get("datasets", {}).items())]


def _markdown(sections: list[tuple[str, list]]) -> str:
    out = []
    for title, blocks in sections:
        out.append(f"## {title}\n")
        for block in blocks:
            if isinstance(block, Table) and not block.rows:
                out.append("None.\n")
            elif isinstance(block, Table):
                out.append("| " + " | ".join(block.header) + " |\n|" + "---|" * len(block.header))
                out.extend("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in block.rows)
                out.append("")
            elif isinstance(block, Image):
                out.append(f"![{block.alt}]({block.path})\n")
            else:
                out.append(block + "\n")
    return "\n".join(out)


def _html(title: str, sections: list[tuple[str, list]]) -> str:
    out = [f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#222}"
           "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #bbb;padding:.2rem .5rem;text-align:left}"
           "th{background:#e8eef6}img{max-width:100%}code{background:#f2f2f2}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>"]
    for heading, blocks in sections:
        out.append(f"<h2>{html.escape(heading)}</h2>")
        for block in blocks:
            if isinstance(block, Table) and not block.rows:
                out.append("<p>None.</p>")
            elif isinstance(block, Table):
                out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in block.header) + "</tr>")
                out.extend("<tr>" + "".join(f"<td>{_inline(str(v))}</td>" for v in row) + "</tr>" for row in block.rows)
                out.append("</table>")
            elif isinstance(block, Image):
                out.append(f'<img src="{html.escape(block.path)}" alt="{html.escape(block.alt)}">')
            else:
                out.append(f"<p>{_inline(block)}</p>")
    return "\n".join(out) + "\n</body></html>\n"


def _inline(text: str) -> str:
    """Escaped text with `code` spans as <code> and [text](url) as links."""
    return _LINK.sub(r'<a href="\2">\1</a>', _CODE.sub(r"<code>\1</code>", html.escape(text)))


def _charts(folder: Path, stats: dict) -> list[Path]:
    """Four PNG charts (outlets, years, body length, furniture); fixed size, no timestamps."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    folder.mkdir(parents=True)
    plots = {
        "outlets": ("Articles by outlet", stats["by_outlet"], "barh"),
        "years": ("Articles by year", stats["by_year"], "bar"),
        "body_words": ("Body length (words)", stats["word_counts"], "hist"),
        "furniture": ("Furniture lines removed by category", stats["furniture_by_category"], "barh"),
    }
    paths = []
    for name, (title, data, kind) in plots.items():
        figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
        if not data:
            axes.text(0.5, 0.5, "no data", ha="center", va="center")
        elif kind == "hist":
            axes.hist(data, bins=min(30, max(5, len(data))), color="#3b6ea5")
        elif kind == "bar":
            axes.bar([str(k) for k, _ in data], [n for _, n in data], color="#3b6ea5")
        else:
            axes.barh([str(k) for k, _ in reversed(data)], [n for _, n in reversed(data)], color="#3b6ea5")
        if data:  # counts are whole: no "0.5 articles" ticks
            (axes.xaxis if kind == "barh" else axes.yaxis).set_major_locator(MaxNLocator(integer=True))
        axes.set_title(title)
        figure.tight_layout()
        path = folder / f"{name}.png"
        figure.savefig(path, metadata={"Software": None})
        plt.close(figure)
        paths.append(path)
    return paths


def _size_category(rows: int) -> str:
    """The Hugging Face size category of ``rows`` examples."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return name
    return "1M<n<10M" if rows < 10_000_000 else "10M<n<100M"


def _card_header(folder: Path, manifest: dict, stats: dict) -> dict:
    """The dataset card's YAML header: configs (data files) and features per table."""
    languages = sorted({lang.split("-")[0].lower() for lang, _ in stats["by_language"] if lang not in ("(unknown)", "(other)")})
    rows = {"articles": stats["articles"], "furniture": stats["furniture_lines"],
            "changes": sum(manifest["changes"]["articles"].values())}
    header = {"pretty_name": f"commentary {manifest['version']}", "license": "other", "license_name": LICENSE_NAME,
              "license_link": LICENSE_FILE}
    if languages:
        header["language"] = languages
    header |= {"size_categories": [_size_category(stats["canonical"])], "task_categories": list(TASK_CATEGORIES),
               "tags": ["commentary", "opinion", "news"]}
    header["configs"] = [{"config_name": CONFIG_NAMES[name], **({"default": True} if name == "articles" else {}),
                          "data_files": [{"split": "train", "path": table.files}]} for name, table in RELEASE_TABLES.items()]
    header["dataset_info"] = [{
        "config_name": CONFIG_NAMES[name],
        "features": [_feature(f.name, f.type) for f in table.schema],
        "splits": [{"name": "train", "num_examples": rows[name],
                    "num_bytes": sum(p.stat().st_size for p in table.paths(folder))}],
    } for name, table in RELEASE_TABLES.items()]
    return header


def _feature(name: str, kind: pa.DataType) -> dict:
    if pa.types.is_list(kind):
        return {"name": name, "sequence": _dtype(kind.value_type)}
    if pa.types.is_struct(kind):
        return {"name": name, "struct": [_feature(f.name, f.type) for f in kind]}
    return {"name": name, "dtype": _dtype(kind)}


def _dtype(kind: pa.DataType) -> str:
    return "date32" if pa.types.is_date32(kind) else str(kind)


_FRICTIONLESS_TYPES = {"String": "string", "Int64": "integer", "Date": "date", "List": "array", "Struct": "object"}
_CONSTRAINTS = {"str_matches": ("pattern", "pattern"), "isin": ("enum", "allowed_values"),
                "greater_than_or_equal_to": ("minimum", "min_value"), "str_length": ("minLength", "min_value")}


def datapackage(manifest: dict, files: dict[str, dict]) -> dict:
    """A Frictionless Data Package: one resource per table with its files (bytes, sha256) and schema."""
    resources = []
    for name, table in RELEASE_TABLES.items():
        parts = sorted(path for path in files if Path(path).match(table.files))
        columns = table.model.to_schema().columns
        resource = {
            "name": name, "path": parts, "format": "parquet", "mediatype": "application/vnd.apache.parquet",
            "description": " ".join((table.model.__doc__ or "").split()),
            "bytes": sum(files[p]["bytes"] for p in parts),
            "files": [{"path": p, "bytes": files[p]["bytes"], "hash": f"sha256:{files[p]['sha256']}"} for p in parts],
            "schema": {"fields": [_field(column_name, column) for column_name, column in columns.items()],
                       "primaryKey": list(table.key)},
        }
        if name == "furniture":
            resource["schema"]["foreignKeys"] = [{"fields": "doc_id", "reference": {"resource": "articles", "fields": "doc_id"}}]
        resources.append(resource)
    return {"profile": "data-package", "name": "commentary", "version": manifest["version"],
            "created": manifest["created_at"], "resources": resources}


def _field(name: str, column) -> dict:
    kind = str(column.dtype).split("(")[0]
    spec = {"name": name, "type": _FRICTIONLESS_TYPES[kind]}
    if column.description:
        spec["description"] = column.description
    constraints = {"required": not column.nullable}
    if column.unique:
        constraints["unique"] = True
    for check in column.checks:
        if check.name in _CONSTRAINTS:
            key, statistic = _CONSTRAINTS[check.name]
            constraints[key] = check.statistics[statistic]
    spec["constraints"] = constraints
    return spec


def write_datapackage(folder: Path, manifest: dict, files: dict[str, dict]) -> Path:
    path = folder / "datapackage.json"
    path.write_text(json.dumps(datapackage(manifest, files), indent=2) + "\n")
    return path
