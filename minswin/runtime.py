"""Process settings that make NumPy training faster on a CPU (`tune_cpu_process()`).

Nothing here changes a number minswin computes; it changes how the process gets memory and
how OpenBLAS's idle threads wait. Measured on a 2-core machine with `perf record` over Swin-T
training steps (benchmarks/README.md), before these settings:

* 14% of the time was the kernel zeroing fresh pages (`clear_page_erms`). glibc hands every
  block over 32 MiB (and, past its adaptive threshold, smaller ones) back to the kernel when
  it is freed, so each step's big activations arrive as new pages that must be zeroed again.
  `tune_cpu_process` asks glibc to keep freed memory and reuse it (mallopt: no mmap'd blocks,
  no trimming). The peak memory stays what the step needs; it is just not given back.
* 21% was OpenBLAS's worker threads spinning after each GEMM (`blas_thread_server`), taking a
  core from the threads that run the elementwise work (minswin.fast.parallel). The
  environment variable OPENBLAS_THREAD_TIMEOUT=4 makes them sleep at once, but OpenBLAS reads
  it only when NumPy is first imported. So the `minswin` command (minswin/cli/__init__.py)
  and the benchmarks set it (if unset) before anything imports NumPy; `import minswin` itself
  changes no environment variable (and imports NumPy only when a name is first used). In
  your own script, set it in the shell (`OPENBLAS_THREAD_TIMEOUT=4 python train.py`) or call
  `prefer_sleeping_blas_threads()` before the first `import numpy`.

The memory setting is opt-in: the `minswin` command and the benchmarks call
`tune_cpu_process()`; the benchmarks then apply it to PyTorch alike (one process).
"""
import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1   # glibc mallopt parameters (malloc.h)
_M_MMAP_MAX = -4


def prefer_sleeping_blas_threads():
    """Set OPENBLAS_THREAD_TIMEOUT=4 unless set already. Effective only before NumPy's first
    import; returns True when it can still take effect."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    return "numpy" not in sys.modules


def keep_freed_memory():
    """Ask glibc to reuse freed memory instead of returning it to the kernel. Returns True if
    applied (glibc on Linux), False elsewhere (nothing is changed there)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False                                       # not glibc (musl, ...)
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0)                           # big blocks from the heap too
    ok &= mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1)          # never trim the heap's top
    return bool(ok)


def tune_cpu_process():
    """Both settings above; returns {setting: applied?} for the caller to report."""
    return {"OPENBLAS_THREAD_TIMEOUT": prefer_sleeping_blas_threads(),
            "keep_freed_memory": keep_freed_memory()}
