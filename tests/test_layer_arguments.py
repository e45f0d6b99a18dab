"""Layer constructors refuse nonsense when the layer is built, with PyTorch's messages
where PyTorch has one (it finds most of these only at the first forward, or never)."""

import math

import numpy as np
import pytest

import minstn.functional as F
from minstn import nn

LOC = nn.Flatten()
BAD = {
    # convolution
    "conv kernel 0": (lambda: nn.Conv2d(1, 2, 0), ValueError,
                      "Conv2d: kernel size should be greater than zero, but got kernel_height: 0 kernel_width: 0"),
    "conv kernel -1": (lambda: nn.Conv2d(1, 2, (3, -1)), ValueError, "kernel_height: 3 kernel_width: -1"),
    "conv kernel 2.5": (lambda: nn.Conv2d(1, 2, 2.5), TypeError, "argument 'kernel_size' must be int, not float"),
    "conv kernel (3, 2.5)": (lambda: nn.Conv2d(1, 2, (3, 2.5)), TypeError, "'kernel_size' must be int, not float"),
    "conv kernel triple": (lambda: nn.Conv2d(1, 2, (3, 3, 3)), ValueError, "int or a pair of ints"),
    "conv stride 0": (lambda: nn.Conv2d(1, 2, 3, stride=0), ValueError, "Conv2d: non-positive stride is not supported"),
    "conv padding -1": (lambda: nn.Conv2d(1, 2, 3, padding=-1), ValueError,
                        "Conv2d: negative padding is not supported"),
    "conv in 0": (lambda: nn.Conv2d(0, 2, 3), ValueError, "Conv2d: in_channels must be a positive int, got 0"),
    "conv out -2": (lambda: nn.Conv2d(1, -2, 3), ValueError, "out_channels must be a positive int, got -2"),
    "conv in bool": (lambda: nn.Conv2d(True, 2, 3), TypeError, "'in_channels' must be int, not bool"),
    # linear
    "linear in 0": (lambda: nn.Linear(0, 3), ValueError, "Linear: in_features must be a positive int, got 0"),
    "linear out -1": (lambda: nn.Linear(3, -1), ValueError, "out_features must be a positive int, got -1"),
    "linear in 2.5": (lambda: nn.Linear(2.5, 3), TypeError, "argument 'in_features' must be int, not float"),
    # pooling
    "maxpool 0": (lambda: nn.MaxPool2d(0), ValueError,
                  "MaxPool2d: kernel size should be greater than zero, but got kH: 0 kW: 0"),
    "maxpool -1": (lambda: nn.MaxPool2d(-1), ValueError, "kernel size should be greater than zero"),
    "maxpool stride 0": (lambda: nn.MaxPool2d(2, stride=0), ValueError,
                         "MaxPool2d: stride should be greater than zero, but got dH: 0 dW: 0"),
    "maxpool 1.5": (lambda: nn.MaxPool2d(1.5), TypeError, "'kernel_size' must be int, not float"),
    "avgpool 0": (lambda: nn.AvgPool2d(0), ValueError, "AvgPool2d: kernel size should be greater than zero"),
    "avgpool stride -1": (lambda: nn.AvgPool2d(2, stride=-1), ValueError,
                          "stride should be greater than zero, but got dH: -1 dW: -1"),
    # batch norm
    "batchnorm 0": (lambda: nn.BatchNorm2d(0), ValueError, "BatchNorm2d: num_features must be a positive int, got 0"),
    "batchnorm -1": (lambda: nn.BatchNorm2d(-1), ValueError, "num_features must be a positive int"),
    "batchnorm momentum 5": (lambda: nn.BatchNorm2d(2, momentum=5), ValueError,
                             r"BatchNorm2d: momentum must be in \[0, 1\], but got 5"),
    "batchnorm momentum nan": (lambda: nn.BatchNorm2d(2, momentum=math.nan), ValueError, "momentum must be in"),
    "batchnorm momentum str": (lambda: nn.BatchNorm2d(2, momentum="0.1"), TypeError, "momentum must be a number"),
    "batchnorm eps 0": (lambda: nn.BatchNorm2d(2, eps=0), ValueError, "BatchNorm2d: eps must be positive, but got 0"),
    "batchnorm eps inf": (lambda: nn.BatchNorm2d(2, eps=math.inf), ValueError, "eps must be positive"),
    # dropout, flatten
    "dropout 2": (lambda: nn.Dropout(2), ValueError,
                  "Dropout: dropout probability has to be between 0 and 1, but got 2"),
    "dropout nan": (lambda: nn.Dropout(math.nan), ValueError, "dropout probability has to be between 0 and 1"),
    "flatten 1.5": (lambda: nn.Flatten(1.5), TypeError, "Flatten: argument 'start_dim' must be int, not float"),
    "flatten 3 > 1": (lambda: nn.Flatten(3, 1), ValueError, "start_dim cannot come after end_dim"),
    "flatten -1 > -2": (lambda: nn.Flatten(-1, -2), ValueError, "start_dim cannot come after end_dim"),
    # the spatial transformer
    "st out_size 0": (lambda: nn.SpatialTransformer(LOC, out_size=0, features=4), ValueError,
                      r"SpatialTransformer: out_size must be positive, got \(0, 0\)"),
    "st out_size 2.5": (lambda: nn.SpatialTransformer(LOC, out_size=(28, 2.5), features=4), TypeError,
                        "'out_size' must be int, not float"),
    "st features 0": (lambda: nn.SpatialTransformer(LOC, features=0), ValueError,
                      "features must be a positive int, got 0"),
    "st features 2.5": (lambda: nn.SpatialTransformer(LOC, features=2.5), TypeError, "'features' must be int"),
    "st in_shape": (lambda: nn.SpatialTransformer(LOC, in_shape=(1, 28)), ValueError, r"in_shape must be \(C, H, W\)"),
    "st in_shape 0": (lambda: nn.SpatialTransformer(LOC, in_shape=(1, 0, 28)), ValueError,
                      "in_shape must be a positive int"),
    "st padding": (lambda: nn.SpatialTransformer(LOC, padding_mode="edge", features=4), ValueError,
                   "padding_mode must be one of 'zeros', 'border', 'reflection'; got 'edge'"),
    "st mode": (lambda: nn.SpatialTransformer(LOC, mode="bicubic", features=4), ValueError,
                "mode must be one of 'bilinear', 'nearest'; got 'bicubic'"),
    # the functional forms check the same things at the call
    "F.conv2d stride 0": (lambda: F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((2, 1, 3, 3)), stride=0), ValueError,
                          "conv2d: non-positive stride is not supported"),
    "F.max_pool2d 0": (lambda: F.max_pool2d(np.zeros((1, 1, 5, 5)), 0), ValueError,
                       "kernel size should be greater than zero"),
    "F.dropout 2": (lambda: F.dropout(np.zeros(3), 2.0), ValueError, "dropout probability has to be between 0 and 1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_arguments_are_refused_at_construction(case):
    build, error, message = BAD[case]
    with pytest.raises(error, match=message):
        build()


def test_good_arguments_still_work_and_keep_their_form():
    conv = nn.Conv2d(np.int64(1), 2, (3, 5), stride=np.int32(2), padding=(0, 1))
    assert conv.kernel_size == (3, 5) and conv.stride == (2, 2) and type(conv.in_channels) is int
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2)"
    assert repr(nn.Dropout(0)) == "Dropout(p=0)"
    bn = nn.BatchNorm2d(2, eps=1e-3, momentum=0)
    assert (bn.eps, bn.momentum) == (1e-3, 0)
    assert nn.Flatten(0, -1).start_dim == 0 and nn.Flatten(-3, 2).end_dim == 2  # signs differ: checked at forward
    assert nn.SpatialTransformer(LOC, out_size=np.int64(7), features=4).out_size == (7, 7)


