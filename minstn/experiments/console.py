"""What the commands print and parse: one-line messages, and argparse number types.

``say`` writes a line to stderr (stdout stays free for results); the ``*_int`` /
``*_float`` types reject bad values at parse time with argparse's own message (usage
and exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse
import math
import sys

__all__ = ["say", "positive_int", "non_negative_int", "positive_float", "non_negative_float", "fraction"]


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
