"""2-D convolution through the discrete Fourier transform, for many channels and big kernels.

Same results as ``conv_cpu`` (stride 1, no padding), with a fraction of the
multiply-adds for the CNN's second convolution (64 -> 64 channels, 7x7 on 17x17). The
convolution theorem, on circular signals of the input's size H x W:

    forward      Y_f[n, o] = sum_c conj(K_f[o, c]) X_f[n, c]      (a correlation)
    grad input   GX_f[n, c] = sum_o K_f[o, c] G_f[n, o]           (a convolution)
    grad weight  GK_f[o, c] = sum_n conj(G_f[n, o]) X_f[n, c]     (a correlation)

where ``X_f``, ``K_f``, ``G_f`` are the 2-D DFTs of the input, of the kernel and of the
output gradient, each zero-padded to H x W. Circular sums are exact here: a valid
output ``h <= H - kh`` plus a kernel offset ``i < kh`` never wraps around.

The 2-D DFT is done one axis at a time, each a matrix product with a precomputed cos /
sin table (``_transform_tables``): along w, a real row of W pixels gives the real and
imaginary parts of its V = W//2 + 1 frequencies (the other half is their complex
conjugate); along h, H complex values give H frequencies, as one real product with the
block matrix ``[[cos, sin], [-sin, cos]]``. The inverse (``_inverse_tables``) goes back
the same way and computes only the pixels it is asked for (the valid outputs, or the
kernel taps). Per frequency, the complex sums over channels are one real product of
block matrices ``[[Kr, Ki], [-Ki, Kr]]``. Every step is a BLAS product, run in tasks by
``kernels.threads``.

How to read the file: the two table functions, ``dft_is_cheaper`` (when this beats
im2col, from the multiply-adds of each step), ``_spectra`` and ``_images`` (the
transform and its inverse on a batch), then ``conv2d_dft_forward`` and
``conv2d_dft_backward`` (the three sums above).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .threads import run_tasks

__all__ = ["conv2d_dft_forward", "conv2d_dft_backward", "dft_is_cheaper"]

IMAGES_PER_TASK = 16
FREQUENCIES_PER_TASK = 16


def _as(table: np.ndarray, dtype: str) -> np.ndarray:
    return np.ascontiguousarray(table.astype(dtype))


@lru_cache(maxsize=32)
def _transform_tables(H: int, W: int, dtype: str) -> tuple:
    """``(along_w, along_h)``: the 2-D real DFT of an H x W image as two products.

    ``rows @ along_w`` (W, 2V) turns each row of W pixels into its spectrum, columns
    (part, v) with part 0 the real and 1 the imaginary part of e^{-2 pi i w v / W}.
    ``along_h @ Z`` (2H, 2H) then transforms the columns: rows (part, u) of the result,
    columns (part, h) of Z, the complex product by e^{-2 pi i h u / H} written out.
    """
    V = W // 2 + 1
    wv = 2 * np.pi * (np.arange(W)[:, None] * np.arange(V) % W) / W          # (W, V), float64
    along_w = np.concatenate([np.cos(wv), -np.sin(wv)], axis=1)
    uh = 2 * np.pi * (np.arange(H)[:, None] * np.arange(H) % H) / H          # (U, H)
    c, s = np.cos(uh), np.sin(uh)
    along_h = np.block([[c, s], [-s, c]])   # (cos - i sin)(Zr + i Zi)
    return _as(along_w, dtype), _as(along_h, dtype)


@lru_cache(maxsize=32)
def _inverse_tables(H: int, W: int, rows: int, cols: int, dtype: str) -> tuple:
    """``(back_h, back_w)``: the inverse 2-D DFT, for the top-left ``rows x cols`` pixels.

    ``back_h @ S`` (2*rows, 2H) multiplies by e^{+2 pi i h u / H} and sums over u;
    ``B @ back_w`` (2V, cols) takes the real part of the sum over v, with the 1 / (H W)
    of the inverse. Each kept v counts twice (the dropped half of the frequencies is
    its complex conjugate), except v = 0 and (W even) v = W / 2.
    """
    V = W // 2 + 1
    hu = 2 * np.pi * (np.arange(rows)[:, None] * np.arange(H) % H) / H       # (rows, U)
    c, s = np.cos(hu), np.sin(hu)
    back_h = np.block([[c, -s], [s, c]])    # (cos + i sin)(Sr + i Si)
    twice = np.full(V, 2.0)
    twice[0] = 1.0
    if W % 2 == 0:
        twice[-1] = 1.0
    vw = 2 * np.pi * (np.arange(V)[:, None] * np.arange(cols) % W) / W       # (V, cols)
    back_w = np.concatenate([np.cos(vw), -np.sin(vw)], axis=0) * np.tile(twice, 2)[:, None] / (H * W)
    return _as(back_h, dtype), _as(back_w, dtype)


def _transform_cost(K: int, H: int, W: int) -> int:
    """Multiply-adds of :func:`_spectra` for one image of K channels of H x W pixels."""
    V = W // 2 + 1
    return K * (H * W * 2 * V + 2 * H * 2 * H * V)


def _inverse_cost(K: int, rows: int, cols: int, H: int, W: int) -> int:
    """Multiply-adds of :func:`_images` for one image of K channels, ``rows x cols`` pixels."""
    V = W // 2 + 1
    return K * (2 * rows * 2 * H * V + rows * 2 * V * cols)


def dft_is_cheaper(x_shape, w_shape, stride, padding) -> bool:
    """Whether the DFT route's forward needs fewer than half the multiply-adds of
    im2col's product (stride 1, no padding only)."""
    if tuple(stride) != (1, 1) or tuple(padding) != (0, 0):
        return False
    _, C, H, W = x_shape
    O, _, kh, kw = w_shape
    Ho, Wo = H - kh + 1, W - kw + 1
    direct = O * C * kh * kw * Ho * Wo
    products = H * (W // 2 + 1) * 4 * O * C
    dft = _transform_cost(C, H, W) + products + _inverse_cost(O, Ho, Wo, H, W)
    return 2 * dft < direct


def _rows_in_tasks(fn, n: int, per_task: int) -> None:
    """``fn(lo, hi)`` over ``[0, n)`` in blocks of ``per_task``, on the workers."""
    blocks = [(lo, min(n, lo + per_task)) for lo in range(0, n, per_task)]
    run_tasks(lambda t: fn(*blocks[t]), len(blocks))


def _spectra(images: np.ndarray, H: int, W: int, per_task: int) -> np.ndarray:
    """Spectra of ``images`` (N, K, h, w), zero-padded to H x W: ``(F, 2K, N)`` with
    F = H * V frequencies (u, v) and rows (part, k)."""
    N, K, h, w = images.shape
    V = W // 2 + 1
    along_w, along_h = _transform_tables(H, W, images.dtype.str)
    along_w = along_w[:w]                                             # the padding adds nothing
    along_h = np.ascontiguousarray(along_h[:, np.r_[0:h, H:H + h]])
    out = np.empty((H, V, 2, K, N), dtype=images.dtype)

    def block(lo, hi):
        b = hi - lo
        z = (images[lo:hi].reshape(-1, w) @ along_w).reshape(b, K, h, 2, V)
        columns = np.ascontiguousarray(z.transpose(3, 2, 0, 1, 4)).reshape(2 * h, b * K * V)
        spec = (along_h @ columns).reshape(2, H, b, K, V)
        out[..., lo:hi] = spec.transpose(1, 4, 0, 3, 2)
    _rows_in_tasks(block, N, per_task)
    return out.reshape(H * V, 2 * K, N)


def _images(spectra: np.ndarray, H: int, W: int, rows: int, cols: int, per_task: int) -> np.ndarray:
    """Inverse of :func:`_spectra`: ``(F, 2K, N)`` -> the top-left ``rows x cols`` pixels
    of each image, ``(N, K, rows, cols)``."""
    _, K2, N = spectra.shape
    K, V = K2 // 2, W // 2 + 1
    back_h, back_w = _inverse_tables(H, W, rows, cols, spectra.dtype.str)
    grouped = spectra.reshape(H, V, 2, K, N)
    out = np.empty((N, K, rows, cols), dtype=spectra.dtype)

    def block(lo, hi):
        b = hi - lo
        columns = np.ascontiguousarray(grouped[..., lo:hi].transpose(2, 0, 4, 3, 1)).reshape(2 * H, b * K * V)
        half = (back_h @ columns).reshape(2, rows, b, K, V)
        pixels = np.ascontiguousarray(half.transpose(2, 3, 1, 0, 4)).reshape(b * K * rows, 2 * V)
        np.matmul(pixels, back_w, out=out[lo:hi].reshape(b * K * rows, cols))
    _rows_in_tasks(block, N, per_task)
    return out


def _per_frequency(a: np.ndarray, b: np.ndarray, transpose_b: bool = False) -> np.ndarray:
    """``a[f] @ b[f]`` (or ``@ b[f].T``) for every frequency f, in tasks of frequencies."""
    F = a.shape[0]
    rows, cols = a.shape[1], (b.shape[1] if transpose_b else b.shape[2])
    out = np.empty((F, rows, cols), dtype=a.dtype)

    def block(lo, hi):
        np.matmul(a[lo:hi], b[lo:hi].transpose(0, 2, 1) if transpose_b else b[lo:hi], out=out[lo:hi])
    _rows_in_tasks(block, F, FREQUENCIES_PER_TASK)
    return out


def _blocks_of(k_spec: np.ndarray) -> np.ndarray:
    """Kernel spectra ``(F, 2C, O)`` (rows (part, c)) -> per frequency ``[[Kr, Ki], [-Ki, Kr]]``, (F, 2O, 2C)."""
    F, C2, O = k_spec.shape
    parts = k_spec.reshape(F, 2, C2 // 2, O)
    kr, ki = parts[:, 0].transpose(0, 2, 1), parts[:, 1].transpose(0, 2, 1)     # (F, O, C)
    return np.concatenate([np.concatenate([kr, ki], axis=2), np.concatenate([-ki, kr], axis=2)], axis=1)


def conv2d_dft_forward(x: np.ndarray, weight: np.ndarray, bias) -> tuple:
    """``(out, saved)``: the valid cross-correlation of ``x`` (N, C, H, W) with ``weight``
    (O, C, kh, kw) plus ``bias``, and what :func:`conv2d_dft_backward` needs."""
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    k_blocks = _blocks_of(_spectra(np.ascontiguousarray(weight), H, W, IMAGES_PER_TASK))   # conj(K) X as a real product
    x_spec = _spectra(np.ascontiguousarray(x), H, W, IMAGES_PER_TASK)
    y_spec = _per_frequency(k_blocks, x_spec)                      # (F, 2O, N)
    out = _images(y_spec, H, W, H - kh + 1, W - kw + 1, IMAGES_PER_TASK)
    if bias is not None:
        out += bias[:, None, None]
    return out, (x_spec, k_blocks, x.shape, weight.shape)


def conv2d_dft_backward(grad: np.ndarray, saved: tuple, need_input=True, need_weight=True, need_bias=True):
    """``(grad_x, grad_weight, grad_bias)`` of :func:`conv2d_dft_forward`; None where not needed."""
    x_spec, k_blocks, x_shape, w_shape = saved
    N, C, H, W = x_shape
    O, _, kh, kw = w_shape
    g = np.ascontiguousarray(grad, dtype=x_spec.dtype)
    gb = g.sum(axis=(0, 2, 3)) if need_bias else None
    gx = gw = None
    if need_input or need_weight:
        g_spec = _spectra(g, H, W, IMAGES_PER_TASK)                # (F, 2O, N)
    if need_input:   # K^T G: the transposed blocks [[Kr^T, -Ki^T], [Ki^T, Kr^T]]
        gx_spec = _per_frequency(np.ascontiguousarray(k_blocks.transpose(0, 2, 1)), g_spec)
        gx = _images(gx_spec, H, W, H, W, IMAGES_PER_TASK)
    if need_weight:  # conj(G) X, summed over the batch inside each product
        prod = _per_frequency(g_spec, x_spec, transpose_b=True)    # (F, 2O, 2C)
        real = prod[:, :O, :C] + prod[:, O:, C:]
        imag = prod[:, :O, C:] - prod[:, O:, :C]
        spec = np.stack([real, imag], axis=1).transpose(0, 1, 3, 2).reshape(-1, 2 * C, O)   # rows (part, c), a copy
        gw = _images(spec, H, W, kh, kw, IMAGES_PER_TASK)                                # (O, C, kh, kw)
    return gx, gw, gb
