"""Furniture rules as data: load ``commentary/rules/*.toml`` and match them over a whole shard.

The structural rules (``structural.toml``) are declared there too, with their examples, but decided
by ``text.py``; word lists of field extraction are in ``commentary/rules/lexicons/``.

Each rule has an ``id`` (``<category>.<name>``), a ``pattern`` matched against the stripped line
(case-insensitive unless ``case_sensitive = true``), an optional ``max_words`` cap, a
``description``, and ``examples`` / ``counter_examples`` that the test suite checks. An optional
``prefilter`` is a cheap pattern (under the same case flag) that every line the rule matches also matches,
such as a word its every match holds: the rule's pattern is then only tried on the lines it selects.
Patterns use the Rust regex dialect of Polars, so they are matched in bulk, never per line.
Consecutive rules are matched in small groups, one alternation per group (see :class:`RuleGroup`).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl

from commentary.clean.distinct import first_rows, text_ids

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
LEXICONS_DIR = RULES_DIR / "lexicons"

#: Order in which rule files are tried; the first matching rule decides a line. Specific,
#: phrase-like furniture goes first so that e.g. "COMMENTARY BY" is a byline, not a section.
CATEGORY_PRIORITY = (
    "syndication", "disclaimer", "bio", "summary", "tags", "byline", "section", "comments",
    "engagement", "related", "media", "nav",
)
#: Most rules one alternation holds (the size that matched fastest: docs/PERFORMANCE.md, "Cleaning speed").
RULE_GROUP_SIZE = 4


@dataclass(frozen=True)
class Rule:
    """One furniture rule loaded from TOML."""

    id: str
    category: str
    pattern: str
    description: str
    max_words: int | None = None
    case_sensitive: bool = False
    prefilter: str | None = None
    examples: tuple[str, ...] = ()
    counter_examples: tuple[str, ...] = ()

    @property
    def regex(self) -> str:
        """The pattern as matched by Polars (with the case flag applied)."""
        return _with_case(self.pattern, self.case_sensitive)

    @property
    def prefilter_regex(self) -> str | None:
        """The prefilter as matched by Polars (with the rule's case flag), or None."""
        return None if self.prefilter is None else _with_case(self.prefilter, self.case_sensitive)

    @property
    def anchored(self) -> bool:
        """Whether every match starts at the start of the line (each top-level branch opens with ``^``)."""
        return all(branch.startswith("^") for branch in _top_level_branches(self.pattern))


def _with_case(pattern: str, case_sensitive: bool) -> str:
    return pattern if case_sensitive else f"(?i){pattern}"


def _top_level_branches(pattern: str) -> list[str]:
    """The branches of the outermost alternation of ``pattern``."""
    branches, start, depth, in_class, i = [], 0, 0, 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 1
        elif in_class:
            in_class += {"[": 1, "]": -1}.get(c, 0)
        elif c == "[":
            in_class = 1
            i += pattern[i + 1:i + 2] == "^"
            i += pattern[i + 1:i + 2] == "]"
        elif c in "()":
            depth += 1 if c == "(" else -1
        elif c == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
        i += 1
    return [*branches, pattern[start:]]


@dataclass(frozen=True)
class RuleGroup:
    """Consecutive rules with the same ``max_words``, matched as one alternation.

    An empty named group after each rule's branch tells which rule matched. Every rule but the
    last is anchored, so all their matches start at the start of the line, and the regex engine's
    leftmost-first choice is the first rule that matches, as when the rules are tried one by one.
    """

    first: int
    rules: tuple[Rule, ...]

    @property
    def regex(self) -> str:
        if len(self.rules) == 1:
            return self.rules[0].regex
        return "|".join(f"(?:{rule.regex})(?P<rule{offset}>)" for offset, rule in enumerate(self.rules))

    @property
    def max_words(self) -> int | None:
        return self.rules[0].max_words

    @property
    def prefilter(self) -> str | None:
        """A line the group matches also matches this: its rules' prefilters (None unless all have one)."""
        if any(rule.prefilter is None for rule in self.rules):
            return None
        return "|".join(f"(?:{rule.prefilter_regex})" for rule in self.rules)

    def can_take(self, rule: Rule) -> bool:
        """Whether ``rule``, the next one in priority order, can join the group."""
        return len(self.rules) < RULE_GROUP_SIZE and rule.max_words == self.max_words and self.rules[-1].anchored


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
                case_sensitive=raw.get("case_sensitive", False), prefilter=raw.get("prefilter"),
                examples=tuple(raw.get("examples", ())),
                counter_examples=tuple(raw.get("counter_examples", ())),
            ))
    return tuple(rules)


@dataclass(frozen=True)
class PageExample:
    """A page (its lines; ``shard``: the lines of the pages cleaned with it) and one of its lines."""

    page: tuple[str, ...]
    line: str
    shard: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class StructuralRule:
    """A rule of ``text.py`` that decides a line by its position and neighbours, declared in ``structural.toml``."""

    id: str
    category: str
    description: str
    examples: tuple[PageExample, ...]
    counter_examples: tuple[PageExample, ...] = ()


