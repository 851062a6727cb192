"""Softmax over the last axis.

    p_i = exp(s_i - max s) / sum_j exp(s_j - max s)

Subtracting the row max changes nothing in exact arithmetic (it cancels between the top and
the bottom) but keeps exp finite: without it a float32 score of 100 gives exp(100) = inf and
the row becomes NaN.
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array


class SoftmaxCache(NamedTuple):
    out: object        # (..., K) the probabilities: backward needs nothing else


def softmax_forward(s):
    """p = softmax(s) over the last axis. s (..., K) -> p (..., K). Cache: p."""
    xp = get_xp(s)
    check_array("s", s)
    e = xp.exp(s - s.max(axis=-1, keepdims=True))         # (..., K) every entry <= 1
    p = e / e.sum(axis=-1, keepdims=True)                  # (..., K) rows sum to 1
    return p, SoftmaxCache(p)


def softmax_backward(dout, cache):
    """forward: p = softmax(s)  ->  ds = p * (dout - sum(dout * p))

    The Jacobian is diag(p) - p p^T; applying it to dout gives the line above.
    """
    get_xp(dout, cache.out)
    p = cache.out                                          # (..., K)
    return p * (dout - (dout * p).sum(axis=-1, keepdims=True))
