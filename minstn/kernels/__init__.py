"""Pure array kernels of the spatial transformer: no Tensor in sight.

One module per backend, all with the same four functions (see ``backend.py``):

    affine_grid_forward(theta, size, align_corners) -> grid                 eq. (1)
    affine_grid_backward(grad_grid, size, align_corners) -> grad_theta
    grid_sample_forward(input, grid, mode, padding_mode, align_corners, fill_value=0.0)
        -> output                                                           eq. (3)-(5)
    grid_sample_backward(grad_output, input, grid, mode, padding_mode, align_corners,
                         fill_value=0.0, need_input_grad=True, need_grid_grad=True)
        -> (grad_input or None, grad_grid or None)                          eq. (6)-(7)

* ``reference``      the paper's sums over every pixel, literally (the oracle)
* ``numpy_backend``  vectorised gathers and np.add.at
* ``pixel``          the per-location math, written once, shared by ``cpu`` and ``cuda``
* ``cpu``            numba.njit loops over chunks of output locations (coordinates on SIMD
                     lanes first, then the image reads), spread over threads by prange launchers
* ``cuda``           numba.cuda kernels (imported only when selected)

Modules are imported lazily by ``minstn.backend`` so that ``import minstn`` does not
compile anything or touch CUDA.
"""
