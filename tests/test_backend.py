import numpy as np
import pytest

import minswin
from minswin import backend


class FakeCupyArray:
    """Stands in for a cupy.ndarray: the backend identifies arrays by their module."""
    __module__ = "cupy._core.core"


def test_get_xp_numpy_and_default(rng):
    x = rng.standard_normal(3)
    assert backend.get_xp(x, None, 3.0) is np
    assert backend.get_xp() is backend.default_xp()


def test_mixed_backends_named_in_error(monkeypatch, rng):
    monkeypatch.setattr(backend, "_import_cupy", lambda: object())
    with pytest.raises(TypeError, match=r"two backends.*argument 0 is a numpy.*argument 1 is a "
                                        r"cupy"):
        backend.get_xp(rng.standard_normal(2), FakeCupyArray())


def test_use_rejects_unknown_and_missing_cupy(monkeypatch):
    with pytest.raises(ValueError, match=r"backend: expected one of .*got 'torch'"):
        minswin.use("torch")
    if not backend.cupy_available():
        with pytest.raises(RuntimeError, match="cupy"):
            minswin.use("cupy")


def test_index_add_accumulates_repeats():
    t = np.zeros(3)
    backend.index_add(t, np.array([0, 2, 2, 2]), np.array([1.0, 1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(t, [1.0, 0.0, 6.0])
    # what index_add exists to avoid: fancy assignment keeps one of the repeats
    u = np.zeros(3)
    u[np.array([0, 2, 2, 2])] += np.array([1.0, 1.0, 2.0, 3.0])
    assert u[2] != 6.0


def test_to_backend_round_trip(rng):
    x = rng.standard_normal((2, 3))
    y = minswin.to_backend(x, "numpy")
    np.testing.assert_array_equal(minswin.to_numpy(y), x)
    with pytest.raises(ValueError, match="xp: expected one of"):
        minswin.to_backend(x, "jax")


def test_erf_matches_math(rng):
    import math
    x = rng.standard_normal(50) * 3
    np.testing.assert_allclose(backend.erf(x), [math.erf(v) for v in x], rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------- finding CuPy

@pytest.fixture
def fresh_detection(monkeypatch):
    """Forget what the backend found out about CuPy (restored after the test)."""
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_error", None)
    return monkeypatch


def test_missing_cupy_names_the_wheels_to_install(fresh_detection):
    import sys
    fresh_detection.setitem(sys.modules, "cupy", None)     # `import cupy` raises ImportError
    reason = backend.cupy_unavailable_reason()
    assert "CuPy is not installed" in reason
    # commands that work: from a clone (pip install minswin[...] has no index to come from),
    # or the CuPy wheel itself
    assert 'pip install -e ".[gpu-cuda12]"' in reason and '".[gpu-cuda13]"' in reason
    assert 'pip install "cupy-cuda12x[ctk]"' in reason and "minswin[" not in reason
    with pytest.raises(RuntimeError, match=r"backend 'cupy' was requested but CuPy is not "
                                           r"installed.*gpu-cuda12.*gpu-cuda13"):
        minswin.use("cupy")


def _reason_with_driver(monkeypatch, version):
    """What the backend says where CuPy's driverGetVersion() is `version` and counting GPUs
    fails as CuPy's does without a (new enough) driver."""
    import sys

    import cupy_standin
    fake = cupy_standin.build()["cupy"]
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(fake.cuda.runtime, "driverGetVersion", lambda: version)

    def count():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")
    monkeypatch.setattr(fake.cuda.runtime, "getDeviceCount", count)
    return backend.cupy_unavailable_reason()


def test_no_nvidia_driver_is_said_as_such(fresh_detection):
    """CuPy installed on a machine without a driver: driverGetVersion() is 0, and counting
    GPUs fails with 'cudaErrorInsufficientDriver', which reads like 'upgrade the driver'."""
    reason = _reason_with_driver(fresh_detection, 0)
    assert reason.startswith("there is no NVIDIA driver on this machine"), reason
    assert "insufficient" not in reason


def test_an_old_driver_is_named_with_both_cuda_versions(fresh_detection):
    reason = _reason_with_driver(fresh_detection, 11080)
    assert "cudaErrorInsufficientDriver" in reason
    assert "driver supports CUDA 11.8, this CuPy needs 12.8" in reason, reason


def test_cupy_without_curand_is_its_own_message(fresh_detection):
    """A CuPy whose cuRAND library is missing computes kernels and matmuls, and would fail at
    the first DropPath: it is not called available."""
    import sys

    import cupy_standin
    fake = cupy_standin.build()["cupy"]
    fresh_detection.setitem(sys.modules, "cupy", fake)
    fresh_detection.delattr(fake.cuda, "curand")

    def no_curand(name):                                   # as CuPy's lazy cupy.cuda module
        raise ImportError('Failure finding "libcurand.so.11 or libcurand.so.10"')
    fresh_detection.setattr(fake.cuda, "__getattr__", no_curand, raising=False)
    reason = backend.cupy_unavailable_reason()
    assert reason.startswith("CuPy without cuRAND: ImportError: Failure finding"), reason
    assert 'pip install "cupy-cuda12x[ctk]"' in reason and not backend.cupy_available()


@pytest.mark.parametrize("broken,step", [
    ("matmul", "a first matmul"), ("arange", "a first kernel"),
    ("random.RandomState", "a first cuRAND draw")])
def test_a_gpu_that_cannot_compute_is_reported_with_the_real_error(fresh_detection, broken,
                                                                    step):
    """A driver that counts its GPU but has no cuBLAS/NVRTC: skipped with CuPy's own words,
    not reported available (the stand-in, with one function broken, plays that machine)."""
    import sys

    import cupy_standin
    fake = cupy_standin.build()["cupy"]

    def fail(*args, **kwargs):
        raise RuntimeError("CUBLAS_STATUS_NOT_INITIALIZED")
    fresh_detection.setitem(sys.modules, "cupy", fake)
    owner, _, name = broken.rpartition(".")
    fresh_detection.setattr(getattr(fake, owner) if owner else fake, name, fail)
    reason = backend.cupy_unavailable_reason()
    assert reason is not None and not backend.cupy_available()
    assert step in reason and "RuntimeError: CUBLAS_STATUS_NOT_INITIALIZED" in reason, reason


def test_a_working_gpu_is_found(fresh_detection):
    import sys

    import cupy_standin
    fresh_detection.setitem(sys.modules, "cupy", cupy_standin.build()["cupy"])
    assert backend.cupy_unavailable_reason() is None and backend.cupy_available()


def test_gpu_extras_install_ready_wheels():
    """`pip install minswin[gpu]` must not ask for `cupy`, the source package that fails to
    build without the CUDA headers: the extras name the prebuilt wheels."""
    import os
    import re
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        import tomllib
    except ImportError:                                    # Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    assert any(d.startswith("cupy-cuda12x") for d in extras["gpu-cuda12"])
    assert any(d.startswith("cupy-cuda13x") for d in extras["gpu-cuda13"])
    assert extras["gpu"] == ["minswin[gpu-cuda12]"]
    assert not any(re.match(r"cupy\b(?!-)", d) for e in extras.values() for d in e)
    readme = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    assert ".[gpu-cuda12]" in readme and ".[gpu-cuda13]" in readme
