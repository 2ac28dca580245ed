"""Great Expectations suites for every stage table, and the runner that writes Data Docs.

Each expectation carries ``meta.critical``. A critical expectation about single rows
(``meta.per_row``) that some rows fail quarantines those rows: the runner names them and the
pipeline rejects them and releases the rest. A failed critical expectation about the whole table
(row count, columns, unique keys) stops the release (the run is still recorded). The others are
reported as warnings.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig

from commentary.data_docs import make_offline
from commentary.settings import MAX_PLAUSIBLE_YEAR, MIN_SIDECAR_YEAR
from schemas.measures import ARTICLE_MEASURES
from schemas.models import CATEGORIES

#: Bodies shorter than this are suspicious (a teaser, a listing); longer ones are bounded by ingest caps.
MIN_BODY_CHARS = 200
#: Dates are compared as timestamps: pandas holds a date column as ``datetime64``, which GX cannot compare with ``date``.
EARLIEST_DATE = dt.datetime(MIN_SIDECAR_YEAR, 1, 1)  # a sidecar's date may be earlier than a page's
LATEST_DATE = dt.datetime(MAX_PLAUSIBLE_YEAR, 12, 31)


def _critical(expectation: gxe.Expectation, per_row: bool = False) -> gxe.Expectation:
    """Mark ``expectation`` critical; ``per_row``: its failing rows are quarantined instead of the release held."""
    expectation.meta = {"critical": True, "per_row": per_row}
    return expectation


def suites() -> dict[str, list[gxe.Expectation]]:
    """The expectations of each stage, by stage table name."""
    return {
        "ingested": [
            _critical(gxe.ExpectTableRowCountToBeBetween(min_value=1)),
            _critical(gxe.ExpectColumnValuesToBeUnique(column="doc_id")),
            _critical(gxe.ExpectColumnValuesToNotBeNull(column="text_chars"), per_row=True),
            gxe.ExpectColumnValuesToBeInSet(column="format", value_set=["text", "html"]),
            gxe.ExpectColumnValuesToBeBetween(column="bytes", min_value=1),
        ],
        "articles": [
            _critical(gxe.ExpectTableRowCountToBeBetween(min_value=1)),
            _critical(gxe.ExpectTableColumnsToMatchSet(column_set=list(ARTICLE_MEASURES), exact_match=True)),
            _critical(gxe.ExpectColumnValuesToBeUnique(column="doc_id")),
            _critical(gxe.ExpectColumnValuesToNotBeNull(column="body_chars"), per_row=True),
            _critical(gxe.ExpectColumnValuesToBeNull(column="known_furniture"), per_row=True),
            gxe.ExpectColumnValuesToNotBeNull(column="title", mostly=0.95),
            gxe.ExpectColumnValuesToBeBetween(column="body_chars", min_value=MIN_BODY_CHARS, mostly=0.95),
            gxe.ExpectColumnValuesToBeBetween(column="word_count", min_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="published_date", min_value=EARLIEST_DATE, max_value=LATEST_DATE),
        ],
        "furniture": [
            _critical(gxe.ExpectColumnValuesToBeInSet(column="category", value_set=[c for c in CATEGORIES if c != "body"])),
            gxe.ExpectColumnValuesToBeBetween(column="line_no", min_value=1),
            gxe.ExpectColumnValuesToNotBeNull(column="rule_id"),
        ],
    }


def run_suites(project_root: Path, frames: dict[str, pd.DataFrame]) -> dict:
    """Run each stage's suite on its whole table, update Data Docs under ``project_root``.

    Returns a JSON-ready report: per stage, each expectation's outcome; ``critical_failed``, the
    failed critical expectations about whole tables; ``quarantined``, each row that failed a per-row
    critical expectation: its ``doc_id``, the ``check``, a reason code and the failing ``value``;
    ``errors``, the expectations that raised instead of giving a result (an error of the check, never
    counted as "not met").
    """
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="file", project_root_dir=str(project_root))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.variables.save()
    source = context.data_sources.add_or_update_pandas(name="commentary")
    report = {"stages": {}, "critical_failed": [], "quarantined": [], "errors": [],
              "data_docs": str(project_root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html")}
    for stage, expectations in suites().items():
        if stage not in frames:
            continue
        asset = next((a for a in source.assets if a.name == stage), None) or source.add_dataframe_asset(name=stage)
        batch = next((b for b in asset.batch_definitions if b.name == "whole"), None) or asset.add_batch_definition_whole_dataframe("whole")
        suite = context.suites.add_or_update(gx.ExpectationSuite(name=stage, expectations=expectations))
        validation = context.validation_definitions.add_or_update(gx.ValidationDefinition(name=stage, data=batch, suite=suite))
        checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
            name=stage, validation_definitions=[validation], actions=[],
            result_format=({"result_format": "COMPLETE", "unexpected_index_column_names": ["doc_id"]}
                           if "doc_id" in frames[stage].columns else {"result_format": "SUMMARY"}),
        ))
        result = checkpoint.run(batch_parameters={"dataframe": frames[stage]})
        outcomes = []
        for validation_result in result.run_results.values():
            for item in validation_result.results:
                config = item.expectation_config
                critical = bool((config.meta or {}).get("critical"))
                error = _raised(item)
                outcomes.append({
                    "expectation": config.type, "column": config.kwargs.get("column"),
                    "success": bool(item.success), "critical": critical,
                    "unexpected_count": (item.result or {}).get("unexpected_count"),
                    "observed_value": _plain((item.result or {}).get("observed_value")),
                    "error": error,
                })
                name = f"{stage}: {config.type}({config.kwargs.get('column') or ''})"
                rows = (item.result or {}).get("unexpected_index_list")
                if error:
                    report["errors"].append(f"{name} raised {error}")
                elif critical and not item.success and (config.meta or {}).get("per_row") and rows is not None:
                    reason = f"quality:{config.type}:{config.kwargs['column']}"
                    report["quarantined"] += [{"doc_id": row["doc_id"], "check": name, "reason": reason,
                                               "value": _plain(row.get(config.kwargs["column"]))} for row in rows]
                elif critical and not item.success:
                    report["critical_failed"].append(name)
        report["stages"][stage] = {"success": bool(result.success), "rows": len(frames[stage]), "expectations": outcomes}
    context.build_data_docs()  # once for the three suites: an action per checkpoint would build the site three times
    make_offline(Path(report["data_docs"]).parent)
    return report


def _raised(item) -> str | None:
    """The first line of the exception an expectation raised, or None when it ran."""
    info = item.exception_info or {}
    infos = [info] if "raised_exception" in info else list(info.values())
    messages = [i.get("exception_message") or "an exception" for i in infos if isinstance(i, dict) and i.get("raised_exception")]
    return messages[0].strip().splitlines()[0] if messages else None


def _plain(value):
    """Observed values as JSON-ready scalars."""
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
