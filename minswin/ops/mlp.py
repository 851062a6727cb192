"""The block's MLP: Linear(C -> 4C), exact GELU, Linear(4C -> C).

    h = fc1(x);  g = gelu(h);  out = fc2(g)          x: (..., C), h and g (..., 4C)
"""
from typing import NamedTuple

from .gelu import gelu_backward, gelu_forward
from .linear import linear_backward, linear_forward


class MlpCache(NamedTuple):
    fc1: object        # LinearCache: x and fc1's weight
    gelu: object       # GeluCache: h and Phi(h)
    fc2: object        # LinearCache: g = gelu(h) and fc2's weight


def mlp_forward(x, fc1_weight, fc1_bias, fc2_weight, fc2_bias):
    """Returns out (..., C). Cache: the caches of its three steps."""
    h, fc1 = linear_forward(x, fc1_weight, fc1_bias)       # (..., 4C)
    g, gelu = gelu_forward(h)                              # (..., 4C)
    out, fc2 = linear_forward(g, fc2_weight, fc2_bias)     # (..., C)
    return out, MlpCache(fc1, gelu, fc2)


def mlp_backward(dout, cache):
    """Returns (dx, dfc1_weight, dfc1_bias, dfc2_weight, dfc2_bias): the three steps, reversed."""
    dg, dw2, db2 = linear_backward(dout, cache.fc2)        # forward: out = fc2(g)
    dh = gelu_backward(dg, cache.gelu)                     # forward: g = gelu(h)
    dx, dw1, db1 = linear_backward(dh, cache.fc1)          # forward: h = fc1(x)
    return dx, dw1, db1, dw2, db2
