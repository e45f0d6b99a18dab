"""2-D convolution through the discrete Fourier transform, for many channels and big kernels.

Same results as ``conv_cpu`` (stride 1, no padding), with about a third of the
multiply-adds for the CNN's second convolution (64 -> 64 channels, 7x7 on 17x17). The
convolution theorem, on circular signals of the input's size H x W:

    forward      Y_f[n, o] = sum_c conj(K_f[o, c]) X_f[n, c]      (a correlation)
    grad input   GX_f[n, c] = sum_o K_f[o, c] G_f[n, o]           (a convolution)
    grad weight  GK_f[o, c] = sum_n conj(G_f[n, o]) X_f[n, c]     (a correlation)

where ``X_f``, ``K_f``, ``G_f`` are the 2-D DFTs of the input, of the kernel and of the
output gradient, each zero-padded to H x W. Circular sums are exact here: a valid
output ``h <= H - kh`` plus a kernel offset ``i < kh`` never wraps around.

The transforms are matrix products with precomputed cos / sin tables (``_tables``): a
real image of H*W pixels times a (H*W, 2F) matrix gives the real and imaginary parts of
its F = H * (W//2 + 1) frequencies (the other half is their complex conjugate), so every
step is a BLAS product, run in tasks by ``kernels.threads``. Per frequency, the complex
sums are one real product of block matrices ``[[Kr, Ki], [-Ki, Kr]]``.

How to read the file: ``_tables`` (the transforms), ``dft_cost`` (when this beats
im2col), then ``conv2d_dft_forward`` and ``conv2d_dft_backward`` (the three sums above).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .threads import run_tasks

__all__ = ["conv2d_dft_forward", "conv2d_dft_backward", "dft_is_cheaper"]

IMAGES_PER_TASK = 16
FREQUENCIES_PER_TASK = 16


@lru_cache(maxsize=16)
def _tables(H: int, W: int, dtype: str) -> tuple:
    """``(forward, inverse)``: (H*W, 2F) and (2F, H*W) real matrices of the 2-D real DFT.

    Columns of ``forward`` (rows of ``inverse``) are ``(part, u, v)``, part 0 the real
    and 1 the imaginary part of frequency (u, v), v <= W // 2. ``image @ forward`` is
    the spectrum; ``spectrum @ inverse`` the image again: the dropped half of the
    frequencies is the conjugate of the kept one, so each kept v counts twice, except
    v = 0 and (W even) v = W / 2.
    """
    V = W // 2 + 1
    h, w = np.arange(H)[:, None, None, None], np.arange(W)[None, :, None, None]
    u, v = np.arange(H)[None, None, :, None], np.arange(V)[None, None, None, :]
    theta = 2 * np.pi * ((h * u % H) / H + (w * v % W) / W)        # (H, W, U, V), float64
    forward = np.stack([np.cos(theta), -np.sin(theta)], axis=2)     # (H, W, 2, U, V)
    weight = np.full(V, 2.0)
    weight[0] = 1.0
    if W % 2 == 0:
        weight[-1] = 1.0
    inverse = np.stack([np.cos(theta), -np.sin(theta)], axis=2) * weight / (H * W)
    F2 = 2 * H * V
    return (forward.reshape(H * W, F2).astype(dtype),
            np.ascontiguousarray(inverse.reshape(H * W, F2).T).astype(dtype))


def _pixels(H: int, W: int, rows: int, cols: int) -> np.ndarray:
    """Flat positions ``h * W + w`` of the top-left ``rows x cols`` block of an H x W image."""
    return (np.arange(rows)[:, None] * W + np.arange(cols)).ravel()


@lru_cache(maxsize=16)
def _conv_tables(H: int, W: int, kh: int, kw: int, dtype: str) -> dict:
    """The tables of one convolution geometry, restricted to the pixels each transform
    touches: the kernel taps (kh x kw) and the valid outputs (Ho x Wo)."""
    forward, inverse = _tables(H, W, dtype)
    taps, outputs = _pixels(H, W, kh, kw), _pixels(H, W, H - kh + 1, W - kw + 1)
    return {"forward": forward, "inverse": inverse,
            "forward_taps": np.ascontiguousarray(forward[taps]),
            "forward_outputs": np.ascontiguousarray(forward[outputs]),
            "inverse_taps": np.ascontiguousarray(inverse[:, taps]),
            "inverse_outputs": np.ascontiguousarray(inverse[:, outputs])}


def dft_is_cheaper(x_shape, w_shape, stride, padding) -> bool:
    """Whether the DFT route needs fewer than half the multiply-adds of im2col's product
    (stride 1, no padding only)."""
    if tuple(stride) != (1, 1) or tuple(padding) != (0, 0):
        return False
    _, C, H, W = x_shape
    O, _, kh, kw = w_shape
    P, F2 = (H - kh + 1) * (W - kw + 1), 2 * H * (W // 2 + 1)
    direct = O * C * kh * kw * P
    dft = C * H * W * F2 + (F2 // 2) * 4 * O * C + O * F2 * P      # transform, products, inverse
    return 2 * dft < direct


def _rows_in_tasks(fn, n: int, per_task: int) -> None:
    """``fn(lo, hi)`` over ``[0, n)`` in blocks of ``per_task``, on the workers."""
    blocks = [(lo, min(n, lo + per_task)) for lo in range(0, n, per_task)]
    run_tasks(lambda t: fn(*blocks[t]), len(blocks))


def _spectra(images: np.ndarray, table: np.ndarray, per_task: int) -> np.ndarray:
    """``(N, K, H*W) @ (H*W, 2F)`` regrouped per frequency: ``(F, 2K, N)``, rows (part, k)."""
    N, K = images.shape[:2]
    F2 = table.shape[1]
    out = np.empty((F2 // 2, 2, K, N), dtype=images.dtype)
    flat = images.reshape(N, K, -1)

    def block(lo, hi):
        spec = (flat[lo:hi].reshape(-1, flat.shape[2]) @ table).reshape(hi - lo, K, 2, F2 // 2)
        out[..., lo:hi] = spec.transpose(3, 2, 1, 0)
    _rows_in_tasks(block, N, per_task)
    return out.reshape(F2 // 2, 2 * K, N)


def _images(spectra: np.ndarray, table: np.ndarray, per_task: int) -> np.ndarray:
    """Inverse of :func:`_spectra`: ``(F, 2K, N)`` -> ``(N, K, pixels)`` via ``table`` (2F, pixels)."""
    F, K2, N = spectra.shape
    K = K2 // 2
    out = np.empty((N, K, table.shape[1]), dtype=spectra.dtype)
    grouped = spectra.reshape(F, 2, K, N)

    def block(lo, hi):
        rows = np.ascontiguousarray(grouped[..., lo:hi].transpose(3, 2, 1, 0)).reshape((hi - lo) * K, 2 * F)
        np.matmul(rows, table, out=out[lo:hi].reshape((hi - lo) * K, -1))
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


def _blocks_of(spec: np.ndarray) -> np.ndarray:
    """Kernel spectra ``(O, C, 2, F)`` -> per frequency ``[[Kr, Ki], [-Ki, Kr]]`` (F, 2O, 2C)."""
    kr, ki = spec[:, :, 0].transpose(2, 0, 1), spec[:, :, 1].transpose(2, 0, 1)
    return np.concatenate([np.concatenate([kr, ki], axis=2), np.concatenate([-ki, kr], axis=2)], axis=1)


def conv2d_dft_forward(x: np.ndarray, weight: np.ndarray, bias) -> tuple:
    """``(out, saved)``: the valid cross-correlation of ``x`` (N, C, H, W) with ``weight``
    (O, C, kh, kw) plus ``bias``, and what :func:`conv2d_dft_backward` needs."""
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    Ho, Wo = H - kh + 1, W - kw + 1
    tables = _conv_tables(H, W, kh, kw, x.dtype.str)
    F = tables["forward"].shape[1] // 2
    k_spec = (weight.reshape(O * C, kh * kw) @ tables["forward_taps"]).reshape(O, C, 2, F)
    k_blocks = _blocks_of(k_spec)                                  # conj(K) X as a real product
    x_spec = _spectra(np.ascontiguousarray(x), tables["forward"], IMAGES_PER_TASK)
    y_spec = _per_frequency(k_blocks, x_spec)                      # (F, 2O, N)
    out = _images(y_spec, tables["inverse_outputs"], IMAGES_PER_TASK)
    if bias is not None:
        out += bias[:, None]
    return out.reshape(N, O, Ho, Wo), (x_spec, k_blocks, x.shape, weight.shape)


def conv2d_dft_backward(grad: np.ndarray, saved: tuple, need_input=True, need_weight=True, need_bias=True):
    """``(grad_x, grad_weight, grad_bias)`` of :func:`conv2d_dft_forward`; None where not needed."""
    x_spec, k_blocks, x_shape, w_shape = saved
    N, C, H, W = x_shape
    O, _, kh, kw = w_shape
    tables = _conv_tables(H, W, kh, kw, x_spec.dtype.str)
    g = np.ascontiguousarray(grad, dtype=x_spec.dtype)
    gb = g.sum(axis=(0, 2, 3)) if need_bias else None
    gx = gw = None
    if need_input or need_weight:
        g_spec = _spectra(g, tables["forward_outputs"], IMAGES_PER_TASK)
    if need_input:   # K^T G: the transposed blocks [[Kr^T, -Ki^T], [Ki^T, Kr^T]]
        gx_spec = _per_frequency(np.ascontiguousarray(k_blocks.transpose(0, 2, 1)), g_spec)
        gx = _images(gx_spec, tables["inverse"], IMAGES_PER_TASK).reshape(x_shape)
    if need_weight:  # conj(G) X, summed over the batch inside each product
        prod = _per_frequency(g_spec, x_spec, transpose_b=True)    # (F, 2O, 2C)
        real = prod[:, :O, :C] + prod[:, O:, C:]
        imag = prod[:, :O, C:] - prod[:, O:, :C]
        spec = np.stack([real, imag], axis=0).transpose(2, 3, 0, 1).reshape(O * C, -1)   # (O*C, 2F)
        gw = (spec @ tables["inverse_taps"]).reshape(w_shape)
    return gx, gw, gb
