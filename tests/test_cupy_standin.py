"""The CuPy stand-in itself: as strict as it claims, and true to CuPy's real API.

These run always (they build the stand-in's modules directly; no GPU, no switch needed).
The API check compares every name and keyword of the stand-in with an installed CuPy
(cupy-cuda12x imports without a GPU; its cuRAND names need nvidia-curand-cu12 beside it);
where CuPy is not installed it is skipped with that reason. CI installs the two wheels and
runs it with MINSWIN_REQUIRE_REAL_CUPY=1 (.ci/run), where a missing CuPy is a failure.
"""
import json
import os
import subprocess
import sys

import cupy_standin
import numpy as np
import pytest

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
    if "skip" in got and os.environ.get("MINSWIN_REQUIRE_REAL_CUPY"):
        pytest.fail(f"MINSWIN_REQUIRE_REAL_CUPY is set but CuPy does not import: {got['skip']}")
    if "skip" in got:
        pytest.skip(f"CuPy is not installed here, so the stand-in's API cannot be compared with "
                    f"it ({got['skip']}); pip install cupy-cuda12x (no GPU needed)")
    assert got["problems"] == [], got
    # and the check can fail: a name and a keyword real CuPy does not have are both reported
    bad = real_cupy_problems("cupy_standin._FUNCTIONS['nanmean_standin_only'] = ()\n"
                             "cupy_standin._METHODS['sum'] = ('axis', 'where')")
    assert bad["problems"] == ["cupy.nanmean_standin_only: missing",
                               "cupy.ndarray.sum: CuPy takes no keyword ['where']"], bad
    # ufunc methods CuPy lacks, a cuRAND value and a flag that differ are reported too
    bad = real_cupy_problems("cupy_standin._UFUNC_AT += ('multiply',)\n"
                             "cupy_standin._UFUNC_REDUCE += ('maximum',)\n"
                             "cupy_standin._Flags.__slots__ += ('writeable',)\n"
                             "cupy_standin._CURAND['CURAND_RNG_PSEUDO_PHILOX4_32_10'] = 7")
    assert bad["problems"] == [
        "cupy.multiply.at: not supported by CuPy", "cupy.maximum.reduce: not supported by CuPy",
        "cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10: CuPy has 161, the stand-in 7",
        "cupy.ndarray.flags: no ['writeable']"], bad


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


def test_assigning_a_host_array_into_a_device_array_is_refused_as_by_cupy():
    d = cp.zeros((2, 3))
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        d[...] = np.ones((2, 3))
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        d[0] = np.ones(3)
    with pytest.raises(TypeError, match="Unsupported type"):
        d[0] = [1.0, 2.0, 3.0]
    with cupy_standin.count_transfers() as n:
        d[...] = cp.asarray(np.ones((2, 3)))               # the explicit way: one copy
        d[0, 0] = np.float64(5.0)                          # scalars are fine
        d[1] = 2.0
    assert n["h2d"] == 1 and d.tolist() == [[5.0, 1.0, 1.0], [2.0, 2.0, 2.0]]


def test_a_host_index_array_is_a_counted_transfer():
    d = cp.asarray(np.arange(5.0))
    with cupy_standin.count_transfers() as n:
        a = d[np.array([0, 2])]                            # CuPy copies the index over
        b = d[[1, 3]]
        c = d[cp.asarray(np.array([4]))]                   # h2d of the index itself
        e = d[1:3]
    assert n["h2d"] == 3, n
    assert all(isinstance(v, cp.ndarray) for v in (a, b, c, e))
    with cupy_standin.count_transfers() as n:
        cp.add.at(d, np.array([0, 0]), 1.0)
    assert n["h2d"] == 1 and d[0].item() == 2.0


def test_ufunc_at_and_reduce_only_where_cupy_has_them():
    d, i = cp.zeros(3), cp.asarray(np.array([0, 0, 2]))
    for name in ("add", "subtract", "maximum", "minimum"):
        getattr(cp, name).at(d, i, 1.0)
    with pytest.raises(NotImplementedError, match="cupy_multiply.at"):
        cp.multiply.at(d, i, 2.0)
    x = cp.asarray(np.arange(1.0, 5.0))
    assert cp.add.reduce(x).item() == 10.0 and cp.multiply.reduce(x).item() == 24.0
    with pytest.raises(NotImplementedError, match="cupy_maximum.reduce"):
        cp.maximum.reduce(x)


def test_flags_are_cupys_three():
    x = cp.ones((2, 3))
    assert x.flags.c_contiguous and not x.T.flags.c_contiguous and x.T.flags.f_contiguous
    assert x.flags["C_CONTIGUOUS"] and x.flags.owndata in (True, False)
    with pytest.raises(AttributeError):
        x.flags.writeable                                  # NumPy's, not CuPy's
    with pytest.raises(KeyError):
        x.flags["WRITEABLE"]


def test_set_allocator_and_the_pool_malloc_as_bench_swin_uses_them():
    pool = cp.get_default_memory_pool()
    seen = []

    def malloc(nbytes):
        seen.append(nbytes)
        return pool.malloc(nbytes)
    cp.cuda.set_allocator(malloc)
    cp.cuda.set_allocator(None)
    assert pool.malloc(16).size == 16
