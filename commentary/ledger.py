"""What a run did with each raw file (the ledger), what its release outcome was, and what produced the release (provenance)."""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from commentary import tables
from commentary.clean.model import HTML_MODEL_PATH, MODEL_PATH, LineModel
from commentary.release.manifest import sha256_file
from commentary.runfolder import NOTES, SCHEMAS, RunFolder
from schemas import models
from schemas.validation import split_valid

if TYPE_CHECKING:
    from commentary.steps import RunPlan


class Result(StrEnum):
    """How a run's release step ended; the value of each but PUBLISHED is the ``reason`` the ledger records."""

    PUBLISHED = "published"
    NOTHING_CHANGED = "nothing changed since the latest release"
    HELD = "critical expectations failed"
    #: The run was stopped after its release was renamed into place but before LATEST named it; the next run removed it.
    INTERRUPTED = "interrupted before LATEST named the release; it was removed"


@dataclass(frozen=True)
class ReleaseOutcome:
    """The release step's outcome: a release published, none needed, one held back by the quality gate, or one
    removed because its run was stopped before it was published."""

    result: Result
    #: The release published, or the latest one when nothing changed.
    version: str | None = None
    #: The published release's row counts per table.
    counts: dict | None = None
    #: The critical expectations that held the release back.
    failed: tuple[str, ...] = ()
    #: The earlier run whose curate, quality and release results this run took (its inputs were the same).
    same_inputs_as_run: str | None = None
    mirrored_to: str | None = None

    @property
    def published(self) -> bool:
        return self.result is Result.PUBLISHED

    @property
    def current(self) -> bool:
        """Whether the latest release holds this run's articles (published now, or nothing changed)."""
        return self.result in (Result.PUBLISHED, Result.NOTHING_CHANGED)

    def record(self) -> dict:
        """The outcome as the ledger's ``release`` entry."""
        if self.result is Result.PUBLISHED:
            entry = {"published": True, "version": self.version, "counts": self.counts}
        elif self.result is Result.HELD:
            entry = {"published": False, "reason": str(self.result), "failed": list(self.failed)}
        else:
            entry = {"published": False, "reason": str(self.result), "version": self.version}
        if self.same_inputs_as_run:
            entry["same_inputs_as_run"] = self.same_inputs_as_run
        if self.mirrored_to:
            entry["mirrored_to"] = self.mirrored_to
        return entry

    @classmethod
    def from_record(cls, entry: object) -> ReleaseOutcome | None:
        """The outcome a ledger's ``release`` entry records; None for an entry that is not one."""
        if not isinstance(entry, dict):
            return None
        if entry.get("published") is True:
            result = Result.PUBLISHED
        elif entry.get("reason") in set(Result) - {Result.PUBLISHED}:
            result = Result(entry["reason"])
        else:
            return None
        return cls(result, entry.get("version"), entry.get("counts"), tuple(entry.get("failed", ())),
                   entry.get("same_inputs_as_run"), entry.get("mirrored_to"))


def merge_notes(run: RunFolder, kind: str) -> pl.DataFrame:
    """Gather every stage's ``rejects`` or ``repairs`` into ``rejects.parquet`` or ``repairs.parquet``; returns them."""
    notes = tables.read_parquet(run.notes(kind), NOTES[kind]).sort("source_path", "stage", "reason")
    valid, failed = split_valid(notes, models.Reject if kind == "rejects" else models.Repair)
    if failed.height:
        raise ValueError(f"{kind} records break their own schema: {failed.head(3).to_dicts()}")
    run.write_merged(kind, valid)
    return valid


def ledger(plan: RunPlan, outcome: ReleaseOutcome, timings: dict | None = None) -> dict:
    """Account for every raw file: seen = released + rejected + duplicates, checked here; writes ``ledger.json``.

    The check is by path, not only by count: each raw file must have exactly one outcome. When
    the quality gate holds a release back, its articles are rejected at stage ``release``.
    Repairs (files changed to become usable) are counted beside the balance. ``timings``
    (seconds per stage) are recorded as given.
    """
    run = plan.run
    rejects = merge_notes(run, "rejects")
    released = run.articles().frame(["source_path", "duplicate_of"])
    if outcome.result is Result.HELD:
        released = released.head(0)
    repairs = merge_notes(run, "repairs")
    duplicates = released["duplicate_of"].is_not_null().sum()
    seen = Counter(raw.rel_path for shard in plan.shards for raw in shard)
    accounted = Counter(released["source_path"].to_list() + rejects["source_path"].to_list())
    entry = {
        "run_id": run.run_id,
        "seen": plan.seen,
        "released": released.height - duplicates,
        "duplicates": duplicates,
        "rejected": rejects.height,
        "rejected_by_reason": dict(sorted(rejects.group_by("reason").len().iter_rows())),
        "repaired": repairs["source_path"].n_unique(),
        "repaired_by_reason": dict(sorted(repairs.group_by("reason").len().iter_rows())),
        "unaccounted": sorted((seen - accounted).elements()),
        "counted_twice_or_unknown": sorted((accounted - seen).elements()),
        "release": outcome.record(),
        "timings": timings,
    }
    entry["balanced"] = (entry["seen"] == entry["released"] + entry["rejected"] + entry["duplicates"]
                         and not entry["unaccounted"] and not entry["counted_twice_or_unknown"])
    run.write_record(run.ledger, entry)
    if not entry["balanced"]:
        raise RuntimeError(f"ledger does not balance: {entry}")
    return entry


def provenance(run: RunFolder) -> dict:
    """Fingerprints of what produced a release: raw input, rules, the lock file, and each line model with the data it was trained on."""
    # The raw input: each document's key (its bytes' hash, path and sidecar fields), and each file refused at ingest.
    keys = tables.read_parquet(run.shards("keys"), SCHEMAS["keys"], ["source_path", "cache_key"])
    refused = tables.read_parquet(run.notes("rejects", "ingest"), NOTES["rejects"], ["source_path", "reason"])
    raw = hashlib.sha256()
    for path, key in keys.sort("source_path").iter_rows():
        raw.update(f"{path}\0{key}\n".encode())
    for path, reason in refused.sort("source_path", "reason").iter_rows():
        raw.update(f"{path}\0refused\0{reason}\n".encode())
    rules = hashlib.sha256()
    rules_root = Path(__file__).parent / "rules"
    for path in sorted(p for p in rules_root.rglob("*") if p.is_file()):
        rules.update(path.relative_to(rules_root).as_posix().encode() + b"\0" + path.read_bytes())
    lock = Path(__file__).resolve().parents[1] / "uv.lock"
    return {
        "raw_fingerprint": raw.hexdigest(),
        "rules_version": rules.hexdigest()[:16],
        "lock_sha256": sha256_file(lock) if lock.is_file() else None,
        "models": {name: {"sha256": sha256_file(path), "trained_on": LineModel.load(path).trained_on}
                   for name, path in (("text", MODEL_PATH), ("html", HTML_MODEL_PATH))},
    }
