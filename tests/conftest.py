"""Shared fixtures: a seeded NumPy Generator and the list of backends to run on."""
import numpy as np
import pytest

from minswin.backend import cupy_available


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# `-m gpu` selects every test that runs on CuPy (on a machine with a GPU: the parity checks);
# without one they are skipped with this reason, never passed
NEEDS_GPU = [pytest.mark.gpu,
             pytest.mark.skipif(not cupy_available(),
                                reason="CuPy with a GPU is not available on this machine")]

BACKENDS = ["numpy", pytest.param("cupy", marks=NEEDS_GPU)]


@pytest.fixture(params=BACKENDS)
def xp(request):
    """The array module to run on: NumPy always, CuPy where a GPU is present (else skipped)."""
    if request.param == "numpy":
        return np
    import cupy
    return cupy
