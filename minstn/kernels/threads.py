"""One thread policy for every CPU kernel: N workers, BLAS on one thread inside each.

Three runtimes could each start a thread per core: OpenBLAS (NumPy's matmul), Numba's
``prange`` launchers (the sampler) and the layer kernels here. On two cores two of them
at once means four busy threads, and OpenBLAS's threads spin-wait between calls, so they
steal the cores the next kernel needs. The policy, applied by :func:`set_num_threads`:

* BLAS runs on ONE thread (``threadpoolctl``, process-wide): it never starts threads;
* the layer kernels split the batch into fixed-size tasks and run them on N threads:
  the calling thread and N - 1 workers (:class:`_Workers`); each task calls Numba kernels compiled ``nogil`` and single-threaded
  BLAS, so N tasks really run at once (neither releases the core to the other);
* Numba's own pool (``prange``, the sampler) gets the same N.

Results do not depend on N: a task's work is fixed by the batch and the task size, and
reductions over tasks are summed in task order. A free worker takes the next task, so a
core that another job slows down just does fewer of them (a shared machine costs its
share, not a stall).

The workers sleep until a batch of tasks arrives, and the calling thread takes tasks
from the same batch, so a call whose tasks are all short never waits for a worker to
wake (waking a sleeping thread took about 70 microseconds on the 2-core VMs; a pool
that only hands tasks out cost 100 microseconds a call, benchmarks/RESULTS.md).

``N`` defaults to the CPUs this process may run on (``os.sched_getaffinity``). On a
machine shared with other jobs, ``minstn train --threads N`` with N below the core
count leaves them room; the workers never exceed N busy threads in all.
"""

from __future__ import annotations

import itertools
import os
import threading

__all__ = ["set_num_threads", "get_num_threads", "run_tasks", "default_num_threads"]

_state = {"threads": None, "pool": None, "blas": None}


class _Batch:
    """One call's tasks: workers take the next index until none is left."""

    def __init__(self, task, count: int):
        self.task, self.count = task, count
        self.next_index = itertools.count()  # next() is atomic under the GIL
        self.results = [None] * count
        self.errors = {}
        self.left = count
        self.lock = threading.Lock()
        self.done = threading.Event()

    def work(self) -> None:
        """Run tasks until every index is taken (by this thread or another)."""
        while (t := next(self.next_index)) < self.count:
            try:
                self.results[t] = self.task(t)
            except BaseException as error:  # re-raised by the caller, lowest index first
                self.errors[t] = error
            with self.lock:
                self.left -= 1
                if self.left == 0:
                    self.done.set()


class _Workers:
    """``n - 1`` sleeping threads; :meth:`run` hands them a batch and works on it too."""

    def __init__(self, n: int):
        self._wake = threading.Condition()
        self._batch, self._generation, self._stop = None, 0, False
        self._busy = threading.Lock()   # one batch at a time; a second caller runs alone
        self._inside = threading.local()  # a task that calls run_tasks runs it alone
        self._threads = [threading.Thread(target=self._loop, name=f"minstn-{k}", daemon=True)
                         for k in range(1, n)]
        for thread in self._threads:
            thread.start()

    def _loop(self) -> None:
        self._inside.active = True
        seen = 0
        while True:
            with self._wake:
                while self._generation == seen and not self._stop:
                    self._wake.wait()
                if self._stop:
                    return
                seen, batch = self._generation, self._batch
            batch.work()

    def run(self, task, count: int) -> list:
        if getattr(self._inside, "active", False) or not self._busy.acquire(blocking=False):
            return [task(t) for t in range(count)]
        try:
            batch = _Batch(task, count)
            with self._wake:
                self._batch, self._generation = batch, self._generation + 1
                self._wake.notify_all()
            self._inside.active = True
            try:
                batch.work()
            finally:
                self._inside.active = False
            batch.done.wait()
        finally:
            self._busy.release()
        if batch.errors:
            raise batch.errors[min(batch.errors)]
        return batch.results

    def shutdown(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join()


def _forget_workers_after_fork() -> None:
    """A forked child has none of the parent's threads: it starts its own when needed."""
    _state["threads"] = _state["pool"] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers_after_fork)


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
            _state["pool"].shutdown()
        _state["pool"] = _Workers(n) if n > 1 else None
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
    return pool.run(task, count)
