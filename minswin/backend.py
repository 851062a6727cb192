"""The array backend: NumPy on the CPU, CuPy on a GPU, chosen by the arrays themselves.

Every op starts with ``xp = get_xp(x, ...)`` and then writes ``xp.matmul``, ``xp.exp`` and so on,
so the same line of maths runs on either library (the Chainer/CuPy pattern). There are no
backend branches in the ops: the few places where NumPy and CuPy differ (erf, scatter-add,
random draws, moving data, finding out whether CuPy can run at all) live here, once.

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


# works from a clone of minswin (the extras also bring what `make gpu-check` needs); the
# second form works anywhere: the CuPy wheel alone, with the CUDA libraries from PyPI ([ctk])
_INSTALL = ("install the CuPy wheel for your CUDA driver: in a clone of minswin, "
            "pip install -e \".[gpu-cuda12]\" (CUDA 12; \".[gpu-cuda13]\" for CUDA 13), or "
            "pip install \"cupy-cuda12x[ctk]\"")
_INSTALL_CURAND = ("pip install \"cupy-cuda12x[ctk]\" brings it (or pip install "
                   "nvidia-curand-cu12; cupy-cuda13x and nvidia-curand-cu13 for CUDA 13)")
_cupy_error = None   # why CuPy cannot be used here, once found out


def _import_cupy():
    """Import CuPy and prove that it can compute here; a clear error otherwise.

    Counting devices is not enough: a machine with a driver but without NVRTC, cuBLAS or
    cuRAND counts its GPU and then fails at the first kernel (or the first DropPath). So a
    tiny elementwise kernel, a reduction, a matmul and a cuRAND draw run once, and their
    results are checked; the first failure is kept and repeated (with CuPy's own message) on
    every later request.
    """
    global _cupy, _cupy_error
    if _cupy is not None:
        return _cupy
    if _cupy_error is None:
        _cupy_error = _cupy_problem()
    if _cupy_error:
        raise RuntimeError(f"backend 'cupy' was requested but {_cupy_error}")
    import cupy
    _cupy = cupy
    return cupy


def _cupy_problem():
    """'' when CuPy imports and computes on a GPU, else what went wrong, in words."""
    try:
        import cupy
    except ImportError as err:
        return f"CuPy is not installed ({err}); {_INSTALL}, or use backend 'numpy'"
    except Exception as err:          # a broken install fails in many ways
        return f"CuPy does not import: {type(err).__name__}: {err}"
    rt = cupy.cuda.runtime
    try:
        driver = rt.driverGetVersion()        # 0 where no NVIDIA driver is installed
    except Exception:
        driver = None
    if driver == 0:
        return ("there is no NVIDIA driver on this machine (cupy.cuda.runtime."
                "driverGetVersion() is 0): CuPy is installed but has no GPU to run on")
    step = "counting GPUs (cupy.cuda.runtime.getDeviceCount)"
    try:
        n = rt.getDeviceCount()
        if n < 1:
            return "CuPy finds 0 GPUs"
        step = "a first kernel ((arange * 2 + 1).sum(), compiled by NVRTC)"
        total = float((cupy.arange(4, dtype=cupy.float32) * 2 + 1).sum())    # 1+3+5+7
        step = "a first matmul (cuBLAS)"
        prod = cupy.asnumpy(cupy.matmul(cupy.ones((2, 3), dtype=cupy.float32),
                                        cupy.ones((3, 2), dtype=cupy.float32)))   # all 3
    except Exception as err:          # an old driver, no NVRTC, no cuBLAS, out of memory, ...
        return f"CuPy cannot compute on this machine: {step} failed with {_first_line(err)}" \
               + _driver_hint(rt, driver)
    if total != 16.0 or not np.all(prod == 3.0):
        return f"CuPy computes wrong numbers here: (arange(4) * 2 + 1).sum() = {total} " \
               f"(expected 16), ones((2, 3)) @ ones((3, 2)) = {prod.tolist()} (expected 3s)"
    try:                              # DropPath's masks (random_uniform) come from cuRAND
        curand = cupy.cuda.curand     # CuPy loads libcurand here
    except Exception as err:
        return f"CuPy without cuRAND: {_first_line(err)}; {_INSTALL_CURAND}"
    try:
        draw = cupy.asnumpy(cupy.random.RandomState(
            seed=0, method=curand.CURAND_RNG_PSEUDO_PHILOX4_32_10).random_sample(4))
    except Exception as err:
        return f"CuPy cannot compute on this machine: a first cuRAND draw failed with " \
               f"{_first_line(err)}"
    if not np.all((draw >= 0) & (draw < 1)):
        return f"CuPy computes wrong numbers here: cuRAND's uniform draws {draw.tolist()} " \
               "are not in [0, 1)"
    return ""


def _first_line(err):
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


def _driver_hint(rt, driver):
    """Where the driver is older than the CUDA runtime CuPy was built for, say so."""
    try:
        runtime = rt.runtimeGetVersion()
    except Exception:
        return ""
    if driver and runtime and driver < runtime:
        return (f" (the NVIDIA driver supports CUDA {driver // 1000}.{driver % 1000 // 10}, "
                f"this CuPy needs {runtime // 1000}.{runtime % 1000 // 10}: update the driver, "
                f"or install the CuPy for CUDA {driver // 1000})")
    return ""


def cupy_unavailable_reason():
    """None when CuPy can be used here, else the reason it cannot (never raises)."""
    try:
        _import_cupy()
        return None
    except RuntimeError as err:
        return str(err).replace("backend 'cupy' was requested but ", "")


def cupy_available():
    """True when CuPy imports and computes on a GPU (never raises)."""
    return cupy_unavailable_reason() is None


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


def device_key(xp):
    """Where new arrays of backend xp land: "cpu", or "cuda:<id>" (CuPy's current device).

    Caches of constants (masks, indices) are keyed by this, so a copy made for one GPU is
    never handed to an op running on another.
    """
    return "cpu" if xp is np else f"cuda:{xp.cuda.runtime.getDevice()}"


_device_generators = {}     # device_key -> a CuPy RandomState (Philox), seeded per draw


def random_uniform(rng, n, xp):
    """n draws from U[0, 1) on backend xp, driven by the host NumPy Generator `rng`.

    NumPy: ``rng.random(n)``. CuPy: one integer drawn from `rng` seeds a device generator
    (cuRAND's Philox, whose seeding is cheap), which draws the n numbers on the GPU. So no
    host->device copy is made, and the host generator still holds all the state: restoring it
    (a resumed run) replays the same stream. The numbers differ between the two backends.
    """
    if xp is np:
        return rng.random(n)                               # (n,)
    key = device_key(xp)
    if key not in _device_generators:
        _device_generators[key] = xp.random.RandomState(
            method=xp.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
    g = _device_generators[key]
    g.seed(int(rng.integers(2 ** 63)))
    return g.random_sample(n)                              # (n,) on the device


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
