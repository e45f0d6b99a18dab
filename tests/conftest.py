"""Shared test setup: every kernel call waits for its compiled Numba kernel.

minstn answers a first call whose kernel is not compiled yet with the kernel's NumPy
twin (``minstn/kernels/warm.py``). The suite tests the compiled kernels themselves, and
runs with a fresh Numba cache in CI, so it waits for them (the environment variable is
inherited by the tutorials and commands the tests start); ``tests/test_first_use.py``
tests the twins' side in processes of its own.
"""
import os

os.environ.setdefault("MINSTN_WAIT_FOR_JIT", "1")
