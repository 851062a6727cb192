"""The CuPy stand-in itself: as strict as it claims, and true to CuPy's real API.

These run always (they build the stand-in's modules directly; no GPU, no switch needed).
The API check compares every name and keyword of the stand-in with an installed CuPy
(cupy-cuda12x imports without a GPU); where CuPy is not installed it is skipped with that
reason. CI does not install CuPy (a large download for one check): the check runs on any
machine that has it, the developers' included.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import cupy_standin

HERE = os.path.dirname(os.path.abspath(__file__))
cp = cupy_standin.build()["cupy"]
cupyx = cupy_standin.build()["cupyx"]


def real_cupy_problems(edit=""):
    """Run the API check in a fresh process, where `import cupy` is the real one (`edit`:
    code that changes the stand-in's tables first)."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1])\n"
            "try:\n    import cupy\nexcept Exception as e:\n"
            "    print(json.dumps({'skip': f'{type(e).__name__}: {e}'})); raise SystemExit\n"
            "import cupy_standin\n" + edit + "\n"
            "print(json.dumps({'version': cupy.__version__, "
            "'problems': cupy_standin.check_against(cupy)}))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code, HERE], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_name_and_keyword_exists_in_real_cupy():
    got = real_cupy_problems()
    if "skip" in got:
        pytest.skip(f"CuPy is not installed here, so the stand-in's API cannot be compared with "
                    f"it ({got['skip']}); pip install cupy-cuda12x (no GPU needed)")
    assert got["problems"] == [], got
    # and the check can fail: a name and a keyword real CuPy does not have are both reported
    bad = real_cupy_problems("cupy_standin._FUNCTIONS['nanmean_standin_only'] = ()\n"
                             "cupy_standin._METHODS['sum'] = ('axis', 'where')")
    assert bad["problems"] == ["cupy.nanmean_standin_only: missing",
                               "cupy.ndarray.sum: CuPy takes no keyword ['where']"], bad


def test_no_implicit_conversion_to_numpy():
    x = cp.asarray(np.arange(3.0))
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(x)
    with pytest.raises(TypeError, match="Unsupported type"):
        x + np.ones(3)
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.matmul(np.ones((3, 3)), x)
    with pytest.raises(TypeError, match="numpy.exp was called on a CuPy array"):
        np.exp(x)
    with pytest.raises(TypeError, match="numpy.concatenate was called on a CuPy array"):
        np.concatenate([x, x])


def test_only_cupys_names_and_keywords():
    x = cp.ones((2, 3))
    with pytest.raises(TypeError, match="unexpected keyword argument 'where'"):
        cp.sum(x, where=x > 0)                     # NumPy has it, CuPy does not
    with pytest.raises(TypeError, match="unexpected keyword argument 'initial'"):
        x.max(initial=0.0)
    with pytest.raises(AttributeError):
        cp.nanpercentile                           # not in the stand-in's list
    with pytest.raises(AttributeError):
        x.setflags(write=False)                    # CuPy arrays have no read-only flag


def test_results_stay_on_the_device_and_transfers_are_counted():
    with cupy_standin.count_transfers() as n:
        x = cp.asarray(np.arange(6.0).reshape(2, 3))       # h2d
        s = x.sum()
        assert isinstance(s, cp.ndarray) and s.shape == ()  # a 0-d array, as CuPy's
        assert isinstance(x[0, 1], cp.ndarray)
        total = float(s)                                    # d2h
        host = x.get()                                      # d2h
        cp.cuda.Device().synchronize()
    assert total == 15.0 and isinstance(host, np.ndarray)
    assert n == {"h2d": 1, "d2h": 2, "sync": 1}


def test_allow_synchronize_false_refuses_a_transfer():
    x = cp.ones(3)
    with cupyx.allow_synchronize(False):
        y = (x * 2).sum()                                   # no transfer: fine
        with pytest.raises(cupyx.DeviceSynchronized):
            float(y)
    assert float(y) == 6.0


def test_out_add_at_erf_and_scatter_add():
    x = cp.asarray(np.array([0.0, 0.5, 1.0]))
    out = cp.empty_like(x)
    assert cp.multiply(x, 2.0, out=out) is out
    from scipy.special import erf
    np.testing.assert_allclose(cp.asnumpy(cupyx.scipy.special.erf(x)), erf([0.0, 0.5, 1.0]))
    t = cp.zeros(3)
    cp.add.at(t, cp.asarray(np.array([0, 2, 2])), cp.asarray(np.array([1.0, 2.0, 3.0])))
    cupyx.scatter_add(t, cp.asarray(np.array([1, 1])), 1.0)
    assert t.tolist() == [1.0, 2.0, 5.0]
