"""What the commands print and parse: one-line messages, argparse number types, signals.

``say`` writes a line to stderr (stdout stays free for results); the ``*_int`` /
``*_float`` types reject bad values at parse time with argparse's own message (usage
and exit status 2), never a traceback; :class:`UsageError` is the same kind of error
found later (contradictory flags, a run folder that is not empty). ``deferred_signals``
holds Ctrl-C and SIGTERM back while a file that must stay whole is written.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys

__all__ = ["say", "positive_int", "non_negative_int", "positive_float", "non_negative_float", "fraction",
           "UsageError", "deferred_signals", "check_data_dir"]


class UsageError(ValueError):
    """The command's arguments cannot be carried out as given (exit status 2, like argparse)."""


def say(message: str) -> None:
    """Print ``message`` to stderr at once (the default ``announce`` of every command)."""
    print(message, file=sys.stderr, flush=True)


def _number(kind, minimum, strict: bool, requirement: str, maximum=math.inf):
    """An argparse type: ``kind(text)``, finite, > (strict) or >= ``minimum``, <= ``maximum``."""
    noun = "a whole number" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        ok = (value > minimum if strict else value >= minimum) and value <= maximum
        if not (ok and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = _number(int, 0, True, ">= 1")
fraction = _number(float, 0, False, "a number in [0, 1]", maximum=1)
non_negative_int = _number(int, 0, False, ">= 0")
positive_float = _number(float, 0, True, "a positive finite number")
non_negative_float = _number(float, 0, False, "a finite number >= 0")


def check_data_dir(data_dir, dataset) -> None:
    """An explicit ``--data-dir`` must be a folder (unless MNIST is to be downloaded into
    it: ``--dataset mnist``), and cannot go with the glyph digits: a typo in it must not
    quietly fall back to other digits."""
    from pathlib import Path

    if data_dir is None:
        return
    if dataset == "glyphs":
        raise UsageError("--data-dir and --dataset glyphs contradict each other: the glyph digits need no data")
    if dataset != "mnist" and not Path(data_dir).is_dir():
        raise UsageError(f"--data-dir {data_dir} is not a folder (to download MNIST into it, add --dataset mnist)")


@contextlib.contextmanager
def deferred_signals(discard: bool = False):
    """Ctrl-C (SIGINT) and SIGTERM arriving inside the block do not cut it short, so a save
    in progress always finishes: they are delivered after the block, or, with
    ``discard`` (a save that is itself the answer to an interrupt), dropped. A no-op
    outside the main thread."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = (signal.SIGINT, signal.SIGTERM)
    if discard or not hasattr(signal, "pthread_sigmask"):
        previous = [signal.signal(s, signal.SIG_IGN) for s in held]
        try:
            yield
        finally:
            for s, handler in zip(held, previous):
                signal.signal(s, handler)
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(held))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
