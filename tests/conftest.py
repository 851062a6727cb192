"""Shared fixtures: a seeded NumPy Generator and the list of backends to run on.

CuPy tests are marked `gpu`. They run where CuPy computes on a GPU, or everywhere on the strict
CPU stand-in (tests/cupy_standin.py) with `MINSWIN_CUPY_STANDIN=1 pytest -m gpu`; otherwise
they are skipped with the reason CuPy cannot be used here, never passed.
"""
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# the fast tier's GEMM layouts and block sizes take their defaults: nothing is timed, no tuning
# file is read or written, here or in the subprocesses the tests start (tests/test_tuning.py
# turns it on where it tests it)
os.environ["MINSWIN_TUNE"] = "0"
STANDIN = os.environ.get("MINSWIN_CUPY_STANDIN", "") not in ("", "0")

if STANDIN:
    # `import cupy` gives the stand-in, here and in every subprocess the tests start
    # (tutorials, the CLI), through tests/standin_path/cupy.py
    path = os.path.join(HERE, "standin_path")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [path] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    sys.path.insert(0, HERE)
    import cupy_standin
    cupy_standin.install()

from minswin.backend import cupy_unavailable_reason  # noqa: E402

_REASON = cupy_unavailable_reason()
CUPY_REASON = None if _REASON is None else (
    f"{_REASON} (MINSWIN_CUPY_STANDIN=1 runs these tests on the CPU stand-in)")

# `-m gpu` selects every test that runs on CuPy (a real GPU, or the stand-in)
NEEDS_GPU = [pytest.mark.gpu,
             pytest.mark.skipif(CUPY_REASON is not None, reason=str(CUPY_REASON))]

BACKENDS = ["numpy", pytest.param("cupy", marks=NEEDS_GPU)]


def pytest_report_header(config):
    if STANDIN:
        return "cupy: the strict CPU stand-in (tests/cupy_standin.py), not a GPU"
    return "cupy: " + ("a real GPU" if CUPY_REASON is None else f"skipped, {CUPY_REASON}")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=BACKENDS)
def xp(request):
    """The array module to run on: NumPy always, CuPy where it can run (else skipped)."""
    if request.param == "numpy":
        return np
    import cupy
    return cupy


@pytest.fixture
def bench_swin(monkeypatch):
    """benchmarks/bench_swin.py loaded as a module (it is a script, not part of the package),
    with its pause between rounds turned off."""
    import importlib.util
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        "bench_swin", os.path.join(root, "benchmarks", "bench_swin.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "PAUSE_S", 0.0)
    return mod


def check_op_case(make, xp, title):
    """Run one central-difference case (tests/test_ops_gradcheck.py, test_v2_ops.py): `make`
    maps a seeded Generator to (forward, backward, inputs, static); the inputs and static
    arrays go to backend xp, and every gradient must match within the per-op tolerance."""
    from minswin.backend import to_backend
    from minswin.gradcheck import TOL_OP, check_op
    forward, backward, inputs, static = make(np.random.default_rng(1))
    inputs = {k: to_backend(v, xp) for k, v in inputs.items()}
    static = {k: to_backend(v, xp) if isinstance(v, np.ndarray) else v
              for k, v in static.items()}
    report = check_op(forward, backward, inputs, static=static, title=title)
    print(report)
    assert report.passed, str(report)
    assert report.max_rel_error < TOL_OP

