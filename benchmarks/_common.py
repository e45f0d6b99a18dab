"""What every benchmark script shares: the run description it prints first, and the
interleaved median timing loop.

Imported as ``from _common import ...``: the scripts run as ``python benchmarks/<name>.py``,
so this folder is on ``sys.path``.
"""
import os
import platform
import statistics
import sys
import time

# Time the compiled kernels: a first call must wait for its kernel instead of being
# answered by the NumPy twin meanwhile (minstn/kernels/warm.py).
os.environ.setdefault("MINSTN_WAIT_FOR_JIT", "1")


def describe_run(libraries: str) -> None:
    """Print the command, date, load average and machine, then ``libraries`` (versions
    and thread counts of what the benchmark measures), so that each printed result
    carries the facts needed to read and reproduce it."""
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; load average: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; python {platform.python_version()}, {libraries}")


def interleaved_median_ms(fns: dict, repeats: int, warmups: int = 1) -> dict:
    """{key: fn} -> {key: median ms of ``repeats`` calls}. Each fn is first called
    ``warmups`` times (JIT compilation, caches); then the fns are called in turn,
    repeatedly, so that load from other jobs hits every contender alike."""
    for _ in range(warmups):
        for fn in fns.values():
            fn()
    times = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    return {key: 1e3 * statistics.median(t) for key, t in times.items()}
