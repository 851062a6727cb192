"""Fast twin of `minswin.ops.mlp`: the same three steps, with the fast linear, GELU and its
derivative computed in one blocked pass, and dh = dg * gelu'(h) in place on every core."""
from ..backend import get_xp
from ..ops.mlp import MlpCache
from .gelu import gelu_and_derivative
from .linear import linear_backward, linear_forward
from .parallel import elementwise


def mlp_forward(x, fc1_weight, fc1_bias, fc2_weight, fc2_bias):
    """Fast twin of `ops.mlp.mlp_forward`: GELU and its derivative come out of one kernel
    (gelu_and_derivative) that reuses Phi(h) and the exp of the forward."""
    h, fc1 = linear_forward(x, fc1_weight, fc1_bias)       # (..., 4C)
    g, gelu_grad = gelu_and_derivative(h)                  # (..., 4C) each
    out, fc2 = linear_forward(g, fc2_weight, fc2_bias)     # (..., C)
    return out, MlpCache(fc1, gelu_grad, fc2)


def mlp_backward(dout, cache):
    """Fast twin of `ops.mlp.mlp_backward`: dh = dg * gelu'(h) written over dg, on row blocks
    on every core."""
    xp = get_xp(dout, cache.gelu_grad)
    dg, dw2, db2 = linear_backward(dout, cache.fc2)        # forward: out = fc2(g)
    dh = elementwise(xp.multiply, dg, cache.gelu_grad, out=dg)   # forward: g = gelu(h)
    dx, dw1, db1 = linear_backward(dh, cache.fc1)          # forward: h = fc1(x)
    return dx, dw1, db1, dw2, db2
