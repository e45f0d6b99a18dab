"""Pure array kernels (NumPy and Numba, no Tensor in sight), and where each equation is.

The spatial transformer's grid generator and sampler exist four times, with the same
four entry points (``affine_grid_forward / _backward``, ``grid_sample_forward /
_backward``; ``minstn.backend`` picks the module, ``minstn.sampling`` wires it):

====================  ==========================  ==========================  ===========================  =====================
paper                 reference.py (the oracle)   numpy_backend.py            cpu.py (Numba, via pixel.py)  cuda.py (via pixel.py)
====================  ==========================  ==========================  ===========================  =====================
eq. (1) G             base_coordinates            pixel.base_coordinates      pixel.base_coordinates        pixel.base_coordinate
eq. (1) T_theta(G)    affine_grid_forward         affine_grid_forward         affine_grid_kernel            _affine_grid_kernel
dL/dtheta             affine_grid_backward        affine_grid_backward        affine_grid_backward_kernel   _affine_grid_backward_kernel
[-1, 1] -> pixels     pixel_coordinates           source_indices              pixel.source_index            pixel.source_index
eq. (3) + (5)         grid_sample_forward         grid_sample_forward         bilinear_forward_kernel       pixel.sample_location
eq. (4) nearest       kernel_weights              _taps (np.rint)             pixel.nearest_tap             pixel.nearest_tap
eq. (6) dV/dU         grid_sample_backward        _scatter                    bilinear_backward_kernel      pixel.input_grad_location
eq. (7) dV/dx_s       kernel_derivative           grid_sample_backward        pixel.bilinear_grid_terms     pixel.grid_grad_location
====================  ==========================  ==========================  ===========================  =====================

``pixel.py`` holds the per-location math once, compiled for both the CPU and CUDA;
``reference.py`` depends on no backend it checks.

The layers' kernels: ``layers.py`` holds the readable references (linear, im2col
convolution, pooling, batch norm); the fast CPU versions compute the same with the work
reordered: ``conv_cpu.py`` (im2col on chunks of the batch, BLAS between),
``conv_dft.py`` (convolution through the DFT, for many channels and big kernels),
``linear_cpu.py`` (the products split into tasks), ``pool_cpu.py`` (max pooling in one
pass), ``activation_cpu.py`` (ReLU and its mask together); ``threads.py`` is the one
thread policy they all follow (N workers, BLAS on one thread inside each). Modules are imported
lazily by ``minstn.backend``: ``import minstn`` compiles nothing and never touches CUDA.
``warm.py``: until a Numba kernel of ``cpu.py``, ``conv_cpu.py``, ``pool_cpu.py`` or
``activation_cpu.py`` is compiled, its NumPy twin answers (``numpy_backend.py`` for the sampler), so a first call never waits.
"""
