"""A release's data card (``README.md``), its charts, ``report.html`` and ``LICENSE.md``.

The card's sections are built once (``_sections``: text, ``Table`` and ``Image`` blocks) from the
release's statistics and the run's report; ``Markdown`` and ``Html`` render them, each only its
syntax. The card's ``features`` and data fields come from the Pandera models through
``tables.RELEASE_TABLES``, so the schema has one source.
"""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import yaml

from commentary import language
from commentary.release.manifest import Files
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
CHARTS_DIR = "charts"
_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
KNOWN_LIMITS = (
    "Furniture is removed by rules and a line model; a line they do not know stays in `body`. The `furniture` "
    "table lists every line removed from the cleaned text with the rule that removed it, so a removal can be checked or "
    "undone. Of an HTML page, the cleaned text is the main text that extraction took from the page: the page's other "
    "blocks (menus, scripts, sidebars) are not listed.",
    "`outlet`, `authors` and dates are left empty rather than guessed; see the missing-field shares above.",
    f"Near duplicates are found by MinHash on word {SHINGLE_WORDS}-grams (estimated Jaccard >= {NEAR_DUPLICATE_THRESHOLD:g}): a copy that was "
    "edited heavily is not found, and groups are transitive (A~B and B~C put A, B and C together).",
    "`language` comes from the sidecar or the page's metadata when they give one, else it is detected from the body "
    f"(py3langid; `field_sources.language` is `{language.SOURCE}`); bodies too short or too mixed to tell have none.",
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


def write(files: Files, manifest: dict, stats: dict, report: RunReport) -> None:
    """Write the charts, ``README.md``, ``report.html`` and ``LICENSE.md`` into a release folder (recorded in ``files``)."""
    stats = stats | _run_statistics(report)
    charts = _charts(files.folder / CHARTS_DIR, stats)
    for chart in charts:
        files.add(chart)
    sections = _sections(manifest, stats, charts, files.folder)
    title = f"commentary {manifest['version']}"
    files.write_text("README.md", "---\n" + yaml.safe_dump(_card_header(files, manifest, stats), sort_keys=False, allow_unicode=True)
                     + "---\n\n" + f"# {title}\n\n" + Markdown.render(sections))
    files.write_text("report.html", Html.render(sections, title))
    files.write_text(LICENSE_FILE, LICENSE_TEXT)


def _run_statistics(report: RunReport) -> dict:
    """What the card tells of the run besides the released tables: files seen, quality outcomes, rejects."""
    return {
        "seen": report.seen,
        "rejects_by_reason": sorted(report.rejects.group_by("stage", "reason").len().iter_rows(), key=lambda r: (-r[2], r[0], r[1])),
        "quality": [{"stage": stage, **outcome} for stage, result in (report.quality or {}).get("stages", {}).items()
                    for outcome in result["expectations"]],
        "data_docs": (report.quality or {}).get("data_docs"),
    }


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
            "(canonical articles; `include_duplicates=True` for all), or `commentary.duckdb_views(version=\""
            + manifest["version"] + "\")` for SQL views `articles` and `furniture` (canonical copies), `articles_all` and "
            "`furniture_all` (duplicates too) and `changes`. Any Parquet reader works on `articles/*.parquet`.",
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
        ("Furniture removed by category", ["Lines removed from the canonical articles.",
                                           Table(("category", "lines"), stats["furniture_by_category"]), chart["furniture"]]),
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


class Markdown:
    """The card's sections as Markdown."""

    @staticmethod
    def render(sections: list[tuple[str, list]]) -> str:
        return "\n".join(_walk(sections, Markdown))

    @staticmethod
    def heading(text: str) -> list[str]:
        return [f"## {text}\n"]

    @staticmethod
    def text(text: str) -> list[str]:
        return [text + "\n"]

    @staticmethod
    def table(block: Table) -> list[str]:
        return ["| " + " | ".join(block.header) + " |\n|" + "---|" * len(block.header),
                *("| " + " | ".join(map(_markdown_cell, row)) + " |" for row in block.rows), ""]

    @staticmethod
    def image(block: Image) -> list[str]:
        return [f"![{block.alt}]({block.path})\n"]


def _markdown_cell(value) -> str:
    """A value as one Markdown table cell: one line, its pipes escaped and HTML shown as text (a page's
    outlet name is untrusted)."""
    return html.escape(" ".join(str(value).split()), quote=False).replace("|", "\\|")


class Html:
    """The card's sections as a standalone HTML page."""

    @staticmethod
    def render(sections: list[tuple[str, list]], title: str) -> str:
        head = [f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>",
                "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#222}"
                "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #bbb;padding:.2rem .5rem;text-align:left}"
                "th{background:#e8eef6}img{max-width:100%}code{background:#f2f2f2}</style></head><body>",
                f"<h1>{html.escape(title)}</h1>"]
        return "\n".join(head + _walk(sections, Html)) + "\n</body></html>\n"

    @staticmethod
    def heading(text: str) -> list[str]:
        return [f"<h2>{html.escape(text)}</h2>"]

    @staticmethod
    def text(text: str) -> list[str]:
        return [f"<p>{_inline(text)}</p>"]

    @staticmethod
    def table(block: Table) -> list[str]:
        return ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in block.header) + "</tr>",
                *("<tr>" + "".join(f"<td>{_inline(str(v))}</td>" for v in row) + "</tr>" for row in block.rows), "</table>"]

    @staticmethod
    def image(block: Image) -> list[str]:
        return [f'<img src="{html.escape(block.path)}" alt="{html.escape(block.alt)}">']


def _walk(sections: list[tuple[str, list]], syntax: type[Markdown] | type[Html]) -> list[str]:
    """The lines of ``sections`` in one syntax; an empty table reads "None."."""
    out = []
    for heading, blocks in sections:
        out += syntax.heading(heading)
        for block in blocks:
            if isinstance(block, Table):
                out += syntax.table(block) if block.rows else syntax.text("None.")
            elif isinstance(block, Image):
                out += syntax.image(block)
            else:
                out += syntax.text(block)
    return out


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


def _card_header(files: Files, manifest: dict, stats: dict) -> dict:
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
                    "num_bytes": sum(entry["bytes"] for path, entry in files.entries().items() if Path(path).match(table.files))}],
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
