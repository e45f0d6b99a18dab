"""Figures for the geometry of a spatial transformer, and for its autodiff graph.

Every function returns a :class:`matplotlib.figure.Figure` built with the
object-oriented API (no ``pyplot`` state, so it is safe under the Agg backend, in
tests, and in threads). Save it with ``fig.savefig(path)``.

``grid_overlay``     the sampling grid T_theta(G) drawn over the input U (Figure 3
                     of Jaderberg et al. 2015): where each output pixel reads from
``before_after``     rows of (input, transformed) panels, e.g. a digit and what the
                     transformer made of it
``vector_field``     a quiver of a 2-vector per grid point, e.g. dL/d(x_s, y_s) of
                     eq. (7) drawn at the sampling locations
``affine_gallery``   the unit square and a point lattice mapped by several 2x3 matrices
``draw_graph``       the backward graph of a Tensor as boxes and arrows (the
                     picture of what ``mt.graph(t)`` prints)

Coordinates: grids hold normalised ``(x, y)`` in [-1, 1] (PyTorch's convention);
they are converted to pixel coordinates with the same ``align_corners`` rule as
the sampler, so the dots land on the pixels that are actually read.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Polygon
from ..kernels.pixel import unnormalize

__all__ = ["grid_overlay", "before_after", "vector_field", "affine_gallery", "draw_graph", "to_pixels"]


def _array(x) -> np.ndarray:
    """Tensor or array -> float ndarray (no autograd import needed)."""
    return np.asarray(getattr(x, "data", x), dtype=np.float64)


def _image2d(image) -> np.ndarray:
    """(H, W), (1, H, W) or (1, 1, H, W) -> (H, W)."""
    img = _array(image)
    while img.ndim > 2 and img.shape[0] == 1:
        img = img[0]
    if img.ndim != 2:
        raise ValueError(f"expected one single-channel image, got shape {img.shape}")
    return img


def _grid2d(grid) -> np.ndarray:
    """(Ho, Wo, 2) or (1, Ho, Wo, 2) -> (Ho, Wo, 2)."""
    g = _array(grid)
    if g.ndim == 4 and g.shape[0] == 1:
        g = g[0]
    if g.ndim != 3 or g.shape[-1] != 2:
        raise ValueError(f"expected a grid (Ho, Wo, 2), got shape {g.shape}")
    return g


def to_pixels(grid, H: int, W: int, align_corners: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Normalised grid (..., 2) -> pixel coordinates (ix, iy), as the sampler computes them.

    align_corners=False: ix = ((x + 1) W - 1) / 2   (-1, +1 are the image's outer edges)
    align_corners=True:  ix = (x + 1) / 2 (W - 1)   (-1, +1 are the corner pixel centres)
    """
    g = _array(grid)
    ix, _ = unnormalize(g[..., 0], W, align_corners)
    iy, _ = unnormalize(g[..., 1], H, align_corners)
    return ix, iy


