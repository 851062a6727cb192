"""Shared fixtures: a seeded NumPy Generator and the list of backends to run on."""
import numpy as np
import pytest

from minswin.backend import cupy_available


@pytest.fixture
def rng():
    return np.random.default_rng(0)


BACKENDS = [
    "numpy",
    pytest.param("cupy", marks=pytest.mark.skipif(
        not cupy_available(), reason="CuPy with a GPU is not available on this machine")),
]


@pytest.fixture(params=BACKENDS)
def xp(request):
    """The array module to run on: NumPy always, CuPy where a GPU is present (else skipped)."""
    if request.param == "numpy":
        return np
    import cupy
    return cupy
