"""Neural-network building blocks with PyTorch's names: ``from minstn import nn``.

``nn.Module`` / ``nn.Parameter`` (module.py) do the bookkeeping; layers.py holds
the layers; functional.py their functional ops and the losses (``nn.functional``, as
in PyTorch); spatial.py the spatial transformer of Jaderberg et al. (2015); init.py
the initialisers.
"""

from . import functional, init, utils
from .layers import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Dropout2d,
    Flatten,
    Identity,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from .module import IncompatibleKeys, Module, Parameter
from .spatial import SpatialTransformer

__all__ = [
    "Module", "Parameter", "IncompatibleKeys",
    "Identity", "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "ReLU", "Tanh", "Sigmoid",
    "Dropout", "Dropout2d", "Flatten", "Sequential", "BatchNorm2d", "SpatialTransformer",
    "init", "functional", "utils",
]