TORCH_SAYS = [  # (our constructor, the same mistake in PyTorch, which raises at the forward)
    (lambda: nn.Conv2d(1, 2, 0), lambda nn_, x: nn_.Conv2d(1, 2, 0)(x)),
    (lambda: nn.Conv2d(1, 2, 3, stride=0), lambda nn_, x: nn_.Conv2d(1, 2, 3, stride=0)(x)),
    (lambda: nn.Conv2d(1, 2, 3, padding=-1), lambda nn_, x: nn_.Conv2d(1, 2, 3, padding=-1)(x)),
    (lambda: nn.MaxPool2d(-1), lambda nn_, x: nn_.MaxPool2d(-1)(x)),
    (lambda: nn.AvgPool2d(2, stride=-1), lambda nn_, x: nn_.AvgPool2d(2, stride=-1)(x)),
    (lambda: nn.Dropout(2), lambda nn_, x: nn_.Dropout(2)),
    (lambda: nn.Flatten(3, 1), lambda nn_, x: nn_.Flatten(3, 1)(x)),
]


@pytest.mark.parametrize("index", range(len(TORCH_SAYS)))
def test_messages_are_pytorchs(index):
    torch = pytest.importorskip("torch")
    ours, theirs = TORCH_SAYS[index]
    with pytest.raises(Exception) as expected:
        theirs(torch.nn, torch.zeros(1, 1, 5, 5))
    with pytest.raises(Exception) as got:
        ours()
    assert str(expected.value).splitlines()[0] in str(got.value)
