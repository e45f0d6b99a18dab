"""One thread policy for every CPU kernel: N workers, BLAS on one thread inside each.

Three runtimes could each start a thread per core: OpenBLAS (NumPy's matmul), Numba's
``prange`` launchers (the sampler) and the layer kernels here. On two cores two of them
at once means four busy threads, and OpenBLAS's threads spin-wait between calls, so they
steal the cores the next kernel needs. The policy, applied by :func:`set_num_threads`:

* BLAS runs on ONE thread (``threadpoolctl``, process-wide): it never starts threads;
* the layer kernels split the batch into fixed-size tasks and run them on a pool of N
  Python threads; each task calls Numba kernels compiled ``nogil`` and single-threaded
  BLAS, so N tasks really run at once (neither releases the core to the other);
* Numba's own pool (``prange``, the sampler) gets the same N.

Results do not depend on N: a task's work is fixed by the batch and the task size, and
reductions over tasks are summed in task order. A free worker takes the next task, so a
core that another job slows down just does fewer of them (a shared machine costs its
share, not a stall).

``N`` defaults to the CPUs this process may run on (``os.sched_getaffinity``). On a
machine shared with other jobs, ``minstn train --threads N`` with N below the core
count leaves them room; the workers never exceed N busy threads in all.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

__all__ = ["set_num_threads", "get_num_threads", "run_tasks", "default_num_threads"]

_state = {"threads": None, "pool": None, "blas": None}


def default_num_threads() -> int:
    """The CPUs this process may use (its affinity mask), or Numba's thread count if that
    is lower (``NUMBA_NUM_THREADS=1`` makes a process single-threaded, as the Table 1
    child processes are); at least 1."""
    import numba

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, numba.config.NUMBA_NUM_THREADS))


def set_num_threads(n: int | None = None) -> int:
    """Use ``n`` worker threads (None: :func:`default_num_threads`); returns ``n``.

    Also limits BLAS to one thread (the workers call it) and sets Numba's thread count.
    """
    n = default_num_threads() if n is None else int(n)
    if n < 1:
        raise ValueError(f"the number of threads must be at least 1, got {n}")
    import numba
    from threadpoolctl import ThreadpoolController

    if _state["blas"] is None:  # keep the limit alive: it is undone when collected
        _state["blas"] = ThreadpoolController().limit(limits=1, user_api="blas")
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    if _state["threads"] != n:
        if _state["pool"] is not None:
            _state["pool"].shutdown(wait=True)
        _state["pool"] = ThreadPoolExecutor(n, thread_name_prefix="minstn") if n > 1 else None
        _state["threads"] = n
    return n


def get_num_threads() -> int:
    """The worker count in force (applies the default policy on first use)."""
    if _state["threads"] is None:
        set_num_threads()
    return _state["threads"]


def run_tasks(task, count: int) -> list:
    """``[task(0), ..., task(count - 1)]``, run on the workers; results in task order."""
    pool = _state["pool"] if get_num_threads() > 1 else None
    if pool is None or count <= 1:
        return [task(t) for t in range(count)]
    return list(pool.map(task, range(count)))
