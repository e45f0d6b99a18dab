"""In-place initialisers, PyTorch's names: ``nn.init.uniform_(layer.weight, -0.1, 0.1)``.

Every random draw goes through the shared generator of :mod:`minstn.random`, so
``mt.manual_seed(0)`` before building a model makes its weights repeatable.
The trailing underscore means "modifies its argument", as in PyTorch.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import array_of
from ..random import generator

__all__ = ["uniform_", "normal_", "zeros_", "ones_", "constant_", "kaiming_uniform_", "calculate_fan_in_and_fan_out"]


def uniform_(tensor, a: float = 0.0, b: float = 1.0):
    """Fill with draws from U(a, b)."""
    d = array_of(tensor)
    d[...] = generator().uniform(a, b, size=d.shape)
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0):
    """Fill with draws from N(mean, std^2)."""
    d = array_of(tensor)
    d[...] = generator().normal(mean, std, size=d.shape)
    return tensor


def constant_(tensor, value: float):
    array_of(tensor)[...] = value
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def calculate_fan_in_and_fan_out(tensor) -> tuple:
    """fan_in = inputs per output unit: ``in_features`` or ``C_in * kh * kw``."""
    shape = array_of(tensor).shape
    if len(shape) < 2:
        raise ValueError(f"fan in/out need a tensor with at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def kaiming_uniform_(tensor, a: float = 0.0):
    """He et al. 2015 uniform init for leaky-ReLU slope ``a``: U(-bound, bound).

    ``bound = gain * sqrt(3 / fan_in)`` with ``gain = sqrt(2 / (1 + a^2))``.
    PyTorch's Linear and Conv2d call it with ``a = sqrt(5)``, which gives
    ``bound = 1 / sqrt(fan_in)``.
    """
    fan_in, _ = calculate_fan_in_and_fan_out(tensor)
    gain = math.sqrt(2.0 / (1 + a * a))
    bound = gain * math.sqrt(3.0 / fan_in) if fan_in else 0.0
    return uniform_(tensor, -bound, bound)
