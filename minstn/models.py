"""The four classifiers of the distorted-MNIST experiments (paper section 4.1, appendix A).

Jaderberg et al. compare, on the same data and with "approximately 400k learnable
parameters" each, four networks:

* **FCN**: a fully connected net, 2 hidden layers of ReLU units + softmax classifier;
* **CNN**: conv 9x9 -> max-pool 2 -> conv 7x7 -> max-pool 2 -> classifier;
* **ST-FCN**: the FCN with a spatial transformer in front, whose localisation net is
  3 hidden fully connected layers of 32 units;
* **ST-CNN**: the CNN with a spatial transformer in front, whose localisation net is
  max-pool 2 -> conv 20 5x5 -> max-pool 2 -> conv 20 5x5 -> FC 20 -> regression.

The transformer's output has the size of its input (``out_size = in_size``), so the
classifier that follows sees the same shape whether or not a transformer is there.

Widths are not given per input size in the paper, only the 400k budget. So each model
here picks its width (FCN: 128-256 hidden units, CNN: 32-64 filters) as the one whose
parameter count is closest to 400k for the given input size; the formulas are small
enough to write out (``_fcn_count``...), and ``tests/test_models.py`` checks them
against :func:`count_parameters` of the built model.

Initialisation is *paired*: after ``minstn.manual_seed(s)``, ``st_fcn`` / ``st_cnn``
give their classifier exactly the initial weights that ``fcn`` / ``cnn`` get when the
widths agree (always for the CNN family; for the FCN family at 28 and 60 px but not at
42, where the ST-FCN is narrower), whatever the transform; the transformer draws its
weights after the classifier (see :func:`_paired`). Rows of Table 1 at one seed then
differ by the transformer, not by an unrelated draw of the classifier's weights.
"""

from __future__ import annotations

from . import nn
from .random import generator

__all__ = ["fcn", "cnn", "st_fcn", "st_cnn", "build_model", "count_parameters", "MODELS", "TARGET_PARAMETERS"]

TARGET_PARAMETERS = 400_000  # "approximately 400k learnable parameters" (appendix A)
FCN_UNITS = (128, 256)       # hidden units per layer allowed for the FCN
CNN_FILTERS = (32, 64)       # filters per conv layer allowed for the CNN
LOC_UNITS = 32               # ST-FCN localiser: 3 FC layers of 32 units
LOC_FILTERS = 20             # ST-CNN localiser: two conv layers of 20 5x5 filters, FC 20


def count_parameters(model) -> int:
    """Number of learnable scalars (the paper's "learnable parameters")."""
    return int(sum(p.data.size for p in model.parameters()))


# --- parameter counts as formulas, used to pick the width ----------------------------

def _linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def _conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def _fcn_count(in_features: int, units: int, num_classes: int) -> int:
    return _linear(in_features, units) + _linear(units, units) + _linear(units, num_classes)


def _cnn_side1(in_size: int) -> int:
    # valid conv 9 -> pool 2 (floor): 28 -> 10, 42 -> 17, 60 -> 26
    return (in_size - 8) // 2


def _cnn_side(in_size: int) -> int:
    # ... -> valid conv 7 -> pool 2 (floor): 28 -> 2, 42 -> 5, 60 -> 10
    return (_cnn_side1(in_size) - 6) // 2


def _cnn_count(in_size: int, in_channels: int, filters: int, num_classes: int) -> int:
    side = _cnn_side(in_size)
    return (_conv(in_channels, filters, 9) + _conv(filters, filters, 7)
            + _linear(filters * side * side, num_classes))


def _closest_width(count, widths: tuple[int, int], budget: int) -> int:
    """The width in ``[lo, hi]`` whose parameter count is closest to ``budget``.

    ``count(width)`` grows with the width, so a scan is simple and fast enough.
    """
    lo, hi = widths
    return min(range(lo, hi + 1), key=lambda w: (abs(count(w) - budget), w))


# --- building blocks -----------------------------------------------------------------

