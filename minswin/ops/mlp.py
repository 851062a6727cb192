"""The block's MLP: Linear(C -> 4C), exact GELU, Linear(4C -> C).

    out = fc2(gelu(fc1(x)))           x: (..., C), hidden (..., 4C)
"""
from typing import NamedTuple

from .gelu import gelu_backward, gelu_forward
from .linear import linear_backward, linear_forward


class MlpCache(NamedTuple):
    fc1: object        # LinearCache: x and fc1's weight
    gelu: object       # GeluCache: the hidden h and Phi(h)
    fc2: object        # LinearCache with x=None: its input g = h * Phi(h) is rebuilt in
                       # backward from the GELU cache, one hidden-size array less per block


def mlp_forward(x, fc1_weight, fc1_bias, fc2_weight, fc2_bias):
    """Returns (..., C). Cache: the three child caches."""
    h, c1 = linear_forward(x, fc1_weight, fc1_bias)        # (..., 4C)
    g, cg = gelu_forward(h)                                # (..., 4C)
    out, c2 = linear_forward(g, fc2_weight, fc2_bias)      # (..., C)
    return out, MlpCache(c1, cg, c2._replace(x=None))


def mlp_backward(dout, cache):
    """Returns (dx, dfc1_weight, dfc1_bias, dfc2_weight, dfc2_bias): the children, reversed."""
    g = cache.gelu.x * cache.gelu.cdf                      # forward: g = h * Phi(h)
    dg, dw2, db2 = linear_backward(dout, cache.fc2._replace(x=g))
    dh = gelu_backward(dg, cache.gelu)
    dx, dw1, db1 = linear_backward(dh, cache.fc1)
    return dx, dw1, db1, dw2, db2