def _show(ax, img, title=None, cmap="gray"):
    ax.imshow(img, cmap=cmap, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def _outline(ix, iy):
    """The border of a (Ho, Wo) lattice of points, in order, as an (M, 2) polygon."""
    top = np.stack([ix[0, :], iy[0, :]], -1)
    right = np.stack([ix[:, -1], iy[:, -1]], -1)
    bottom = np.stack([ix[-1, ::-1], iy[-1, ::-1]], -1)
    left = np.stack([ix[::-1, 0], iy[::-1, 0]], -1)
    return np.concatenate([top, right, bottom, left])


def grid_overlay(image, grid, align_corners: bool = False, output=None, step: int = 1,
                 title: str | None = None, color: str = "tab:orange") -> Figure:
    """The sampling grid T_theta(G) drawn over the input U (Figure 3 of the paper).

    Args:
        image: the input U, (H, W) or (1, 1, H, W).
        grid: the sampling grid, (Ho, Wo, 2) or (1, Ho, Wo, 2), normalised (x, y).
        align_corners: the convention the sampler uses (so dots land where it reads).
        output: optional sampled output V; drawn in a second panel when given.
        step: draw every ``step``-th grid point (dense grids become a grey smear).
        title: title of the left panel.
    """
    img = _image2d(image)
    H, W = img.shape
    g = _grid2d(grid)
    ix, iy = to_pixels(g, H, W, align_corners)
    panels = 2 if output is not None else 1
    fig = Figure(figsize=(3.6 * panels, 3.8), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    ax = axes[0]
    _show(ax, img, title or r"input $U$ and $\mathcal{T}_\theta(G)$")
    ax.add_patch(Polygon(_outline(ix, iy), closed=True, fill=False, edgecolor=color, linewidth=1.5))
    ax.scatter(ix[::step, ::step].ravel(), iy[::step, ::step].ravel(), s=6, color=color, zorder=3)
    # The first target pixel (top-left of the output) marked, so orientation is visible.
    ax.scatter([ix[0, 0]], [iy[0, 0]], s=40, marker="s", facecolor="none", edgecolor="tab:red", zorder=4)
    # Keep the whole image in view and a margin for points that fall outside it.
    pad_x = max(0.0, -ix.min(), ix.max() - (W - 1)) + 1
    pad_y = max(0.0, -iy.min(), iy.max() - (H - 1)) + 1
    ax.set_xlim(-0.5 - pad_x, W - 0.5 + pad_x)
    ax.set_ylim(H - 0.5 + pad_y, -0.5 - pad_y)
    if output is not None:
        _show(axes[1], _image2d(output), r"output $V$")
    return fig


def before_after(before, after, titles=("input", "transformed"), labels=None, max_rows: int = 8) -> Figure:
    """Columns of images: each row one sample, one column per stage.

    Args:
        before, after: batches (N, H, W) or (N, 1, H, W); sizes may differ. ``after``
            may also be a list of batches (several stages).
        titles: one column title per stage.
        labels: optional per-row text (e.g. the predicted class).
    """
    stages = [before] + (list(after) if isinstance(after, (list, tuple)) else [after])
    arrays = []
    for s in stages:
        a = _array(s)
        if a.ndim == 4:
            a = a[:, 0]
        arrays.append(a)
    rows = min(len(arrays[0]), max_rows)
    cols = len(arrays)
    fig = Figure(figsize=(1.5 * cols, 1.5 * rows + 0.3), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            title = titles[c] if (r == 0 and titles and c < len(titles)) else None
            _show(axes[r, c], arrays[c][r], title)
        if labels is not None:
            axes[r, 0].set_ylabel(str(labels[r]), fontsize=8)
    return fig


def vector_field(image, vectors, grid=None, align_corners: bool = False, step: int = 1,
                 title: str | None = None, normalise: bool = True) -> Figure:
    """A quiver of one 2-vector per location, drawn over an image.

    Args:
        image: (H, W) background, e.g. the input U.
        vectors: (Ho, Wo, 2) or (1, Ho, Wo, 2); e.g. dL/d(x_s, y_s), the grid gradient.
        grid: where to draw the arrows (normalised, same shape); defaults to the
            pixel centres of the image (then Ho, Wo must equal H, W).
        normalise: scale the longest arrow to about two pixels, so the field is
            readable whatever the loss scale.

    The arrows show the direction in which each sampling point should move to
    INCREASE the loss; gradient descent moves it the other way.
    """
    img = _image2d(image)
    H, W = img.shape
    v = _grid2d(vectors)
    if grid is None:
        if v.shape[:2] != (H, W):
            raise ValueError(f"without a grid the field must match the image, {v.shape[:2]} vs {(H, W)}")
        iy, ix = np.mgrid[0:H, 0:W].astype(np.float64)
    else:
        ix, iy = to_pixels(_grid2d(grid), H, W, align_corners)
    # Normalised units -> pixels: d(ix)/dx is W/2 (align_corners=False) or (W-1)/2.
    u = v[..., 0] * unnormalize(0.0, W, align_corners)[1]
    w = v[..., 1] * unnormalize(0.0, H, align_corners)[1]
    s = (slice(None, None, step), slice(None, None, step))
    u, w, ix, iy = u[s], w[s], ix[s], iy[s]
    longest = np.sqrt(u**2 + w**2).max()
    scale = (2.0 / longest) if (normalise and longest > 0) else 1.0
    # Zero vectors would be drawn as dots all over the background: leave them out.
    keep = np.sqrt(u**2 + w**2) > 1e-3 * longest if longest > 0 else np.zeros(u.shape, bool)
    fig = Figure(figsize=(4.2, 4.2), layout="constrained")
    ax = fig.subplots()
    # Ink dark on white (cmap "Greys") so that red arrows stand out everywhere.
    _show(ax, img, title or r"$\partial L / \partial (x^s, y^s)$", cmap="Greys")
    ax.quiver(ix[keep], iy[keep], (u * scale)[keep], (w * scale)[keep], color="tab:red", angles="xy",
              scale_units="xy", scale=1.0, width=0.006)
    ax.set_xlim(-0.5, W - 0.5)
    ax.set_ylim(H - 0.5, -0.5)
    return fig


def affine_gallery(thetas, titles=None, points: int = 5) -> Figure:
    """Where 2x3 matrices send the square [-1, 1]^2 (eq. (1) in one picture per matrix).

    Grey: the target grid G (points (x_t, y_t)). Orange: A_theta (x_t, y_t, 1)^T.
    The y axis points DOWN, as in an image (row index grows downwards).
    """
    thetas = [_array(t).reshape(2, 3) for t in thetas]
    n = len(thetas)
    fig = Figure(figsize=(2.4 * n, 2.7), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    lin = np.linspace(-1, 1, points)
    xt, yt = np.meshgrid(lin, lin)
    G = np.stack([xt.ravel(), yt.ravel(), np.ones(xt.size)])  # homogeneous (3, P)
    square = np.array([[-1, 1, 1, -1, -1], [-1, -1, 1, 1, -1], [1, 1, 1, 1, 1]], dtype=np.float64)
    for k, (ax, A) in enumerate(zip(axes, thetas)):
        src, sq = A @ G, A @ square
        ax.plot(square[0], square[1], color="0.6", lw=1)
        ax.scatter(G[0], G[1], s=8, color="0.6")
        ax.plot(sq[0], sq[1], color="tab:orange", lw=1.5)
        ax.scatter(src[0], src[1], s=10, color="tab:orange")
        # The image of the corner (-1, -1): shows flips and rotations.
        ax.scatter([sq[0, 0]], [sq[1, 0]], s=45, marker="s", facecolor="none", edgecolor="tab:red")
        ax.set_xlim(-2.1, 2.1)
        ax.set_ylim(2.1, -2.1)
        ax.set_aspect("equal")
        ax.axhline(0, color="0.85", lw=0.5, zorder=0)
        ax.axvline(0, color="0.85", lw=0.5, zorder=0)
        ax.tick_params(labelsize=7)
        if titles:
            ax.set_title(titles[k], fontsize=9)
    return fig


# ---------------------------------------------------------------- the graph ----
def _graph_nodes(root, names):
    """Walk the backward graph: nodes keyed by id, edges (child -> parent), depths."""
    by_id = {id(t): label for label, t in (names or {}).items()}
    nodes, edges, depth = {}, [], {}

    def key_of(t):
        return ("fn", id(t.grad_fn)) if t.grad_fn is not None else ("leaf", id(t))

    stack = [(root, 0)]
    while stack:
        t, d = stack.pop()
        k = key_of(t)
        label = by_id.get(id(t)) or getattr(t, "name", None) or ""
        if k in depth and depth[k] >= d:
            continue
        depth[k] = d
        if t.grad_fn is None:
            kind = "leaf" if t.requires_grad else "constant"
            nodes[k] = (label or kind, f"{tuple(t.shape)}", "leaf")
            continue
        text = t.grad_fn.name + (f"\n[{label}]" if label else "")
        nodes[k] = (text, f"{tuple(t.shape)}", "fn")
        for c in t.grad_fn.inputs:
            if c is not None and c.requires_grad:
                edges.append((key_of(c), k))
                stack.append((c, d + 1))
    # An input used twice by one op (x * x) is one edge drawn once, labelled "x2".
    counts: dict = {}
    for e in edges:
        counts[e] = counts.get(e, 0) + 1
    return nodes, counts, depth


def draw_graph(root, names: dict | None = None, title: str | None = None) -> Figure:
    """The backward graph of ``root`` as boxes and arrows (what ``mt.graph`` prints).

    Orange boxes: graph nodes (the Function whose backward will run), with the
    shape of the tensor they produced. Blue boxes: leaves that require grad (where
    ``.grad`` lands). Arrows point the way values flowed in the FORWARD pass;
    ``backward`` walks them in reverse, root (top) first.

    Args:
        root: the tensor you would call ``backward`` on.
        names: optional ``{"label": tensor}``, as for ``mt.graph``.
    """
    nodes, edges, depth = _graph_nodes(root, names)
    levels: dict[int, list] = {}
    for k, d in sorted(depth.items(), key=lambda kv: kv[1]):
        levels.setdefault(d, []).append(k)
    n_levels = max(levels) + 1
    widest = max(len(v) for v in levels.values())
    fig = Figure(figsize=(max(4.0, 2.3 * widest), 1.15 * n_levels + 0.6), layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    pos = {}
    for d, keys in levels.items():
        for j, k in enumerate(keys):
            pos[k] = ((j + 0.5) / len(keys), 1.0 - (d + 0.5) / n_levels)
    for (child, parent), count in edges.items():
        (x0, y0), (x1, y1) = pos[child], pos[parent]
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), transform=ax.transAxes, arrowstyle="-|>",
                                     mutation_scale=12, color="0.35", shrinkA=16, shrinkB=16))
        if count > 1:
            ax.text((x0 + x1) / 2 + 0.02, (y0 + y1) / 2, f"x{count}", transform=ax.transAxes,
                    fontsize=8, color="0.35")
    for k, (text, shape, kind) in nodes.items():
        x, y = pos[k]
        face = "#fde2c4" if kind == "fn" else "#cfe2f3"
        ax.text(x, y, f"{text}\n{shape}", transform=ax.transAxes, ha="center", va="center", fontsize=8,
                family="monospace", bbox=dict(boxstyle="round,pad=0.35", facecolor=face, edgecolor="0.3"))
    if title:
        ax.set_title(title, fontsize=10)
    return fig