def _fcn_body(in_features: int, units: int, num_classes: int) -> nn.Sequential:
    """Flatten -> FC units -> ReLU -> FC units -> ReLU -> FC classes: 3 weight layers."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, units), nn.ReLU(),
        nn.Linear(units, units), nn.ReLU(),
        nn.Linear(units, num_classes),
    )


def _cnn_body(in_size: int, in_channels: int, filters: int, num_classes: int) -> nn.Sequential:
    """conv 9x9 -> pool 2 -> conv 7x7 -> pool 2 -> FC classes: 3 weight layers.

    The convolutions are unpadded ("valid"): a 28 pixel input still leaves a 2x2 map
    for the classifier (42 -> 5x5, 60 -> 10x10), and skipping the padding makes the
    second convolution, by far the most expensive layer, about 3.5 times cheaper at
    42 pixels than 'same' padding would, which matters on a laptop CPU.

    Each ReLU comes after its max-pool: ``relu(maxpool(x)) == maxpool(relu(x))``, with
    the same gradient (the window's first maximum wins either way, and a window with
    no positive value passes no gradient), on a map four times smaller.
    """
    side = _cnn_side(in_size)
    if side < 1:
        raise ValueError(f"the CNN needs inputs of at least 28 pixels, got {in_size}")
    return nn.Sequential(
        nn.Conv2d(in_channels, filters, 9), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(filters, filters, 7), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(filters * side * side, num_classes),
    )


def fcn_localisation(in_size: int, in_channels: int = 1) -> tuple[nn.Module, int]:
    """ST-FCN localisation net: 3 hidden FC layers of 32 ReLU units (appendix A).

    Returns the net and its number of output features; the transformer appends the
    regression layer that outputs theta.
    """
    net = nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_channels * in_size * in_size, LOC_UNITS), nn.ReLU(),
        nn.Linear(LOC_UNITS, LOC_UNITS), nn.ReLU(),
        nn.Linear(LOC_UNITS, LOC_UNITS), nn.ReLU(),
    )
    return net, LOC_UNITS


def _loc_cnn_side(in_size: int) -> int:
    # pool 2 -> valid conv 5 -> pool 2 -> valid conv 5
    return (in_size // 2 - 4) // 2 - 4


def cnn_localisation(in_size: int, in_channels: int = 1) -> tuple[nn.Module, int]:
    """ST-CNN localisation net: pool 2 -> conv 20 5x5 -> pool 2 -> conv 20 5x5 -> FC 20.

    The first max-pool works on a half-resolution image: where the digit is does not
    need every pixel, and it makes the localiser four times cheaper.
    Unpadded convolutions; for 28 pixels the last map is 1x1, for 60 it is 9x9. The
    first ReLU follows the second max-pool (the same function, see :func:`_cnn_body`).
    """
    side = _loc_cnn_side(in_size)
    if side < 1:
        raise ValueError(f"the ST-CNN localisation net needs inputs of at least 28 pixels, got {in_size}")
    net = nn.Sequential(
        nn.MaxPool2d(2),
        nn.Conv2d(in_channels, LOC_FILTERS, 5),
        nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(LOC_FILTERS, LOC_FILTERS, 5), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(LOC_FILTERS * side * side, LOC_FILTERS), nn.ReLU(),
    )
    return net, LOC_FILTERS


def _spatial_transformer(localisation: nn.Module, features: int, in_size: int, transform: str) -> nn.Module:
    """A transformer whose output has the input's size (section 4.1)."""
    return nn.SpatialTransformer(localisation, (in_size, in_size), transform=transform, features=features)


class STClassifier(nn.Module):
    """A spatial transformer followed by a classifier: ``classifier(st(x))``.

    Keeping the two as named children lets the figures ask ``model.st`` for the grid
    it sampled and lets a state dict read ``st.…`` and ``classifier.…``.
    """

    def __init__(self, st: nn.Module, classifier: nn.Module):
        super().__init__()
        self.st = st
        self.classifier = classifier

    def forward(self, x):
        return self.classifier(self.st(x))


def _transformer_maker(localisation, in_size: int, in_channels: int, transform: str):
    """A function that builds a fresh localiser (``fcn_localisation`` or
    ``cnn_localisation``) and its spatial transformer each time it is called."""
    def make_st():
        loc, features = localisation(in_size, in_channels)
        return _spatial_transformer(loc, features, in_size, transform)
    return make_st


