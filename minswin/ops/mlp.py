"""The block's MLP: Linear(C -> 4C), exact GELU, Linear(4C -> C).

    h = fc1(x);  g = gelu(h);  out = fc2(g)          x: (..., C), h and g (..., 4C)

GELU acts on each number alone, so its backward is a product with its derivative at h,
dh = dg * gelu'(h). The forward computes gelu'(h) while h and Phi(h) are at hand and keeps
that one array instead of the two (h and Phi(h)) that gelu_backward would need.
"""
from typing import NamedTuple

from .gelu import gelu_derivative, gelu_forward
from .linear import linear_backward, linear_forward


class MlpCache(NamedTuple):
    fc1: object        # LinearCache: x and fc1's weight
    gelu_grad: object  # (..., 4C) GELU's derivative at h, Phi(h) + h phi(h)
    fc2: object        # LinearCache: g = gelu(h) and fc2's weight


def mlp_forward(x, fc1_weight, fc1_bias, fc2_weight, fc2_bias):
    """Returns out (..., C). Cache: both linear caches and GELU's derivative at h."""
    h, fc1 = linear_forward(x, fc1_weight, fc1_bias)       # (..., 4C)
    g, gelu = gelu_forward(h)                              # (..., 4C)
    out, fc2 = linear_forward(g, fc2_weight, fc2_bias)     # (..., C)
    return out, MlpCache(fc1, gelu_derivative(gelu), fc2)


def mlp_backward(dout, cache):
    """Returns (dx, dfc1_weight, dfc1_bias, dfc2_weight, dfc2_bias): the three steps, reversed."""
    dg, dw2, db2 = linear_backward(dout, cache.fc2)        # forward: out = fc2(g)
    dh = dg * cache.gelu_grad                              # forward: g = gelu(h), elementwise
    dx, dw1, db1 = linear_backward(dh, cache.fc1)          # forward: h = fc1(x)
    return dx, dw1, db1, dw2, db2
