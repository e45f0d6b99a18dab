"""The spatial transformer module (Jaderberg et al., NIPS 2015, section 3).

Three parts, one line each in :meth:`SpatialTransformer.forward`:

1. localisation network (section 3.1): ``theta = f_loc(U)``; here a Module you
   give, mapping (N, C, H, W) to features (N, F), followed by a regression layer
   ``Linear(F, n_params)`` that this module adds;
2. grid generator (section 3.2, eq. (1) for the affine case): the source
   coordinates ``T_theta(G)`` of every output pixel;
3. sampler (section 3.3, eqs. (3)-(5)): bilinear interpolation of the input at
   those coordinates.

Everything is differentiable, so the loss of the network that follows trains
the localisation network with no extra supervision.
"""

from __future__ import annotations

import numpy as np

from .. import checks, sampling
from ..autograd import Tensor, as_tensor, no_grad
from ..kernels.pixel import MODES, PADDINGS
from ..transforms import TRANSFORMS
from . import init
from .layers import Linear
from .module import Module

__all__ = ["SpatialTransformer"]


def _transform_spec(transform):
    """Look up a transform in :data:`minstn.transforms.TRANSFORMS` (or take a spec object)."""
    if not isinstance(transform, str):
        return transform  # already a spec: anything with n_params, identity_params, make_grid
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown transform {transform!r}; choose one of {sorted(TRANSFORMS)}")
    return TRANSFORMS[transform]


def _positive_pair(value, name: str) -> tuple:
    h, w = checks.int_pair(value, name, "SpatialTransformer")
    if h < 1 or w < 1:
        raise ValueError(f"SpatialTransformer: {name} must be positive, got {(h, w)}")
    return h, w


def _in_shape(in_shape) -> tuple:
    if not isinstance(in_shape, (tuple, list)) or len(in_shape) != 3:
        raise ValueError(f"SpatialTransformer: in_shape must be (C, H, W) of one input, got {in_shape!r}")
    return tuple(checks.positive_int(v, "in_shape", "SpatialTransformer") for v in in_shape)


class SpatialTransformer(Module):
    """A spatial transformer: localisation net + regression layer + grid + sampler.

    Args:
        localisation: Module mapping the input (N, C, H, W) to features (N, F)
            (extra trailing dimensions are flattened).
        out_size: (H_out, W_out) of the output, an int for a square, or None for
            the input's own size. Smaller than the input means "crop and zoom".
        transform: "affine" (6 parameters, eq. (1)), "attention" (3),
            "projective" (8) or "tps" (32), from :mod:`minstn.transforms`.
        align_corners, padding_mode, mode: passed to ``grid_sample`` /
            the grid generator, PyTorch's meanings.
        features: F, the localisation net's output size. Give it, or give
        in_shape: (C, H, W) of one input; F is then found with one dry forward
            pass on zeros (in eval mode, so BatchNorm statistics are untouched).

    The regression layer is built here, in ``__init__``, so that all parameters
    exist before an optimiser is created. It starts at the identity transform:
    zero weight, identity bias (section 4.1 and the appendix of the paper), so
    that at initialisation the module passes its input through unchanged and
    training starts from "no transformation".

    After each forward, ``last_theta`` holds the predicted transform parameters
    (a detached ndarray: (N, 2, 3) for affine, (N, n_params) otherwise) and
    ``last_grid`` the sampling grid (N, H_out, W_out, 2), for inspection.
    """

    def __init__(self, localisation: Module, out_size=None, transform="affine", align_corners: bool = False,
                 padding_mode: str = "zeros", mode: str = "bilinear", features: int | None = None,
                 in_shape=None, fill_value: float = 0.0):
        super().__init__()
        self.spec = _transform_spec(transform)
        self.transform = transform if isinstance(transform, str) else getattr(transform, "name", "custom")
        self.out_size = None if out_size is None else _positive_pair(out_size, "out_size")
        checks.choice(padding_mode, tuple(PADDINGS), "padding_mode", "SpatialTransformer")
        checks.choice(mode, tuple(MODES), "mode", "SpatialTransformer")
        self.align_corners, self.padding_mode, self.mode = bool(align_corners), padding_mode, mode
        self.fill_value = checks.finite_number(fill_value, "fill_value", "SpatialTransformer")
        self.localisation = localisation
        if features is None:
            if in_shape is None:
                raise ValueError(
                    "SpatialTransformer needs to know the size of the localisation features: pass "
                    "features=F (the localisation net outputs (N, F)) or in_shape=(C, H, W) of one input"
                )
            features = self._infer_features(localisation, _in_shape(in_shape))
        self.features = checks.positive_int(features, "features", "SpatialTransformer")
        self.regression = Linear(self.features, self.spec.n_params)
        self.reset_to_identity()
        self.last_theta = None
        self.last_grid = None

    @staticmethod
    def _infer_features(localisation: Module, in_shape) -> int:
        """Run the localisation net once on zeros of shape (2, C, H, W) and count features."""
        was_training = localisation.training
        dtype = next(iter(localisation.parameters()), Tensor(np.zeros(0, np.float32))).dtype
        localisation.eval()  # no BatchNorm update, no dropout draw
        try:
            with no_grad():
                out = localisation(Tensor(np.zeros((2, *in_shape), dtype=dtype)))
        finally:
            localisation.train(was_training)
        return int(np.prod(out.shape[1:]))

    def reset_to_identity(self) -> None:
        """Zero weight and identity bias: theta = identity whatever the features."""
        init.zeros_(self.regression.weight)
        self.regression.bias.data[...] = self.spec.identity_params(dtype=self.regression.bias.dtype)

    def transform_params(self, x) -> Tensor:
        """Localisation net + regression layer: (N, C, H, W) -> (N, n_params)."""
        h = self.localisation(x)
        if h.ndim != 2:
            h = h.flatten(1)
        return self.regression(h)

    def forward(self, x):
        x = as_tensor(x)
        if x.ndim != 4:
            raise ValueError(f"SpatialTransformer expects input of shape (N, C, H, W), got {x.shape}")
        N, C, H, W = x.shape
        Ho, Wo = self.out_size or (H, W)
        params = self.transform_params(x)
        grid = self.spec.make_grid(params, (N, C, Ho, Wo), self.align_corners)
        out = sampling.grid_sample(x, grid, mode=self.mode, padding_mode=self.padding_mode,
                                   align_corners=self.align_corners, fill_value=self.fill_value)
        theta = np.array(params.data)
        self.last_theta = theta.reshape(N, 2, 3) if self.spec.n_params == 6 and self.transform == "affine" else theta
        self.last_grid = grid.data  # a fresh array every forward: no copy needed
        return out

    def extra_repr(self) -> str:
        size = "input size" if self.out_size is None else f"{self.out_size}"
        fill = f", fill_value={self.fill_value}" if self.fill_value else ""
        return (f"transform={self.transform!r}, out_size={size}, align_corners={self.align_corners}, "
                f"padding_mode={self.padding_mode!r}{fill}")
