"""Every fast path against its plain, readable twin."""
import numpy as np
import pytest

from minswin.ops.gelu import gelu_backward, gelu_forward, normal_cdf, normal_cdf_fast
from minswin.ops.linear import linear_backward, linear_forward
from minswin.ops.mlp import mlp_backward, mlp_forward

EPS32 = float(np.finfo(np.float32).eps)


def test_fast_normal_cdf_is_float32_round_off_over_the_real_line():
    x = np.linspace(-14, 14, 4_000_001).astype(np.float32)  # many blocks, both tails
    fast = normal_cdf_fast(x).astype(np.float64)
    exact = normal_cdf(x.astype(np.float64))
    assert np.abs(fast - exact).max() < 3 * EPS32            # measured: 2.59
    # GELU = x Phi(x): within 3 float32 ulps of |x| everywhere. Measured: 2.59, at x ~ 0.04
    # where 1/2 - u cancels; PyTorch's own float32 CPU GELU: 2.30; scipy's float32 erf: 0.51
    err = np.abs(x * fast - x * exact) / np.maximum(np.abs(x), 1e-30)
    assert err.max() < 3 * EPS32
    assert normal_cdf_fast(np.zeros(3, np.float32)).tolist() == [0.5, 0.5, 0.5]


def test_fast_normal_cdf_keeps_shape_and_dtype(rng):
    x = rng.standard_normal((3, 5, 7)).astype(np.float32)
    y = normal_cdf_fast(x)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, normal_cdf(x.astype(np.float64)), atol=4 * EPS32)


def test_float32_gelu_forward_backward_match_float64(rng):
    x = (rng.standard_normal((64, 33)) * 3).astype(np.float32)
    d = rng.standard_normal((64, 33)).astype(np.float32)
    y32, c32 = gelu_forward(x)
    y64, c64 = gelu_forward(x.astype(np.float64))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=0, atol=8 * EPS32)
    np.testing.assert_allclose(gelu_backward(d, c32), gelu_backward(d.astype(np.float64), c64),
                               rtol=0, atol=32 * EPS32)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp_cached_gelu_derivative_equals_the_plain_chain(rng, dtype):
    """mlp caches GELU's derivative from the forward: same results as gelu_forward/backward."""
    r = lambda *s: rng.standard_normal(s).astype(dtype)
    x, w1, b1, w2, b2, d = r(50, 4), r(8, 4), r(8), r(4, 8), r(4), r(50, 4)
    out, cache = mlp_forward(x, w1, b1, w2, b2)
    h, c1 = linear_forward(x, w1, b1)
    g, cg = gelu_forward(h)
    ref, c2 = linear_forward(g, w2, b2)
    np.testing.assert_array_equal(out, ref)
    dg, dw2, db2 = linear_backward(d, c2)
    dx, dw1, db1 = linear_backward(gelu_backward(dg, cg), c1)
    tol = 1e-13 if dtype == np.float64 else 1e-5
    for a, b in zip(mlp_backward(d, cache), (dx, dw1, db1, dw2, db2)):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(7, 5), (2, 3, 4, 5)])
def test_linear_two_d_gemm_equals_broadcast_matmul(rng, shape):
    x, w, b = rng.standard_normal(shape), rng.standard_normal((6, shape[-1])), rng.standard_normal(6)
    out, _ = linear_forward(x, w, b)
    np.testing.assert_allclose(out, np.matmul(x, w.T) + b, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_on_non_contiguous_input(rng, dtype):
    x = rng.standard_normal((64, 33)).astype(dtype).T          # a transposed view
    d = rng.standard_normal((64, 33)).astype(dtype).T
    y, c = gelu_forward(x)
    y2, c2 = gelu_forward(np.ascontiguousarray(x))
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(gelu_backward(d, c), gelu_backward(np.ascontiguousarray(d), c2))


@pytest.mark.parametrize("shape", [(7,), (5, 49), (2, 3, 4, 96)])
def test_row_helpers_equal_their_one_line_definitions(rng, shape):
    """ops/rows.py: row_sums is x.sum(-1, keepdims=True) and column_sums x.sum(0), through BLAS;
    repeat_rows is a broadcast made concrete."""
    from minswin.ops.rows import column_sums, repeat_rows, row_sums
    x = rng.standard_normal(shape)
    x2 = x.reshape(-1, shape[-1])
    np.testing.assert_allclose(column_sums(x2), x2.sum(axis=0), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(row_sums(x), x.sum(axis=-1, keepdims=True), rtol=1e-13,
                               atol=1e-13)
    assert row_sums(x).shape == x.sum(axis=-1, keepdims=True).shape
    v = rng.standard_normal(shape[-1])
    r = repeat_rows(v, 3)
    assert r.flags.c_contiguous and r.flags.writeable
    np.testing.assert_array_equal(r, np.broadcast_to(v, (3, shape[-1])))
