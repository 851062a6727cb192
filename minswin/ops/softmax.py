"""Softmax over the last axis.

    out_i = exp(s_i - max s) / sum_j exp(s_j - max s)
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array
from .rows import row_sums


class SoftmaxCache(NamedTuple):
    out: object        # (..., K) the probabilities: backward needs nothing else


def softmax_forward(s, out=None):
    """Numerically stable softmax over the last axis; subtracting the row max changes nothing.

    out: where to write the probabilities (may be s itself); a new array by default.
    """
    xp = get_xp(s)
    check_array("s", s)
    out = xp.subtract(s, s.max(axis=-1, keepdims=True), out=out)   # (..., K)
    xp.exp(out, out=out)                                   # in place: e = exp(s - max)
    out /= row_sums(out)                                   # (..., K) / (..., 1)
    return out, SoftmaxCache(out)


def softmax_backward(dout, cache, out=None):
    """forward: p = softmax(s)  ->  ds = p * (dout - sum(dout * p))

    The Jacobian is diag(p) - p p^T; applying it to dout gives the line above.
    out: where to write ds (may be dout itself); a new array by default.
    """
    xp = get_xp(dout, cache.out)
    p = cache.out
    ds = xp.multiply(dout, p, out=out)                     # (..., K)
    row = row_sums(ds)                                     # (..., 1) sum(dout * p)
    ds -= p * row                                          # p * dout - p * sum(dout * p)
    return ds
