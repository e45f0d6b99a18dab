"""How much memory is free, and a check before an allocation that could not fit.

NumPy asks the operating system for large arrays lazily; on Linux an array far larger
than the machine can then be "allocated" and the process is killed when it is filled.
:func:`check_memory` turns such a request into a :class:`MemoryError` with a message
before anything is allocated.
"""

from __future__ import annotations

import os

__all__ = ["available_memory", "check_memory"]


def available_memory() -> int | None:
    """Bytes the system can still give (MemAvailable of /proc/meminfo), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(nbytes: float, what: str) -> None:
    """Raise MemoryError, naming ``what``, when ``nbytes`` exceed the available memory."""
    free = available_memory()
    if free is not None and nbytes > free:
        raise MemoryError(f"{what} needs about {nbytes / 2**30:.1f} GiB, but only {free / 2**30:.1f} GiB "
                          f"are available")
