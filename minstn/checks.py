"""Argument checks shared by the layers, the transforms and the spatial transformer.

PyTorch finds most bad layer arguments at the first forward, or never
(``BatchNorm2d(1, momentum=5)`` trains with it); minstn checks them when the layer is
built, so the error points at the line that made the mistake. Where PyTorch has a
message for the mistake, it is used word for word after the caller's name
(``Conv2d: non-positive stride is not supported``). Two choices are stricter than
PyTorch's: a size of 0 (channels, features) is refused, since such a layer computes
nothing; and a float is never truncated to an int (``2.5`` is an error, not ``2``).
Bad types raise TypeError, bad values ValueError.
"""

from __future__ import annotations

import math
import operator

import numpy as np

__all__ = ["integer", "int_pair", "positive_int", "kernel_size", "stride", "padding",
           "probability", "unit_interval", "positive_number", "choice"]


def integer(value, name: str, owner: str) -> int:
    """``value`` as a Python int: ints, NumPy ints, 0-d int arrays; bools and floats are refused."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: argument '{name}' must be int, not bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{owner}: argument '{name}' must be int, not {type(value).__name__} "
                        f"({value!r})") from None


def int_pair(value, name: str, owner: str) -> tuple:
    """``3 -> (3, 3)``; a pair of ints stays; anything else is a TypeError naming ``name``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{owner}: {name} must be an int or a pair of ints, got {tuple(value)}")
        return integer(value[0], name, owner), integer(value[1], name, owner)
    v = integer(value, name, owner)
    return v, v


def positive_int(value, name: str, owner: str) -> int:
    v = integer(value, name, owner)
    if v < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {v}")
    return v


def kernel_size(value, owner: str, pooling: bool = False) -> tuple:
    kh, kw = int_pair(value, "kernel_size", owner)
    if kh <= 0 or kw <= 0:
        # PyTorch's messages: the convolution's and the pooling's say it differently
        got = f"kH: {kh} kW: {kw}" if pooling else f"kernel_height: {kh} kernel_width: {kw}"
        raise ValueError(f"{owner}: kernel size should be greater than zero, but got {got}")
    return kh, kw


def stride(value, owner: str, pooling: bool = False) -> tuple:
    sh, sw = int_pair(value, "stride", owner)
    if sh <= 0 or sw <= 0:
        message = (f"stride should be greater than zero, but got dH: {sh} dW: {sw}" if pooling
                   else "non-positive stride is not supported")
        raise ValueError(f"{owner}: {message}")
    return sh, sw


def padding(value, owner: str) -> tuple:
    ph, pw = int_pair(value, "padding", owner)
    if ph < 0 or pw < 0:
        raise ValueError(f"{owner}: negative padding is not supported")
    return ph, pw


def _real(value, name: str, owner: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__} ({value!r})")
    return float(value)


def probability(p, owner: str) -> float:
    """A dropout probability in [0, 1] (NaN refused, unlike PyTorch)."""
    if not 0 <= _real(p, "p", owner) <= 1:
        raise ValueError(f"{owner}: dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def unit_interval(value, name: str, owner: str) -> float:
    if not 0 <= _real(value, name, owner) <= 1:
        raise ValueError(f"{owner}: {name} must be in [0, 1], but got {value}")
    return float(value)


def positive_number(value, name: str, owner: str) -> float:
    """A finite number > 0 (an eps, a scale)."""
    v = _real(value, name, owner)
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"{owner}: {name} must be positive, but got {value}")
    return v


def finite_number(value, name: str, owner: str) -> float:
    """Any finite number (a fill value)."""
    v = _real(value, name, owner)
    if not math.isfinite(v):
        raise ValueError(f"{owner}: {name} must be a finite number, but got {value}")
    return v


def choice(value, choices, name: str, owner: str):
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value
