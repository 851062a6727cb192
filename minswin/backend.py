"""The array backend: NumPy on the CPU, CuPy on a GPU, chosen by the arrays themselves.

Every op starts with ``xp = get_xp(x, ...)`` and then writes ``xp.matmul``, ``xp.exp`` and so on,
so the same line of maths runs on either library (the Chainer/CuPy pattern). There are no
backend branches in the ops: the few places where NumPy and CuPy differ (erf, scatter-add,
moving data) live here, once.

The *default* backend (``use("numpy" | "cupy")`` or ``MINSWIN_BACKEND``) only decides where
*new* arrays are created: parameters of a fresh model, cached masks, test data. It never
changes where an op runs; the op's inputs decide that.

CuPy is imported lazily, on first use, so minswin imports and works with no CuPy and no GPU.
"""
import os

import numpy as np

_BACKENDS = ("numpy", "cupy")
_default = None      # name of the default backend, resolved on first use
_cupy = None         # the cupy module once imported successfully


def _import_cupy():
    """Import CuPy and check that it sees a device; a clear error otherwise."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy
    except ImportError as err:
        raise RuntimeError(
            "backend 'cupy' was requested but CuPy is not installed "
            f"({err}); install it with `pip install minswin[gpu]` or use backend 'numpy'"
        ) from None
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing, no device, ...
        raise RuntimeError(f"backend 'cupy' was requested but CuPy finds no GPU: {err}") from None
    if n < 1:
        raise RuntimeError("backend 'cupy' was requested but CuPy finds 0 GPUs")
    _cupy = cupy
    return cupy


def cupy_available():
    """True when CuPy imports and sees at least one GPU (never raises)."""
    try:
        _import_cupy()
        return True
    except RuntimeError:
        return False


def use(name):
    """Set the default backend, where new arrays are created: "numpy" or "cupy"."""
    global _default
    if name not in _BACKENDS:
        raise ValueError(f"backend: expected one of {_BACKENDS}, got {name!r}")
    if name == "cupy":
        _import_cupy()
    _default = name


def default_xp():
    """The array module new arrays are created with (``MINSWIN_BACKEND``, else NumPy)."""
    if _default is None:
        use(os.environ.get("MINSWIN_BACKEND", "numpy"))
    return _cupy if _default == "cupy" else np


def backend_name(xp):
    """'numpy' or 'cupy' for an array module."""
    return "cupy" if xp is not np else "numpy"


def _module_of(a):
    """The array module an array belongs to, or None for non-arrays (None, ints, ...)."""
    if isinstance(a, (np.ndarray, np.generic)):
        return np
    if type(a).__module__.split(".")[0] == "cupy":
        return _import_cupy()
    return None


def get_xp(*arrays):
    """The array module (numpy or cupy) of the given arrays.

    Non-arrays (None, Python numbers) are ignored. Mixing NumPy and CuPy arrays in one call is
    an error: silently copying between host and device hides the slowest step there is.
    With no arrays at all, the default backend is returned.
    """
    found = None       # (position, module)
    for i, a in enumerate(arrays):
        mod = _module_of(a)
        if mod is None:
            continue
        if found is None:
            found = (i, mod)
        elif mod is not found[1]:
            j, first = found
            raise TypeError(
                "arrays from two backends in one call: argument "
                f"{j} is a {backend_name(first)} array but argument {i} is a "
                f"{backend_name(mod)} array; move them to one backend with "
                "minswin.to_backend(x, 'numpy' | 'cupy')"
            )
    return default_xp() if found is None else found[1]


def to_numpy(x):
    """A NumPy copy of an array from either backend (a no-op for NumPy arrays)."""
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x)
    if hasattr(x, "get"):
        return x.get()
    return np.asarray(x)


def to_backend(x, xp=None):
    """Move an array to a backend: xp may be a module, "numpy", "cupy", or None (the default)."""
    if xp is None:
        xp = default_xp()
    elif isinstance(xp, str):
        if xp not in _BACKENDS:
            raise ValueError(f"xp: expected one of {_BACKENDS} or an array module, got {xp!r}")
        xp = np if xp == "numpy" else _import_cupy()
    if xp is np:
        return to_numpy(x)
    return xp.asarray(x)


def erf(x):
    """The exact error function on either backend (scipy / cupyx.scipy)."""
    xp = get_xp(x)
    if xp is np:
        from scipy.special import erf as _erf
    else:
        from cupyx.scipy.special import erf as _erf
    return _erf(x)


def index_add(target, index, values):
    """``target[index] += values`` with repeated indices accumulated, in place.

    The one scatter-add of the project (the relative position bias backward needs it: each
    table row is used many times). Fancy-index assignment ``target[index] += values`` would
    keep only one of the repeats. ``xp.add.at`` is unbuffered and exists in NumPy and in
    CuPy (>= 12.1), so one line serves both backends.
    """
    xp = get_xp(target, index, values)
    xp.add.at(target, index, values)
    return target


def rng(seed=0):
    """A NumPy Generator: test data and initial weights are drawn on the host, then moved."""
    return np.random.default_rng(seed)
