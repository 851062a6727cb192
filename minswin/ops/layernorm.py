"""LayerNorm over the last axis, as torch.nn.LayerNorm (biased variance, eps inside the sqrt).

Symbols: `...` leading axes, C normalised width.

    mean = x.mean(-1);  var = ((x - mean)^2).mean(-1)
    xhat = (x - mean) / sqrt(var + eps);  out = xhat * gamma + beta
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array, check_shape

EPS = 1e-5   # nn.LayerNorm's default, used by every Swin implementation (docs/semantics.md, 4)


class LayerNormCache(NamedTuple):
    xhat: object       # (..., C) normalised input: saves recomputing mean and var
    rstd: object       # (..., 1) 1 / sqrt(var + eps)
    gamma: object      # (C,)


def check_layernorm_inputs(x, gamma, beta):
    """The argument checks of `layernorm_forward`, shared with its fast twin."""
    get_xp(x, gamma, beta)
    check_array("x", x)
    C = x.shape[-1]
    check_shape("gamma", gamma, (C,), dtype=x.dtype)
    check_shape("beta", beta, (C,), dtype=x.dtype)


def layernorm_forward(x, gamma, beta, eps=EPS):
    """out = (x - mean) / sqrt(var + eps) * gamma + beta, over the last axis.

    Args: x (..., C); gamma, beta (C,).
    Cache: xhat and rstd (x itself is not kept: xhat and rstd are all backward needs).
    """
    xp = get_xp(x, gamma, beta)
    check_layernorm_inputs(x, gamma, beta)
    mean = x.mean(axis=-1, keepdims=True)                  # (..., 1)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)   # (..., 1) biased
    rstd = 1.0 / xp.sqrt(var + eps)                        # (..., 1)
    xhat = (x - mean) * rstd                               # (..., C)
    out = xhat * gamma + beta                              # (..., C)
    return out, LayerNormCache(xhat, rstd, gamma)


def layernorm_backward(dout, cache):
    """Returns (dx, dgamma, dbeta).

    x reaches xhat three ways: directly, through the mean and through the variance (both
    are functions of x too), so dx has three terms.
    """
    get_xp(dout, cache.xhat)
    xhat, rstd, gamma = cache
    lead = tuple(range(dout.ndim - 1))                     # every axis but the last
    # forward: out = xhat * gamma + beta
    dgamma = (dout * xhat).sum(axis=lead)                  # (C,)
    dbeta = dout.sum(axis=lead)                            # (C,)
    dxhat = dout * gamma                                   # (..., C)
    # forward: xhat = (x - mean) * rstd, mean and rstd both functions of x
    dx = rstd * (dxhat                                     # (..., C) the direct path,
                 - dxhat.mean(axis=-1, keepdims=True)      # the path through the mean
                 - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))   # and the variance
    return dx, dgamma, dbeta
