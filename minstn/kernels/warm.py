"""First use without waiting: until a Numba kernel is compiled, its NumPy twin answers.

Numba compiles a kernel when it first meets new argument types, for seconds (RESULTS.md,
"First use"). So that no learner waits, a backend's host function opts in with two lines:

    @warm.with_twin(numpy_version, examples=...)  # the readable twin: same arguments, same math
    def host_function(x, ...):
        ...
        warm.run(compiled_kernel, x, out, ...)    # instead of compiled_kernel(x, out, ...)

``run`` calls the kernel if it is compiled for these argument types (a fingerprint and a
set lookup, about a microsecond) or in Numba's disk cache (loaded on the spot). If not,
it queues the kernel and raises ``NotReady``, and ``with_twin`` answers with the twin (a
host function writes only arrays it allocates, so leaving it midway is harmless). A
thread takes the queue in order: a worker process compiles each kernel into the disk
cache (taking neither this process's GIL nor Numba's compiler lock), the thread loads
it, and the next call runs compiled. ``warm_up`` (``minstn warmup``) calls every host
function on its ``examples()`` to fill the cache ahead of time.

The twin rounds differently, so a run that switched mid-way can differ in the last bits:
inside ``wait_for_compiled()`` (the commands that train) or with ``MINSTN_WAIT_FOR_JIT=1``
every call waits for its compiled kernel instead.
"""
import atexit
import base64
import contextlib
import functools
import importlib
import os
import pickle
import pkgutil
import queue
import subprocess
import sys
import threading
import time
from collections import Counter

import numba
from numba._dispatcher import compute_fingerprint   # the fingerprint Numba's own dispatch uses
from numba.core import event
from numba.core.dispatcher import Dispatcher


class NotReady(Exception):
    """The compiled kernel is not ready yet (it is queued); the twin answers instead."""


calls = Counter()        # (host function, "compiled" or "twin") -> how many calls ran there:
                         # print(warm.calls) shows which version answered
_ready = set()           # (kernel, fingerprint of the arguments) seen compiled
_wait_depth = 0          # how many wait_for_compiled blocks are open
_HOSTS = []              # (host function, examples) of every host function with a twin


@contextlib.contextmanager
def wait_for_compiled():
    """Inside this block (or as a decorator) every call waits for its compiled kernel
    (compiling it, or loading it from the disk cache, right there), so results never
    depend on whether the cache was warm."""
    global _wait_depth
    _wait_depth += 1
    try:
        yield
    finally:
        _wait_depth -= 1


def _waiting():
    return _wait_depth > 0 or os.environ.get("MINSTN_WAIT_FOR_JIT", "0") not in ("", "0")


def run(kernel, *args):
    """``kernel(*args)`` if it is compiled for these argument types, else queue it and
    raise ``NotReady`` for the ``with_twin`` host function that called it (inside
    ``wait_for_compiled``: compile it now and run it)."""
    try:
        key = (kernel, compute_fingerprint(args))
    except Exception:    # an argument Numba cannot fingerprint: let the dispatcher decide
        return kernel(*args)
    if key in _ready or not isinstance(kernel, Dispatcher):    # (NUMBA_DISABLE_JIT: plain Python)
        return kernel(*args)
    signature = tuple(kernel.typeof_pyval(a) for a in args)    # ~30 us an argument: once per key
    if signature not in kernel.overloads:
        if _waiting():        # compile it below, but not while the worker compiles (it may be
            _compiler.drain()  # this one; and Numba's cache index is not safe for two at once)
        elif not _compiler.ready(kernel, signature):
            raise NotReady(kernel.__name__)
    result = kernel(*args)
    _ready.add(key)
    return result


def with_twin(twin, examples=None):
    """Decorator: the host function's calls go to ``twin`` (same arguments, same results
    within the backends' tolerance) while a kernel it runs is not compiled yet.
    ``examples()`` returns argument tuples for ``warm_up``; the decorated function keeps
    both versions as ``.compiled`` and ``.twin``."""
    def decorate(fast):
        name = f"{fast.__module__}.{fast.__name__}"

        @functools.wraps(fast)
        def host(*args, **kwargs):
            try:
                result = fast(*args, **kwargs)
            except NotReady:
                calls[name, "twin"] += 1
                return twin(*args, **kwargs)
            calls[name, "compiled"] += 1
            return result

        host.compiled, host.twin = fast, twin
        _HOSTS.append((host, examples))
        return host
    return decorate


def warm_up(report=print):
    """Compile (or load) every kernel that the host functions with a twin run on their
    examples, with all of Numba's threads; returns the seconds taken. Every module of
    ``minstn.kernels`` is imported (which registers its host functions) but ``cuda.py``."""
    for module in pkgutil.iter_modules(importlib.import_module("minstn.kernels").__path__):
        if module.name != "cuda":                            # (would import numba.cuda)
            importlib.import_module(f"minstn.kernels.{module.name}")
    start, threads = time.perf_counter(), numba.get_num_threads()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)    # large examples take the parallel path
    try:
        with wait_for_compiled():
            for host, examples in _HOSTS:
                if examples is not None:
                    t = time.perf_counter()
                    for args in examples():
                        host(*args)
                    report(f"{host.__module__}.{host.__name__}: {time.perf_counter() - t:.1f} s")
    finally:
        numba.set_num_threads(threads)
    return time.perf_counter() - start


