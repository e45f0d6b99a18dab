"""Figures (matplotlib Agg, no display needed)."""
from .images import distortion_examples, image_grid, save_figure, write_distortions_figure

__all__ = ["distortion_examples", "image_grid", "save_figure", "write_distortions_figure"]
from .geometry import affine_gallery, before_after, draw_graph, grid_overlay, vector_field  # noqa: E402,F401 (geometry figures, issue 7)
from .training import plot_training_curves, plot_transformer  # noqa: E402,F401 (training figures, issue 5)
