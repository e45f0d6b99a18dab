"""PyTorch-named functional ops in one place: ``import minstn.functional as F``.

Re-exports only, so that ``F.*`` reads as in PyTorch: the sampler of the spatial
transformer (``F.affine_grid``, ``F.grid_sample``; :mod:`minstn.sampling`), the other
grid generators of Table 1 (:mod:`minstn.transforms`), the elementwise ops
(:mod:`minstn.ops`) and the layers' ops and losses (:mod:`minstn.nn.functional`).
Every op accepts Tensors or arrays (arrays become constants).
"""

from .nn.functional import (avg_pool2d, batch_norm, conv2d, cross_entropy, dropout, dropout2d, linear,
                            log_softmax, max_pool2d, mse_loss, nll_loss, softmax)
from .ops import relu, sigmoid, tanh
from .sampling import affine_grid, grid_sample
from .transforms import attention_grid, projective_grid, tps_grid

__all__ = ["affine_grid", "grid_sample", "attention_grid", "projective_grid", "tps_grid", "relu", "sigmoid",
           "tanh", "log_softmax", "softmax", "cross_entropy", "nll_loss", "dropout", "dropout2d", "mse_loss", "linear",
           "conv2d", "max_pool2d", "avg_pool2d", "batch_norm"]
