"""Fast twin of `minswin.ops.softmax`: the same softmax, in place, with BLAS row sums.

The row sums are a product with a column of ones (minswin.fast.rows), and `out=` lets the
fast attention write the probabilities over its own block of scores.
"""
from ..backend import get_xp
from ..checks import check_array
from ..ops.softmax import SoftmaxCache
from .rows import row_sums


def softmax_forward(s):
    """Fast twin of `ops.softmax.softmax_forward`: one new array, every step in place in it."""
    check_array("s", s)
    p = softmax_into(s, out=None)
    return p, SoftmaxCache(p)


def softmax_backward(dout, cache):
    """Fast twin of `ops.softmax.softmax_backward`: in place, BLAS row sums."""
    get_xp(dout, cache.out)
    return softmax_backward_into(dout, cache.out, out=None)


def softmax_into(s, out=None):
    """softmax(s) over the last axis written into `out` (may be s itself; new if None)."""
    xp = get_xp(s)
    out = xp.subtract(s, s.max(axis=-1, keepdims=True), out=out)   # (..., K) s - max
    xp.exp(out, out=out)                                   # e = exp(s - max)
    out /= row_sums(out)                                   # (..., K) / (..., 1)
    return out


def softmax_backward_into(dout, p, out=None):
    """ds = p * (dout - sum(dout * p)) written into `out` (may be dout itself)."""
    xp = get_xp(dout, p)
    ds = xp.multiply(dout, p, out=out)                     # (..., K) p * dout
    ds -= p * row_sums(ds)                                 # - p * sum(dout * p)
    return ds
