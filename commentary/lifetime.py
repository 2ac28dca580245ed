"""Processes that die with the process that started them (Linux ``PR_SET_PDEATHSIG``): a helper process of a
run (its whole-corpus process, its temporary API server) cannot outlive the run, even one killed with SIGKILL."""
from __future__ import annotations

import contextlib
import os
import signal

_PR_SET_PDEATHSIG = 1
#: glibc's ``mallopt`` parameters by name (malloc.h).
_MALLOC_PARAMETERS = {"M_TRIM_THRESHOLD": -1, "M_TOP_PAD": -2, "M_MMAP_THRESHOLD": -3}


def die_with(parent_pid: int) -> None:
    """Have the kernel send this process SIGKILL when its parent dies, and exit at once if the parent is
    no longer ``parent_pid`` (it died before the request). Without ``prctl`` (not Linux) only the check holds."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


def serve(parent_pid: int, environment: dict[str, str], malloc_options: dict[str, int] | None = None) -> None:
    """Start a process that serves ``parent_pid`` and dies with it (``die_with``), with ``environment`` set before
    anything is imported that reads it once (Polars reads ``POLARS_MAX_THREADS`` when imported) and glibc's
    ``malloc_options`` (``set_malloc_options``)."""
    os.environ.update(environment)
    die_with(parent_pid)
    set_malloc_options(malloc_options or {})


def set_malloc_options(options: dict[str, int]) -> None:
    """Set glibc's malloc ``options`` by name (``mallopt``) for this process; nothing where the C library has no ``mallopt``."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None)
        for name, value in options.items():
            libc.mallopt(_MALLOC_PARAMETERS[name], value)
