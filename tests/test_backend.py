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
