"""Which kernel module runs the sampler: ``set_backend`` / ``get_backend`` / ``use_backend``.

    mt.set_backend("reference")        # eq. (3)-(7) as printed: slow, obviously right
    mt.set_backend("numpy")            # vectorised NumPy
    mt.set_backend("numba")            # parallel Numba CPU loops (the default)
    mt.set_backend("cuda")             # Numba CUDA kernels (GPU or NUMBA_ENABLE_CUDASIM=1)
    with mt.use_backend("reference"):  # temporarily
        ...

``kernels()`` returns the module of the current backend. Modules are imported on
first use: selecting "cuda" is the only thing that imports numba.cuda.
"""
import contextlib
import importlib

_MODULES = {
    "reference": "minstn.kernels.reference",
    "numpy": "minstn.kernels.numpy_backend",
    "numba": "minstn.kernels.cpu",
    "cuda": "minstn.kernels.cuda",
}
BACKENDS = tuple(_MODULES)

_current = "numba"


def _check(name):
    if name not in _MODULES:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


def set_backend(name: str) -> None:
    """Select the backend used by affine_grid / grid_sample from now on."""
    global _current
    _check(name)
    if name == "cuda":
        kernels("cuda")        # fail now, with a clear message, rather than mid-training
    _current = name


def get_backend() -> str:
    """The name of the current backend ("numba" unless changed)."""
    return _current


@contextlib.contextmanager
def use_backend(name: str):
    """Context manager: run the block on backend ``name``, then restore the previous one."""
    previous = _current
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def kernels(name: str | None = None):
    """The kernel module of backend ``name`` (default: the current one), imported lazily."""
    name = _current if name is None else name
    _check(name)
    return importlib.import_module(_MODULES[name])
