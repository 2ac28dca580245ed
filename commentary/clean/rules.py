"""Furniture rules as data: load ``commentary/rules/*.toml`` and match them over a whole shard.

Each rule has an ``id`` (``<category>.<name>``), a ``pattern`` matched against the stripped line
(case-insensitive unless ``case_sensitive = true``), an optional ``max_words`` cap, a
``description``, and ``examples`` / ``counter_examples`` that the test suite checks.
Patterns use the Rust regex dialect of Polars, so they are matched in bulk, never per line.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import polars as pl

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"

#: Order in which rule files are tried; the first matching rule decides a line. Specific,
#: phrase-like furniture goes first so that e.g. "COMMENTARY BY" is a byline, not a section.
CATEGORY_PRIORITY = (
    "syndication", "disclaimer", "bio", "summary", "tags", "byline", "section",
    "engagement", "related", "media", "nav",
)


@dataclass(frozen=True)
class Rule:
    """One furniture rule loaded from TOML."""

    id: str
    category: str
    pattern: str
    description: str
    max_words: int | None = None
    case_sensitive: bool = False
    examples: tuple[str, ...] = ()
    counter_examples: tuple[str, ...] = ()

    @property
    def regex(self) -> str:
        """The pattern as matched by Polars (with the case flag applied)."""
        return self.pattern if self.case_sensitive else f"(?i){self.pattern}"


@cache
def load_rules(rules_dir: Path = RULES_DIR) -> tuple[Rule, ...]:
    """All rules, in priority order (by category, then file order)."""
    rules = []
    for category in CATEGORY_PRIORITY:
        path = rules_dir / f"{category}.toml"
        for raw in tomllib.loads(path.read_text(encoding="utf-8"))["rule"]:
            if raw["id"].split(".")[0] != category:
                raise ValueError(f"rule {raw['id']} is filed under {path.name}")
            rules.append(Rule(
                id=raw["id"], category=category, pattern=raw["pattern"],
                description=raw["description"], max_words=raw.get("max_words"),
                case_sensitive=raw.get("case_sensitive", False),
                examples=tuple(raw.get("examples", ())),
                counter_examples=tuple(raw.get("counter_examples", ())),
            ))
    return tuple(rules)


def rule_match_expr(rule: Rule, text: pl.Expr, n_words: pl.Expr) -> pl.Expr:
    """Boolean expression: does ``rule`` match the stripped line ``text``."""
    hit = text.str.contains(rule.regex)
    if rule.max_words is not None:
        hit = hit & (n_words <= rule.max_words)
    return hit


def first_matching_rule(text: pl.Expr, n_words: pl.Expr, rules: tuple[Rule, ...]) -> pl.Expr:
    """Index into ``rules`` of the first rule that matches each line, or null."""
    expr = pl.lit(None, dtype=pl.Int16)
    for index in reversed(range(len(rules))):
        expr = pl.when(rule_match_expr(rules[index], text, n_words)).then(pl.lit(index, pl.Int16)).otherwise(expr)
    return expr

