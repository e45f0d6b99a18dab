"""Seconds to distort 10,000 digits with each distortion of section 4.1, and to
generate 10,000 glyph digits.

    python benchmarks/distort.py [MNIST_FOLDER]     (default ../shared/data/mnist)

The first call of each kind also compiles (or loads from numba's cache) the
kernels, so each kind is timed as the best of 3 runs after one warm-up call.
"""
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import _common  # noqa: F401  (sets MINSTN_WAIT_FOR_JIT: time the compiled kernels)
from minstn.data import KINDS, distort, find_mnist, load_glyphs, load_mnist


def best_of(fn, repeat=3):
    fn()  # warm-up: JIT compilation, page faults
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1].parent / "shared/data/mnist"
    if find_mnist(folder, "test") is not None:
        images, source = load_mnist("test", data_dir=folder, download=False)[0], "MNIST test set"
    else:
        images, source = load_glyphs("test", n=10000)[0], "glyph digits"
    images = images[:10000]
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"command: python {' '.join(sys.argv)}")
    print(f"input:   {len(images)} digits from the {source}")
    for kind in KINDS:
        print(f"distort {kind:>3}: {best_of(lambda: distort(images, kind, seed=0)):6.3f} s")
    print(f"load_glyphs(n=10000): {best_of(lambda: load_glyphs('train', n=10000)):6.3f} s")


if __name__ == "__main__":
    main()
