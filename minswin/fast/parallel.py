"""Row blocks on a few CPU threads: how the fast tier (minswin.fast) uses every core.

NumPy's matmul calls a multithreaded BLAS, but each ufunc (add, exp, ...) runs on one core.
Most of the remaining work in a Swin is independent per row: GELU per element, LayerNorm and
softmax per row, attention per window. So the fast paths cut their arrays into blocks of rows
and call a *kernel* on each block:

    kernel(start, stop)   # does the op's plain maths on rows[start:stop], writes its outputs

Two things make this fast, and neither changes the maths:
* a block is small (`block_elements()`, about 256K elements or 1 MiB of float32), so the
  dozen passes a kernel makes over it stay in the cache instead of going out to memory each
  time, yet big enough that NumPy's cost per call (about a microsecond) is small next to the
  work. The best size follows the processor's caches, so it is timed on the machine
  (minswin.fast.tuning);
* the blocks are shared among `num_threads()` threads. NumPy releases the GIL inside every
  ufunc and matmul loop, so the threads really run at once.

Each block's result depends only on its rows, so the output is the same whatever the number
of threads. On CuPy a GPU kernel already uses the whole device: the kernel is called once on
all rows.
"""
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

BLOCK_ELEMENTS = None     # elements per block; None: chosen by timing (block_elements())

_threads = None          # the thread count once resolved
_pool = None             # (threads, ThreadPoolExecutor of threads - 1 helpers): the caller is one
_lock = threading.RLock()    # guards _threads and _pool together
_local = threading.local()


def num_threads():
    """Threads the NumPy fast paths use: ``set_num_threads``, else MINSWIN_NUM_THREADS, else
    OMP_NUM_THREADS / OPENBLAS_NUM_THREADS (the BLAS's own setting), else the usable cores."""
    if _threads is None:
        for var in ("MINSWIN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            value = os.environ.get(var, "").strip()
            if value.isdigit() and int(value) > 0:
                set_num_threads(int(value))
                break
        else:
            set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                            else os.cpu_count() or 1)
    return _threads


def set_num_threads(n):
    """Use n threads (n >= 1) for the row-block fast paths; 1 turns threading off.

    Safe while another thread runs a forward: calls already running finish on the threads
    they started with; the new count applies from the next call. The old helpers are never
    shut down under a running call: they exit once the last call holding them returns (a
    ThreadPoolExecutor's workers stop when it is garbage-collected).
    """
    global _threads, _pool
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    with _lock:
        _threads = int(n)
        _pool = None


def _forget_pool_after_fork():
    global _pool, _lock
    _pool = None                 # a forked child has none of the parent's threads
    _lock = threading.RLock()    # nor the parent's lock holders


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _threads_and_helpers():
    """(thread count, its pool of helpers or None), read together: a `set_num_threads` in
    another thread between the two reads can then neither shrink nor close this call's pool."""
    global _pool
    with _lock:
        threads = num_threads()
        if threads == 1:
            return 1, None
        if _pool is None or _pool[0] != threads:
            _pool = (threads, ThreadPoolExecutor(threads - 1, thread_name_prefix="minswin"))
        return _pool


def block_elements():
    """Elements per block: those of `block_elements_set` in this thread, else BLOCK_ELEMENTS
    if set, else the size timed fastest on this machine (minswin.fast.tuning)."""
    size = getattr(_local, "block_elements", None) or BLOCK_ELEMENTS
    if size is None:
        size = timed_block_elements()
    return size


def timed_block_elements():
    """The size timed fastest on this machine: minswin.fast.tuning.block_elements, set here by
    minswin/fast/__init__.py (tuning times the fast GELU, which runs on these row blocks, so
    this module cannot import it without a cycle)."""
    raise RuntimeError("minswin.fast.parallel: the block-size timer was not installed")


@contextlib.contextmanager
def block_elements_set(size):
    """Blocks of `size` elements for the calls this thread makes inside the `with`."""
    before = getattr(_local, "block_elements", None)
    _local.block_elements = size
    try:
        yield
    finally:
        _local.block_elements = before


def block_rows(row_elements):
    """Rows per block so that a block holds about block_elements() elements (at least 1)."""
    return max(1, block_elements() // max(1, row_elements))


def for_row_blocks(kernel, rows, block, xp=np):
    """Call ``kernel(start, stop)`` on consecutive blocks of `block` rows covering range(rows).

    Returns the kernels' return values in block order (for partial sums the caller adds up in
    a fixed order, so the result does not depend on the thread count). With no rows the
    kernel still runs once, on the empty range, so partial sums come back as zeros.
    On CuPy, or with one thread, or for a single block, everything runs in the calling thread;
    a kernel that itself calls for_row_blocks runs its blocks serially (no nested pools).
    """
    if xp is not np:
        return [kernel(0, rows)]
    block = max(1, block)
    spans = [(start, min(start + block, rows)) for start in range(0, rows, block)] or [(0, 0)]
    if len(spans) == 1 or getattr(_local, "inside", False):
        return [kernel(start, stop) for start, stop in spans]
    threads, pool = _threads_and_helpers()
    if threads == 1:
        return [kernel(start, stop) for start, stop in spans]
    results = [None] * len(spans)
    # thread t takes blocks t, t + threads, ...: the same amount of work each, in one task
    def run(t):
        _local.inside = True
        try:
            for i in range(t, len(spans), threads):
                results[i] = kernel(*spans[i])
        finally:
            _local.inside = False
    futures = [pool.submit(run, t) for t in range(1, min(threads, len(spans)))]
    run(0)
    for f in futures:
        f.result()                                         # re-raises a kernel's error
    return results


def elementwise(ufunc, a, b, out=None):
    """``ufunc(a, b)`` for two arrays of one shape, on row blocks in parallel (NumPy).

    The block's residual adds go through here (minswin.fast.residual). Anything else
    (broadcasting, non-contiguous views, CuPy) is passed straight to the ufunc.
    """
    if (not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray) or a.shape != b.shape
            or a.dtype != b.dtype or not (a.flags.c_contiguous and b.flags.c_contiguous)
            or (out is not None and not (out.shape == a.shape and out.flags.c_contiguous))):
        return ufunc(a, b) if out is None else ufunc(a, b, out=out)
    if out is None:
        out = np.empty(a.shape, a.dtype)
    fa, fb, fo = a.reshape(-1), b.reshape(-1), out.reshape(-1)

    def kernel(start, stop):
        ufunc(fa[start:stop], fb[start:stop], out=fo[start:stop])
    for_row_blocks(kernel, fa.size, 4 * block_rows(1))     # one pass: bigger blocks suffice
    return out
