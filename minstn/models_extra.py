"""Two more spatial-transformer models of the paper, built from :mod:`minstn.models` parts.

* **ST-CNN Multi** (paper section 4.2, the SVHN experiment): a spatial transformer
  in front of *each* of the first convolutional layers, so the second one warps
  *feature maps*, not pixels. Here, on the two-conv CNN of section 4.1::

      ST_1(image) -> conv 9x9 -> ReLU -> pool 2 -> ST_2(feature maps) -> conv 7x7 -> ReLU -> pool 2 -> FC

  ``ST_1`` has the ST-CNN localiser of :func:`minstn.models.cnn_localisation`;
  ``ST_2`` works on the small pooled maps, so (as in the paper's SVHN model, whose
  later localisers are "two layer fully connected nets with 32 units") it gets a
  2 x 32 fully connected localiser.

* **2xST-FCN** (paper appendix, MNIST addition): two transformers *in parallel*, each
  seeing the whole 2-channel input (one digit per channel), each free to attend to a
  different digit; their outputs are concatenated along channels and fed to an FCN
  with 19 outputs (sums 0..18). The paper's own addition table uses 2xST-CNN; the
  FCN classifier keeps this one cheap enough for a laptop.

Both start at the identity transform (zero regression weights, identity bias), like
every transformer in :class:`minstn.nn.SpatialTransformer`.
"""

from __future__ import annotations

from . import nn
from .models import (CNN_FILTERS, FCN_UNITS, LOC_UNITS, TARGET_PARAMETERS, _closest_width, _cnn_side,
                     _cnn_side1, _conv, _fcn_body, _fcn_count, _linear, build_model, cnn_localisation,
                     count_parameters, fcn_localisation)
from .ops import cat

__all__ = ["STCNNMulti", "ParallelSTFCN", "st_cnn_multi", "two_st_fcn", "build_extra_model", "EXTRA_MODELS",
           "is_st_model", "transformers_of"]


def _feature_localisation(channels: int, side: int) -> tuple[nn.Module, int]:
    """FC localiser for feature maps: flatten -> FC 32 -> ReLU -> FC 32 -> ReLU."""
    net = nn.Sequential(
        nn.Flatten(),
        nn.Linear(channels * side * side, LOC_UNITS), nn.ReLU(),
        nn.Linear(LOC_UNITS, LOC_UNITS), nn.ReLU(),
    )
    return net, LOC_UNITS


class STCNNMulti(nn.Module):
    """CNN with a spatial transformer before each of its two conv layers (ST-CNN Multi).

    Children: ``st`` (on the image, the one the figures draw), ``conv1``, ``st2`` (on
    the pooled conv1 maps), ``conv2`` and ``head``; ``classifier`` runs everything after
    ``st``, so ``classifier(st(x))`` is the whole model, as for :class:`STClassifier`.
    """

    def __init__(self, in_size: int = 28, num_classes: int = 10, in_channels: int = 1,
                 transform: str = "affine", filters: int | None = None):
        super().__init__()
        side1 = _cnn_side1(in_size)  # after the valid 9x9 conv and the 2x2 pool
        side = _cnn_side(in_size)
        if side < 1:
            raise ValueError(f"ST-CNN Multi needs inputs of at least 28 pixels, got {in_size}")
        loc, features = cnn_localisation(in_size, in_channels)
        self.st = nn.SpatialTransformer(loc, (in_size, in_size), transform=transform, features=features)
        if filters is None:
            st_params = count_parameters(self.st)

            def total(f):
                loc2 = _linear(f * side1 * side1, LOC_UNITS) + _linear(LOC_UNITS, LOC_UNITS)
                return (st_params + loc2 + _linear(LOC_UNITS, self.st.spec.n_params) + _conv(in_channels, f, 9)
                        + _conv(f, f, 7) + _linear(f * side * side, num_classes))

            filters = _closest_width(total, CNN_FILTERS, TARGET_PARAMETERS)
        self.filters = filters
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, filters, 9), nn.ReLU(), nn.MaxPool2d(2))
        loc2, features2 = _feature_localisation(filters, side1)
        self.st2 = nn.SpatialTransformer(loc2, (side1, side1), transform=transform, features=features2)
        self.conv2 = nn.Sequential(nn.Conv2d(filters, filters, 7), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(filters * side * side, num_classes))

    def classifier(self, v):
        """Everything after the first transformer."""
        return self.head(self.conv2(self.st2(self.conv1(v))))

    def forward(self, x):
        return self.classifier(self.st(x))


class ParallelSTFCN(nn.Module):
    """``k`` spatial transformers side by side on the same input, outputs concatenated
    along channels, then an FCN (the paper's 2xST model for MNIST addition).

    ``sts`` is a list-like of the transformers (``st0``, ``st1``... as children);
    ``st`` is the first, for the figures.
    """

    def __init__(self, in_size: int = 42, num_classes: int = 19, in_channels: int = 2,
                 transform: str = "affine", n_transformers: int = 2, units: int | None = None):
        super().__init__()
        self.n_transformers = int(n_transformers)
        for k in range(self.n_transformers):
            loc, features = fcn_localisation(in_size, in_channels)
            setattr(self, f"st{k}", nn.SpatialTransformer(loc, (in_size, in_size), transform=transform,
                                                           features=features))
        n_in = self.n_transformers * in_channels * in_size * in_size
        if units is None:
            st_params = sum(count_parameters(s) for s in self.sts)
            units = _closest_width(lambda u: st_params + _fcn_count(n_in, u, num_classes), FCN_UNITS,
                                   TARGET_PARAMETERS)
        self.fcn = _fcn_body(n_in, units, num_classes)

    @property
    def sts(self):
        return [getattr(self, f"st{k}") for k in range(self.n_transformers)]

    @property
    def st(self):
        return self.st0

    def forward(self, x):
        return self.fcn(cat([s(x) for s in self.sts], dim=1))


def st_cnn_multi(in_size: int = 28, num_classes: int = 10, in_channels: int = 1, transform: str = "affine",
                 filters: int | None = None) -> STCNNMulti:
    return STCNNMulti(in_size, num_classes, in_channels, transform, filters)


def two_st_fcn(in_size: int = 42, num_classes: int = 19, in_channels: int = 2, transform: str = "affine",
               units: int | None = None) -> ParallelSTFCN:
    return ParallelSTFCN(in_size, num_classes, in_channels, transform, 2, units)


EXTRA_MODELS = {"st-cnn-multi": st_cnn_multi, "2xst-fcn": two_st_fcn}


def build_extra_model(name: str, in_size: int = 28, num_classes: int = 10, transform: str = "affine",
                      in_channels: int = 1) -> nn.Module:
    """Any of :data:`minstn.models.MODELS` or :data:`EXTRA_MODELS` by name."""
    key = name.lower().replace("_", "-")
    if key in EXTRA_MODELS:
        return EXTRA_MODELS[key](in_size=in_size, num_classes=num_classes, in_channels=in_channels,
                                 transform=transform)
    return build_model(key, in_size=in_size, num_classes=num_classes, transform=transform,
                       in_channels=in_channels)


def is_st_model(name: str) -> bool:
    return name.lower().replace("_", "-") not in ("fcn", "cnn")


def transformers_of(model) -> list:
    """Every SpatialTransformer inside ``model`` (for theta statistics)."""
    return [m for m in model.modules() if isinstance(m, nn.SpatialTransformer)]