def compiling():
    """Whether kernels are queued or being compiled in the background."""
    return _compiler.busy()


def drain(timeout=None):
    """Wait until every queued kernel is compiled (for tests and benchmarks); True if so."""
    return _compiler.drain(timeout)


# ------------------------------------------------------------------ the compiler ----
class _Compiler:
    """One daemon thread that compiles the queued kernels in order, through a worker."""

    def __init__(self):
        self._queue = queue.Queue()
        self._asked = set()       # (kernel, signature) ever asked for: each is loaded or queued once
        self._lock = threading.Lock()
        self._thread = None
        self._worker = None       # the worker process; False once it could not start or died

    def ready(self, kernel, signature):
        """The first time a kernel is asked for: load it from the disk cache, or queue it."""
        with self._lock:
            if (kernel, signature) in self._asked:
                return False
            self._asked.add((kernel, signature))
        if _load_from_disk(kernel, signature):
            return True
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="minstn-compile", daemon=True)
                self._thread.start()
        self._queue.put((kernel, signature))
        return False

    def busy(self):
        return self._queue.unfinished_tasks > 0

    def drain(self, timeout=None):
        end = None if timeout is None else time.monotonic() + timeout
        while self.busy():
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(0.05)
        return True

    def _serve(self):
        while True:
            kernel, signature = self._queue.get()
            try:
                self._compile_in_worker(kernel, signature)
                kernel.compile(signature)      # a disk-cache load after the worker; else the compile
            except Exception:                  # the twin keeps answering; inside wait_for_compiled
                pass                           # the call itself raises the error
            finally:
                self._queue.task_done()

    def _compile_in_worker(self, kernel, signature):
        if self._worker is None:
            self._worker = _start_worker()
        if not self._worker:
            return
        f = kernel.py_func
        job = base64.b64encode(pickle.dumps(signature)).decode()
        try:
            self._worker.stdin.write(f"{f.__module__} {f.__qualname__} {job}\n")
            self._worker.stdin.flush()
            answered = self._worker.stdout.readline()
        except OSError:
            answered = ""
        if not answered:             # the worker is gone: this thread compiles from now on
            self._worker = False


class _CompileRefused(Exception):
    pass


class _RefuseCompiles(event.Listener):
    """Numba announces each real compile (not a disk-cache load) with a "numba:compile"
    event: this listener stops the ones started on the thread that installed it."""

    def __init__(self):
        self.thread = threading.get_ident()

    def on_start(self, event):
        if threading.get_ident() == self.thread:
            raise _CompileRefused

    def on_end(self, event):
        pass


def _load_from_disk(kernel, signature):
    """Load ``kernel`` for ``signature`` from Numba's disk cache if it is there, never
    compiling it; True if loaded. (It waits if another thread holds the compiler lock:
    the compile thread only loads, unless the worker could not start.)

    A first load costs Numba's one-time set-up (~0.3 s), so it is tried only where the
    cache holds an index file for the kernel (named after its file and function).
    """
    f, folder = kernel.py_func, kernel.stats.cache_path
    prefix = f"{os.path.splitext(os.path.basename(f.__code__.co_filename))[0]}.{f.__qualname__}-"
    try:
        if not (folder and any(n.startswith(prefix) and n.endswith(".nbi") for n in os.listdir(folder))):
            return False
        with event.install_listener("numba:compile", _RefuseCompiles()):
            kernel.compile(signature)
    except Exception:               # _CompileRefused: not cached; OSError, ...: let the queue try
        return False
    return True


def _start_worker():
    """The worker process (the same Python, the same minstn and Numba cache), or False."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    if numba.config.CACHE_DIR:
        env["NUMBA_CACHE_DIR"] = numba.config.CACHE_DIR
    try:
        worker = subprocess.Popen(
            [sys.executable, "-c", "from minstn.kernels.warm import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    except OSError:
        return False
    atexit.register(worker.kill)     # a compile cut short leaves no broken cache entry
    return worker


def serve():
    """The worker's loop: each line 'module name signature' -> compile into the disk cache,
    answer one line. (It ends when the parent closes the pipe, or kills it at exit.)"""
    answers, sys.stdout = sys.stdout, sys.stderr     # whatever else prints cannot garble answers
    for line in sys.stdin:
        module, name, job = line.split()
        try:
            getattr(importlib.import_module(module), name).compile(pickle.loads(base64.b64decode(job)))
            print("ok", file=answers, flush=True)
        except Exception as err:     # the parent then compiles it itself, and sees the error
            print(f"failed {type(err).__name__}", file=answers, flush=True)


_compiler = _Compiler()


def _after_fork():
    global _compiler
    _compiler = _Compiler()          # a forked child has no compile thread and no worker of its own


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
