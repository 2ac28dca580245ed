"""Topic tags from tag lines and from keyword metadata, for the text and the HTML paths.

Items are separated by , ; | • · or a hashtag's ``#``; inside a tag line, a second label ("... Tagged
With: ...") separates items too (labels in ``commentary/rules/lexicons/tags.toml``). Tags keep their
first spelling, once each; a comment count or prompt among them ("1 Comment", "Leave a comment") is none.
"""
from __future__ import annotations

import re

from commentary.clean.rules import load_lexicon

_LABELS = "(?:" + "|".join(load_lexicon("tags")["labels"]) + ")"
#: The label that opens a tag line ("Tags:", "Filed under").
TAG_LABEL = re.compile(r"^\W*" + _LABELS + r"\s*:?\s*", re.IGNORECASE)
TAG_SEPARATORS = re.compile(r"\s*(?:[,|;•·]|(?<!\S)#(?=\w)|\b" + _LABELS + r"\s*:)\s*", re.IGNORECASE)
#: A post's comment count or the prompt to comment, which a tag line may end with: no topic.
COMMENT_COUNT_OR_PROMPT = re.compile(r"^(?:(?:\d[\d,]*|no|one)\s+(?:comments?|responses?|replies)"
                                     r"|(?:leave|post|add|write)\s+a\s+(?:comment|reply|response))$", re.IGNORECASE)


def split_tags(raw) -> list[str]:
    """Tags of a string or a list of strings (other values give none), white space collapsed."""
    items = raw if isinstance(raw, list) else [raw]
    tags = (" ".join(tag.split()) for item in items if isinstance(item, str) for tag in TAG_SEPARATORS.split(item))
    return list(dict.fromkeys(tag for tag in tags if tag and not COMMENT_COUNT_OR_PROMPT.match(tag)))


def line_tags(text: str) -> list[str]:
    """Tags of a visible tag line, its label removed.

    A run of capitalised words without separators (links flattened with spaces) is read as
    two-word names when it splits evenly, else kept whole.
    """
    tags = split_tags(TAG_LABEL.sub("", text, count=1))
    if len(tags) != 1:
        return tags
    words = tags[0].split()
    if len(words) > 2 and len(words) % 2 == 0 and all(w[0].isupper() for w in words):
        return [" ".join(words[i:i + 2]) for i in range(0, len(words), 2)]
    return tags