def _paired(make_st, make_classifier) -> STClassifier:
    """Build ``STClassifier(st, classifier)`` with *paired* initial weights.

    The classifier takes the first random draws after the caller's seed, exactly as
    the plain FCN / CNN of the same width would (``manual_seed(s); cnn()`` and
    ``manual_seed(s); st_cnn(transform=t)`` start from the same classifier weights,
    for every transform t); the transformer is drawn after it. Without this the
    classifier's weights would depend on how many numbers the localiser drew before
    it (32 TPS outputs vs 6 affine ones), so two rows of Table 1 at one seed would
    differ by an unrelated classifier initialisation as well as by the transformer:
    with 375 updates that alone moved the E error of one architecture by ~2 points.

    The classifier's width depends on the transformer's parameter count, so the
    transformer is built once to count it, the generator is rewound, the classifier
    is built, and the transformer is built again from the draws that follow.
    """
    gen = generator()
    start = gen.bit_generator.state
    st_params = count_parameters(make_st())  # a dry build, for the parameter count only
    gen.bit_generator.state = start
    classifier = make_classifier(st_params)
    return STClassifier(make_st(), classifier)


# --- the four models -----------------------------------------------------------------

def fcn(in_size: int = 28, num_classes: int = 10, in_channels: int = 1, units: int | None = None) -> nn.Module:
    """FCN baseline: 2 hidden layers, width picked for ~400k parameters."""
    n_in = in_channels * in_size * in_size
    if units is None:
        units = _closest_width(lambda u: _fcn_count(n_in, u, num_classes), FCN_UNITS, TARGET_PARAMETERS)
    return _fcn_body(n_in, units, num_classes)


def cnn(in_size: int = 28, num_classes: int = 10, in_channels: int = 1, filters: int | None = None) -> nn.Module:
    """CNN baseline: conv 9x9 -> pool -> conv 7x7 -> pool -> classifier (~400k parameters)."""
    if filters is None:
        filters = _closest_width(lambda f: _cnn_count(in_size, in_channels, f, num_classes),
                                 CNN_FILTERS, TARGET_PARAMETERS)
    return _cnn_body(in_size, in_channels, filters, num_classes)


def st_fcn(in_size: int = 28, num_classes: int = 10, in_channels: int = 1, transform: str = "affine",
           units: int | None = None) -> nn.Module:
    """ST-FCN: FC localiser (3 x 32 units) + transformer + FCN.

    The localiser is counted in the 400k budget, so the FCN behind it is a little
    narrower than the plain FCN's.
    """
    n_in = in_channels * in_size * in_size

    def make_classifier(st_params):
        width = units
        if width is None:
            width = _closest_width(lambda u: st_params + _fcn_count(n_in, u, num_classes), FCN_UNITS,
                                   TARGET_PARAMETERS)
        return _fcn_body(n_in, width, num_classes)

    return _paired(_transformer_maker(fcn_localisation, in_size, in_channels, transform), make_classifier)


def st_cnn(in_size: int = 28, num_classes: int = 10, in_channels: int = 1, transform: str = "affine",
           filters: int | None = None) -> nn.Module:
    """ST-CNN: conv localiser + transformer + CNN (~400k parameters in all)."""
    def make_classifier(st_params):
        width = filters
        if width is None:
            width = _closest_width(lambda f: st_params + _cnn_count(in_size, in_channels, f, num_classes),
                                   CNN_FILTERS, TARGET_PARAMETERS)
        return _cnn_body(in_size, in_channels, width, num_classes)

    return _paired(_transformer_maker(cnn_localisation, in_size, in_channels, transform), make_classifier)


MODELS = {"fcn": fcn, "cnn": cnn, "st-fcn": st_fcn, "st-cnn": st_cnn}


def build_model(name: str, in_size: int = 28, num_classes: int = 10, transform: str = "affine",
                in_channels: int = 1) -> nn.Module:
    """One of ``fcn``, ``cnn``, ``st-fcn``, ``st-cnn`` (underscores work too).

    ``transform`` (affine, attention, projective, tps) only applies to the ST models.
    """
    key = name.lower().replace("_", "-")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    kwargs = dict(in_size=in_size, num_classes=num_classes, in_channels=in_channels)
    if key.startswith("st-"):
        kwargs["transform"] = transform
    return MODELS[key](**kwargs)
