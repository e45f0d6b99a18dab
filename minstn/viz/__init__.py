"""Figures, drawn with matplotlib's object API (no pyplot state, no display needed).

``geometry``: affine maps, grids over images, vector fields, the autodiff graph;
``training``: training curves and the transformer's grids and outputs (paper Figure 1);
``images``: grids of images and the distortions of section 4.1.
"""
from .geometry import affine_gallery, before_after, draw_graph, grid_overlay, vector_field
from .images import distortion_examples, image_grid, save_figure, write_distortions_figure
from .training import plot_training_curves, plot_transformer

__all__ = ["distortion_examples", "image_grid", "save_figure", "write_distortions_figure", "affine_gallery",
           "before_after", "draw_graph", "grid_overlay", "vector_field", "plot_training_curves",
           "plot_transformer"]
