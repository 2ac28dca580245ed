"""Find the processes a test started, by an environment mark that every process they start inherits (in ``/proc``)."""
from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def processes_marked(mark: str) -> dict[int, str]:
    """The living processes whose environment holds ``mark`` (``NAME=value``), with their command lines."""
    found = {}
    for entry in os.listdir("/proc"):
        process = Path("/proc", entry)
        try:
            if mark.encode() in (process / "environ").read_bytes().split(b"\0") and alive(int(entry)):
                found[int(entry)] = (process / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
    return found
