"""Processes that die with the process that started them (Linux ``PR_SET_PDEATHSIG``).

``python -m commentary.lifetime PID COMMAND...`` asks the kernel to kill it when its parent dies, then
replaces itself with ``COMMAND`` (the request survives ``exec``): a helper process started this way
cannot outlive a run that is killed with SIGKILL.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with(parent_pid: int) -> None:
    """Have the kernel send this process SIGKILL when its parent dies, and exit at once if the parent is
    no longer ``parent_pid`` (it died before the request). Without ``prctl`` (not Linux) only the check holds."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


def dying_with_this_process(command: list[str]) -> list[str]:
    """``command`` started through this module, so that it dies with the process that starts it."""
    return [sys.executable, "-m", __name__, str(os.getpid()), *command]


if __name__ == "__main__":
    die_with(int(sys.argv[1]))
    os.execv(sys.argv[2], sys.argv[2:])
