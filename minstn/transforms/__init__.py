"""Transforms of a spatial transformer beyond eq. (1)'s affine (Table 1 of the paper).

Jaderberg et al. (NIPS 2015) train with four grid generators: affine (eq. (1)),
attention (eq. (2), 3 parameters), projective (8) and a thin plate spline with 16 control
points (Bookstein 1989). The affine grid lives with the sampler
(``F.affine_grid``); this package holds the rest:

``grids``      pure array forward/backward of the attention, projective and TPS
               grids (no Tensor in sight; also used by the data pipeline)
``functions``  autograd Functions and ``attention_grid``, ``projective_grid``,
               ``tps_grid`` (re-exported as ``F.*``)
``builders``   restricted affine thetas from Tensor ops: rotation, scale,
               translation, their compositions
``pixel_matrices``  theta <-> OpenCV-style pixel-space matrices, homographies from
               points, aspect-correct rotation
``registry``   ``TRANSFORMS``: parameter counts, identities, grid makers
"""

# pure arrays first: importable without building any graph
from .grids import (
    PROJECTIVE_EPS,
    attention_grid_backward,
    attention_grid_forward,
    base_grid,
    projective_grid_backward,
    projective_grid_forward,
    tps_basis,
    tps_control_points,
    tps_grid_backward,
    tps_grid_forward,
    tps_kernel_inverse,
    tps_radial_basis,
)
from .pixel_matrices import (
    aspect_factors,
    homography_from_points,
    homography_matrix,
    homography_params,
    normaliser,
    pixel_matrix_from_theta,
    pixel_offsets_to_normalised,
    rotation_theta_array,
    theta_from_pixel_matrix,
)
from .functions import AttentionGrid, ProjectiveGrid, TPSGrid, attention_grid, projective_grid, tps_grid
from .builders import (
    affine_from_params,
    anisotropic_scale_theta,
    attention_theta,
    compose_theta,
    rotation_theta,
    scale_theta,
    similarity_theta,
    translation_theta,
)
from .registry import TRANSFORMS, TransformSpec, tps_spec

__all__ = [
    "PROJECTIVE_EPS", "base_grid",
    "attention_grid_forward", "attention_grid_backward",
    "projective_grid_forward", "projective_grid_backward",
    "tps_control_points", "tps_radial_basis", "tps_kernel_inverse", "tps_basis",
    "tps_grid_forward", "tps_grid_backward",
    "normaliser", "pixel_matrix_from_theta", "theta_from_pixel_matrix",
    "homography_matrix", "homography_params", "homography_from_points",
    "pixel_offsets_to_normalised", "aspect_factors", "rotation_theta_array",
    "AttentionGrid", "ProjectiveGrid", "TPSGrid", "attention_grid", "projective_grid", "tps_grid",
    "affine_from_params", "attention_theta", "rotation_theta", "scale_theta",
    "anisotropic_scale_theta", "translation_theta", "similarity_theta", "compose_theta",
    "TRANSFORMS", "TransformSpec", "tps_spec",
]
