"""Measure cleaning through the pipeline itself: the seeds against their gold labels, and the
article-extraction benchmark's development split scored with its own metric.

Each variant is copied into a raw folder, run through the Prefect flow into its own curated
folder, and the released bodies are scored; a page the run rejected scores as empty.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl

from commentary import release
from commentary.stages import normalize_body

#: F1 floors on the benchmark's development split (issue 3); a run below any of them fails.
FLOORS = {"flat-blocks": 0.93, "flat-naive": 0.90, "html": 0.975}
#: Fields compared exactly with gold; ``author_bio`` is compared by its gold prefix.
GOLD_FIELDS = ("title", "authors", "published_date", "outlet", "section", "tags", "summary",
               "syndicated_from", "syndicated_date")


def stage_variant(benchmark: Path, variant: str, raw: Path) -> None:
    """Copy one benchmark variant into ``raw`` as ``<page_id>.txt`` or ``<page_id>.html.gz``."""
    shutil.rmtree(raw, ignore_errors=True)
    raw.mkdir(parents=True)
    pattern = "*.html.gz" if variant == "html" else "*.txt"
    for path in sorted((benchmark / variant).glob(pattern)):
        shutil.copyfile(path, raw / path.name)


def page_bodies(curated: Path) -> dict[str, dict[str, str]]:
    """Released canonical bodies keyed by benchmark page id (the file name before the first dot)."""
    if release.latest_version(curated) is None:
        return {}
    articles = release.read_release_table(curated)
    return {path.split("/")[-1].split(".")[0]: {"articleBody": body}
            for path, body in articles.select("source_path", "body").iter_rows()}


def score(shared: Path, predictions: dict, work: Path, name: str) -> dict:
    """Score predictions with the benchmark's own scorer; returns its metrics."""
    pred_path, out_path = work / f"{name}.predictions.json", work / f"{name}.scores.json"
    pred_path.write_text(json.dumps(predictions, ensure_ascii=False))
    subprocess.run([sys.executable, str(shared / "tools" / "score_aeb.py"), str(pred_path), "--json", str(out_path),
                    "--n-bootstrap", "200"], check=True, capture_output=True, text=True)
    return json.loads(out_path.read_text())[pred_path.stem]


def seed_mismatches(curated: Path, raw: Path, gold_path: Path) -> list[str]:
    """Every difference between the released seeds and gold: line categories, bodies, fields."""
    gold = json.loads(gold_path.read_text())["documents"]
    if release.latest_version(curated) is None:
        return [f"no release was published; see {curated}/runs/*/ledger.json"]
    articles = {row["source_path"]: row for row in release.read_release_table(curated).iter_rows(named=True)}
    furniture = release.read_release_table(curated, "furniture")
    problems = []
    for doc in gold:
        name = doc["file"]
        row = articles.get(name)
        if row is None:
            problems.append(f"{name}: not released")
            continue
        removed = dict(furniture.filter(pl.col("doc_id") == row["doc_id"]).select("line_no", "category").iter_rows())
        lines = (raw / name).read_text(encoding="utf-8").split("\n")
        for number, label in doc["lines"].items():
            got = removed.get(int(number), "body")
            if got != label:
                problems.append(f"{name}:{number}: {label} expected, got {got}: {lines[int(number) - 1][:60]!r}")
        if row["body"] != normalize_body(doc["body"]):  # released bodies have their spacing normalised
            problems.append(f"{name}: body differs from gold")
        for field in GOLD_FIELDS:
            if field in doc["fields"]:
                expected, got = doc["fields"][field], row[field]
                got = got.isoformat() if hasattr(got, "isoformat") else got
                if (expected or None) != (got or None):
                    problems.append(f"{name}: {field} {expected!r} expected, got {got!r}")
        prefix = doc["fields"].get("author_bio_startswith")
        if (prefix is None) != (row["author_bio"] is None) or (prefix and not row["author_bio"].startswith(prefix)):
            problems.append(f"{name}: author_bio {prefix!r}... expected, got {(row['author_bio'] or '')[:50]!r}")
    return problems


def evaluate(shared: Path, seeds: Path, work: Path) -> int:
    """Run the seeds and every benchmark variant through the pipeline; print a table; 0 when all floors hold."""
    from flows.pipeline import run_pipeline

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run_pipeline(raw=str(seeds), curated=str(work / "seeds"))
    problems = seed_mismatches(work / "seeds", seeds, shared / "gold" / "seeds.json")
    rows = [("seeds", "exact" if not problems else f"{len(problems)} mismatches", "exact", not problems)]
    for variant, floor in FLOORS.items():
        raw, curated = work / variant / "raw", work / variant / "curated"
        stage_variant(shared / "benchmark", variant, raw)
        run_pipeline(raw=str(raw), curated=str(curated))
        metrics = score(shared, page_bodies(curated), work, variant)
        rows.append((variant, f"F1 {metrics['f1']:.3f} (P {metrics['precision']:.3f}, R {metrics['recall']:.3f})",
                     f">= {floor}", metrics["f1"] >= floor))
    print(f"\n{'input':<12} {'result':<36} {'floor':<8} ok")
    for name, result, floor, ok in rows:
        print(f"{name:<12} {result:<36} {floor:<8} {'yes' if ok else 'NO'}")
    for problem in problems:
        print(f"  {problem}")
    return 0 if all(ok for *_, ok in rows) else 1