@cache
def load_structural_rules(rules_dir: Path = RULES_DIR) -> dict[str, StructuralRule]:
    """The structural rules by id."""
    def examples(raw: list[dict]) -> tuple[PageExample, ...]:
        return tuple(PageExample(tuple(e["page"]), e["line"], tuple(map(tuple, e.get("shard", ())))) for e in raw)

    raws = tomllib.loads((rules_dir / "structural.toml").read_text(encoding="utf-8"))["rule"]
    return {raw["id"]: StructuralRule(raw["id"], raw.get("category", raw["id"].split(".")[0]), raw["description"],
                                      examples(raw["examples"]), examples(raw.get("counter_examples", [])))
            for raw in raws}


@cache
def load_lexicon(name: str) -> dict:
    """The word lists of ``commentary/rules/lexicons/<name>.toml``."""
    return tomllib.loads((LEXICONS_DIR / f"{name}.toml").read_text(encoding="utf-8"))


def rule_match_expr(rule: Rule, text: pl.Expr, n_words: pl.Expr) -> pl.Expr:
    """Boolean expression: does ``rule`` match the stripped line ``text``."""
    hit = text.str.contains(rule.regex)
    if rule.max_words is not None:
        hit = hit & (n_words <= rule.max_words)
    return hit


@cache
def rule_groups(rules: tuple[Rule, ...]) -> tuple[RuleGroup, ...]:
    """``rules`` cut into groups, in order."""
    groups: list[RuleGroup] = []
    for index, rule in enumerate(rules):
        if groups and groups[-1].can_take(rule):
            groups[-1] = RuleGroup(groups[-1].first, (*groups[-1].rules, rule))
        else:
            groups.append(RuleGroup(index, (rule,)))
    return tuple(groups)


def first_matching_rule(lines: pl.DataFrame, rules: tuple[Rule, ...]) -> pl.Series:
    """Index into ``rules`` of the first rule that matches each line (``text``, ``n_words``), or null.

    Each distinct text is matched once: a shard's pages repeat their sites' menus and footers (about half of
    the short lines of a real-size shard are repeats).
    """
    ids = text_ids(lines["text"])
    return rule_of_every_line(lines.select("text", "n_words")[first_rows(ids)], rules).gather(ids)


def matches_where(lines: pl.DataFrame, pattern: str, where: pl.Expr) -> pl.Series:
    """Whether ``text`` matches ``pattern`` and ``where`` holds (a null ``where`` counts as false).

    The regex only runs on the rows where ``where`` holds: Polars runs it on every row it is given.
    """
    rows = lines.select(pl.arg_where(where.fill_null(False))).to_series()
    return pl.zeros(lines.height, pl.Boolean, eager=True).scatter(rows, lines["text"].gather(rows).str.contains(pattern))


def rule_of_every_line(lines: pl.DataFrame, rules: tuple[Rule, ...]) -> pl.Series:
    """``first_matching_rule`` with every line matched (for lines already distinct)."""
    groups = rule_groups(rules)
    text = lines["text"]
    rule = np.full(lines.height, -1, dtype=np.int16)
    # Groups in priority order: a group's pattern is only run on the lines its search found that no earlier group took.
    for group, found in zip(groups, _searched(lines, groups)):
        rows = found[rule[found] < 0]
        if len(group.rules) == 1 and group.prefilter is None:
            rule[rows] = group.first
        elif len(rows):
            matched, offset = _matching_member(text.gather(rows), group)
            rule[rows[matched]] = group.first + offset[matched]
    return pl.Series("rule", rule).scatter(np.flatnonzero(rule < 0), None)


def _searched(lines: pl.DataFrame, groups: tuple[RuleGroup, ...]) -> list[np.ndarray]:
    """The rows of ``lines`` (``text``, ``n_words``) that each group's search (its prefilter, else its pattern) finds,
    under the group's word cap."""
    text, n_words = pl.col("text"), pl.col("n_words")
    tests = []
    for group in groups:
        test = text.str.contains(group.prefilter or group.regex)
        tests.append(test if group.max_words is None else test & (n_words <= group.max_words))
    tested = lines.select(test.alias(str(index)) for index, test in enumerate(tests))
    return [np.flatnonzero(tested[str(index)].to_numpy()) for index in range(len(groups))]


def _matching_member(text: pl.Series, group: RuleGroup) -> tuple[np.ndarray, np.ndarray]:
    """Whether ``group``'s pattern matches each of ``text``, and the offset in the group of the rule that matched (read
    from the empty marker group after each rule's branch)."""
    if len(group.rules) == 1:
        matched = text.str.contains(group.regex).to_numpy()
        return matched, np.zeros(len(matched), dtype=np.int16)
    markers = text.str.extract_groups(group.regex).struct.unnest()
    present = np.column_stack([markers[f"rule{k}"].is_not_null().to_numpy() for k in range(len(group.rules))])
    return present.any(axis=1), present.argmax(axis=1).astype(np.int16)
