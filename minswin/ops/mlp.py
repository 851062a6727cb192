"""The block's MLP: Linear(C -> 4C), exact GELU, Linear(4C -> C).

    out = fc2(gelu(fc1(x)))           x: (..., C), hidden (..., 4C)
"""
from typing import NamedTuple

from ..backend import get_xp
from ..parallel import elementwise
from .gelu import gelu_and_derivative
from .linear import linear_backward, linear_forward


class MlpCache(NamedTuple):
    fc1: object        # LinearCache: x and fc1's weight
    gelu_grad: object  # (..., 4C) GELU's derivative at h, Phi(h) + h phi(h)
    fc2: object        # LinearCache: g = gelu(h) and fc2's weight


def mlp_forward(x, fc1_weight, fc1_bias, fc2_weight, fc2_bias):
    """Returns (..., C). Cache: both linear caches and GELU's derivative.

    GELU's derivative is computed in the forward, where Phi(h) and exp(-h^2/2) are at hand
    (see gelu_and_derivative); the hidden h itself is not kept: nothing in backward needs it.
    """
    h, c1 = linear_forward(x, fc1_weight, fc1_bias)        # (..., 4C)
    g, gelu_grad = gelu_and_derivative(h)                  # (..., 4C) each
    out, c2 = linear_forward(g, fc2_weight, fc2_bias)      # (..., C)
    return out, MlpCache(c1, gelu_grad, c2)


def mlp_backward(dout, cache):
    """Returns (dx, dfc1_weight, dfc1_bias, dfc2_weight, dfc2_bias): the children, reversed."""
    xp = get_xp(dout, cache.gelu_grad)
    dg, dw2, db2 = linear_backward(dout, cache.fc2)        # (..., 4C)
    dh = elementwise(xp.multiply, dg, cache.gelu_grad, out=dg)   # forward: g = gelu(h)
    dx, dw1, db1 = linear_backward(dh, cache.fc1)
    return dx, dw1, db1, dw2, db2
