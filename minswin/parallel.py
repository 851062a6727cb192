"""Row blocks on a few CPU threads: how the NumPy fast paths use every core.

NumPy's matmul calls a multithreaded BLAS, but each ufunc (add, exp, ...) runs on one core.
Most of the remaining work in a Swin is independent per row: GELU per element, LayerNorm and
softmax per row, attention per window. So the fast paths cut their arrays into blocks of rows
and call a *kernel* on each block:

    kernel(start, stop)   # does the op's plain maths on rows[start:stop], writes its outputs

Two things make this fast, and neither changes the maths:
* a block is small (about 256K elements, 1 MiB of float32), so the dozen passes a kernel
  makes over it stay in the cache instead of going out to memory each time, yet big enough
  that NumPy's cost per call (about a microsecond) is small next to the work;
* the blocks are shared among `num_threads()` threads. NumPy releases the GIL inside every
  ufunc and matmul loop, so the threads really run at once.

Each block's result depends only on its rows, so the output is the same whatever the number
of threads. On CuPy a GPU kernel already uses the whole device: the kernel is called once on
all rows.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

BLOCK_ELEMENTS = 262144  # elements per block. Measured on 2 cores, GELU of (25088, 384):
                         # 16K 90 ms, 64K 47, 256K 28, 1M 39, 4M 56 (LayerNorm alike)

_threads = None          # the thread count once resolved
_pool = None             # the ThreadPoolExecutor of _threads - 1 helpers (the caller is one)
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
    """Use n threads (n >= 1) for the row-block fast paths; 1 turns threading off."""
    global _threads, _pool
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    _threads = int(n)


def _forget_pool_after_fork():
    global _pool
    _pool = None                 # a forked child has none of the parent's threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _helpers():
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_threads - 1, thread_name_prefix="minswin")
    return _pool


def block_rows(row_elements):
    """Rows per block so that a block holds about BLOCK_ELEMENTS elements (at least 1 row)."""
    return max(1, BLOCK_ELEMENTS // max(1, row_elements))


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
    spans = [(s, min(s + block, rows)) for s in range(0, rows, block)] or [(0, 0)]
    threads = num_threads()
    if threads == 1 or len(spans) == 1 or getattr(_local, "inside", False):
        return [kernel(s, e) for s, e in spans]
    results = [None] * len(spans)
    # thread t takes blocks t, t + threads, ...: the same amount of work each, in one task
    def run(t):
        _local.inside = True
        try:
            for i in range(t, len(spans), threads):
                results[i] = kernel(*spans[i])
        finally:
            _local.inside = False
    pool = _helpers()
    futures = [pool.submit(run, t) for t in range(1, min(threads, len(spans)))]
    run(0)
    for f in futures:
        f.result()                                         # re-raises a kernel's error
    return results


def elementwise(ufunc, a, b, out=None):
    """``ufunc(a, b)`` for two arrays of one shape, on row blocks in parallel (NumPy).

    The block's residual adds and the MLP's dh = dg * GELU'(h) go through here. Anything else (broadcasting,
    non-contiguous views, CuPy) is passed straight to the ufunc.
    """
    if (not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray) or a.shape != b.shape
            or a.dtype != b.dtype or not (a.flags.c_contiguous and b.flags.c_contiguous)
            or (out is not None and not (out.shape == a.shape and out.flags.c_contiguous))):
        return ufunc(a, b) if out is None else ufunc(a, b, out=out)
    if out is None:
        out = np.empty(a.shape, a.dtype)
    fa, fb, fo = a.reshape(-1), b.reshape(-1), out.reshape(-1)

    def kernel(s, e):
        ufunc(fa[s:e], fb[s:e], out=fo[s:e])
    for_row_blocks(kernel, fa.size, 4 * block_rows(1))     # one pass: bigger blocks suffice
    return out
