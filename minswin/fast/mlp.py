"""Fast twin of `minswin.ops.mlp`: the same three steps, each with its fast twin."""
from ..ops.mlp import MlpCache
from .gelu import gelu_backward, gelu_forward
from .linear import linear_backward, linear_forward


def mlp_forward(x, fc1_weight, fc1_bias, fc2_weight, fc2_bias):
    """Fast twin of `ops.mlp.mlp_forward`: fast linear and GELU."""
    h, fc1 = linear_forward(x, fc1_weight, fc1_bias)       # (..., 4C)
    g, gelu = gelu_forward(h)                              # (..., 4C)
    out, fc2 = linear_forward(g, fc2_weight, fc2_bias)     # (..., C)
    return out, MlpCache(fc1, gelu, fc2)


def mlp_backward(dout, cache):
    """Fast twin of `ops.mlp.mlp_backward`: fast linear and GELU."""
    dg, dw2, db2 = linear_backward(dout, cache.fc2)        # forward: out = fc2(g)
    dh = gelu_backward(dg, cache.gelu)                     # forward: g = gelu(h)
    dx, dw1, db1 = linear_backward(dh, cache.fc1)          # forward: h = fc1(x)
    return dx, dw1, db1, dw2, db2
