"""The layers, with PyTorch's names, weight shapes and default initialisation.

Each layer only owns its parameters and settings; the maths lives in
:mod:`minstn.nn.functional`, one call per ``forward``. Default initialisation follows PyTorch: ``kaiming_uniform_(a=sqrt(5))``
for weights, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same range for
biases, all drawn from the shared generator (``mt.manual_seed``).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .. import checks
from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = [
    "Identity", "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "ReLU", "Tanh", "Sigmoid",
    "Dropout", "Dropout2d", "Flatten", "Sequential", "BatchNorm2d",
]

_INPLACE_NOTE = """``inplace`` is accepted for PyTorch programs (``nn.ReLU(True)``), but the result is a
    new tensor (the same values and gradient; the input is left unchanged): minstn records
    no in-place op in the autograd graph."""


def _reset_like_pytorch(weight: Parameter, bias) -> None:
    """PyTorch's ``reset_parameters`` for Linear and Conv2d."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))  # = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    if bias is not None:
        fan_in, _ = init.calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


class Identity(Module):
    """Returns its input: a placeholder (e.g. "no localisation layers")."""

    def forward(self, x):
        return x


def _add_weight_and_bias(module: Module, weight_shape: tuple, bias: bool) -> None:
    """Register ``weight`` (float32) and ``bias`` (one per output, or None), then
    initialise them as PyTorch does."""
    module.weight = Parameter(np.empty(weight_shape, dtype=np.float32))
    if bias:
        module.bias = Parameter(np.empty(weight_shape[0], dtype=np.float32))
    else:
        module.register_parameter("bias", None)
    module.reset_parameters()


class Linear(Module):
    """``y = x W^T + b``; ``weight`` is (out_features, in_features), ``bias`` (out_features,)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = checks.positive_int(in_features, "in_features", "Linear")
        self.out_features = checks.positive_int(out_features, "out_features", "Linear")
        _add_weight_and_bias(self, (self.out_features, self.in_features), bias)

    def reset_parameters(self) -> None:
        _reset_like_pytorch(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution; ``weight`` is (out_channels, in_channels, kh, kw)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True):
        super().__init__()
        self.in_channels = checks.positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = checks.positive_int(out_channels, "out_channels", "Conv2d")
        self.kernel_size = checks.kernel_size(kernel_size, "Conv2d")
        self.stride = checks.stride(stride, "Conv2d")
        self.padding = checks.padding(padding, "Conv2d")
        _add_weight_and_bias(self, (self.out_channels, self.in_channels, *self.kernel_size), bias)

    def reset_parameters(self) -> None:
        _reset_like_pytorch(self.weight, self.bias)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.bias is None:
            s += ", bias=False"
        return s


class _Pool2d(Module):
    """Pooling over ``kernel_size`` windows every ``stride`` pixels (default: ``kernel_size``)."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        owner = type(self).__name__
        checks.kernel_size(kernel_size, owner, pooling=True)
        if stride is not None:
            checks.stride(stride, owner, pooling=True)
        self.kernel_size = kernel_size  # kept as given, as PyTorch does (an int prints as an int)
        self.stride = kernel_size if stride is None else stride

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(_Pool2d):
    """Max over ``kernel_size`` windows every ``stride`` pixels (default: ``kernel_size``)."""

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride)


class AvgPool2d(_Pool2d):
    """Mean over ``kernel_size`` windows every ``stride`` pixels (default: ``kernel_size``)."""

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride)


class ReLU(Module):
    __doc__ = "max(0, x), elementwise. " + _INPLACE_NOTE

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.relu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Dropout(Module):
    """Zero each element with probability ``p`` while training; identity in eval mode."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        checks.probability(p, type(self).__name__)
        self.p = p
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}" + (", inplace=True" if self.inplace else "")


class Dropout2d(Dropout):
    __doc__ = ("Zero whole channels (each (sample, channel) map) with probability ``p`` while training, "
               "scaling the rest by 1/(1-p); identity in eval mode. " + _INPLACE_NOTE)

    def forward(self, x):
        return F.dropout2d(x, self.p, self.training)


class Flatten(Module):
    """Merge dimensions ``start_dim..end_dim`` (default: all but the batch)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = checks.integer(start_dim, "start_dim", "Flatten")
        self.end_dim = checks.integer(end_dim, "end_dim", "Flatten")
        start, end = self.start_dim, self.end_dim
        if (start < 0) == (end < 0) and start > end:  # comparable without knowing the input's rank
            raise ValueError("Flatten: flatten() has invalid args: start_dim cannot come after end_dim")

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Sequential(Module):
    """Apply the given modules in order. Children are named ``"0"``, ``"1"``...

    or by the keys of an OrderedDict, as in PyTorch.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*items[index])
        return items[index]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


class BatchNorm2d(Module):
    """Per-channel batch normalisation of (N, C, H, W) input (Ioffe & Szegedy 2015).

    Parameters ``weight`` (ones) and ``bias`` (zeros); buffers ``running_mean``
    (zeros), ``running_var`` (ones) and ``num_batches_tracked``, PyTorch's names.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        num_features = checks.positive_int(num_features, "num_features", "BatchNorm2d")
        checks.positive_number(eps, "eps", "BatchNorm2d")
        checks.unit_interval(momentum, "momentum", "BatchNorm2d")
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=np.float32))
            self.bias = Parameter(np.zeros(num_features, dtype=np.float32))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d({self.num_features}) expects input (N, {self.num_features}, H, W), got {x.shape}")
        if self.training:
            self.num_batches_tracked.data += 1
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias,
            training=self.training, momentum=self.momentum, eps=self.eps,
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"

