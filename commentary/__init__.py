"""Clean, versioned commentary articles: ``from commentary import load, duckdb_views``."""
from __future__ import annotations

__all__ = ["duckdb_views", "load"]


def __getattr__(name: str):
    """Import the reader on first use, so that ``import commentary.<module>`` stays light."""
    if name in __all__:
        from commentary import reader

        return getattr(reader, name)
    raise AttributeError(f"module 'commentary' has no attribute {name!r}")
