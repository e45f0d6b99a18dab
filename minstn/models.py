"""The classifiers of the paper's MNIST experiments, in one registry (:data:`MODELS`).

Section 4.1 and appendix A compare, with "approximately 400k learnable parameters" each:
**FCN** (2 hidden ReLU layers + classifier), **CNN** (conv 9x9 -> max-pool 2 -> conv 7x7
-> max-pool 2 -> classifier), **ST-FCN** (the FCN behind a spatial transformer whose
localiser is 3 FC layers of 32 units) and **ST-CNN** (the CNN behind a transformer whose
localiser is max-pool 2 -> conv 20 5x5 -> max-pool 2 -> conv 20 5x5 -> FC 20). Two more:
**ST-CNN Multi** (a transformer before each conv layer, the second on feature maps, as
the SVHN model of section 4.2) and **2xST-FCN** (two transformers in parallel, for MNIST
addition in the appendix). Every transformer starts at the identity.

Widths are not given per input size, only the 400k budget: each model picks its width
(FCN 128-256 units, CNN 32-64 filters) whose parameter count is closest to 400k, from
formulas small enough to write out (``_fcn_count``...; ``tests/test_models.py`` checks
them). Initialisation is *paired* (:func:`_paired`): after ``manual_seed(s)`` an
ST-FCN / ST-CNN gives its classifier the initial weights of the FCN / CNN of the same
width, whatever the transform, so rows of Table 1 at one seed differ by the transformer.
"""

from __future__ import annotations

from . import nn
from .random import generator
from .shape_ops import cat

__all__ = ["fcn", "cnn", "st_fcn", "st_cnn", "st_cnn_multi", "two_st_fcn", "STClassifier", "STCNNMulti",
           "ParallelSTFCN", "build_model", "count_parameters", "is_st_model", "transformers_of", "MODELS",
           "TARGET_PARAMETERS"]

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



# --- two more transformer models (section 4.2, appendix) -----------------------------

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


MODELS = {"fcn": fcn, "cnn": cnn, "st-fcn": st_fcn, "st-cnn": st_cnn, "st-cnn-multi": st_cnn_multi,
          "2xst-fcn": two_st_fcn}


def build_model(name: str, in_size: int = 28, num_classes: int = 10, transform: str = "affine",
                in_channels: int = 1) -> nn.Module:
    """One of :data:`MODELS` by name (``fcn``, ``cnn``, ``st-fcn``, ``st-cnn``, ``st-cnn-multi``,
    ``2xst-fcn``; underscores work too). ``transform`` (affine, attention, projective, tps)
    only applies to the models with a spatial transformer."""
    key = name.lower().replace("_", "-")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    kwargs = dict(in_size=in_size, num_classes=num_classes, in_channels=in_channels)
    if is_st_model(key):
        kwargs["transform"] = transform
    return MODELS[key](**kwargs)


def is_st_model(name: str) -> bool:
    """Whether the model called ``name`` has a spatial transformer (all but FCN and CNN)."""
    return name.lower().replace("_", "-") not in ("fcn", "cnn")


def transformers_of(model) -> list:
    """Every SpatialTransformer inside ``model``, in the order of its module tree."""
    return [m for m in model.modules() if isinstance(m, nn.SpatialTransformer)]
