"""LayerNorm over the last axis, as torch.nn.LayerNorm (biased variance, eps inside the sqrt).

Symbols: `...` leading axes, C normalised width.

    mean = x.mean(-1);  var = ((x - mean)^2).mean(-1)
    xhat = (x - mean) / sqrt(var + eps);  out = xhat * gamma + beta
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array, check_shape

EPS = 1e-5   # nn.LayerNorm's default, used by every Swin implementation (SPEC 8)


class LayerNormCache(NamedTuple):
    xhat: object       # (..., C) normalised input: saves recomputing mean and var
    rstd: object       # (..., 1) 1 / sqrt(var + eps)
    gamma: object      # (C,)


def layernorm_forward(x, gamma, beta, eps=EPS):
    """out = (x - mean) / sqrt(var + eps) * gamma + beta, over the last axis.

    Args: x (..., C); gamma, beta (C,).
    Cache: xhat and rstd (x itself is not kept: xhat and rstd are all backward needs).
    """
    xp = get_xp(x, gamma, beta)
    check_array("x", x)
    C = x.shape[-1]
    check_shape("gamma", gamma, (C,), dtype=x.dtype)
    check_shape("beta", beta, (C,), dtype=x.dtype)
    mean = x.mean(axis=-1, keepdims=True)                  # (..., 1)
    xhat = x - mean                                        # (..., C) centred, normalised below
    sq = xp.square(xhat)                                   # (..., C)
    var = sq.mean(axis=-1, keepdims=True)                  # (..., 1) biased
    rstd = 1.0 / xp.sqrt(var + eps)                        # (..., 1)
    xhat *= rstd                                           # (..., C) xhat = (x - mean) * rstd
    out = xp.multiply(xhat, gamma, out=sq)                 # (..., C) reuses sq's memory
    out += beta
    return out, LayerNormCache(xhat, rstd, gamma)


def layernorm_backward(dout, cache):
    """Returns (dx, dgamma, dbeta).

    forward: out = xhat * gamma + beta
      dgamma = sum(dout * xhat), dbeta = sum(dout)    over every leading axis
      dxhat  = dout * gamma
    forward: xhat = (x - mean) * rstd, mean and rstd both functions of x
      dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    (the second term is the path through the mean, the third the path through the variance)
    """
    xp = get_xp(dout, cache.xhat)
    xhat, rstd, gamma = cache
    C = xhat.shape[-1]
    t = dout * xhat                                        # (..., C)
    dgamma = t.reshape(-1, C).sum(axis=0)                  # (C,)
    dbeta = dout.reshape(-1, C).sum(axis=0)                # (C,)
    dxhat = dout * gamma                                   # (..., C)
    t *= gamma                                             # (..., C) now dxhat * xhat
    m1 = dxhat.mean(axis=-1, keepdims=True)                # (..., 1)
    m2 = t.mean(axis=-1, keepdims=True)                    # (..., 1)
    dx = dxhat                                             # built in place:
    dx -= m1
    dx -= xp.multiply(xhat, m2, out=t)
    dx *= rstd                                             # rstd * (dxhat - m1 - xhat * m2)
    return dx, dgamma, dbeta
