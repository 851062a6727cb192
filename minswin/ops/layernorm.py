"""LayerNorm over the last axis, as torch.nn.LayerNorm (biased variance, eps inside the sqrt).

Symbols: `...` leading axes, C normalised width.

    mean = x.mean(-1);  var = ((x - mean)^2).mean(-1)
    xhat = (x - mean) / sqrt(var + eps);  out = xhat * gamma + beta
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array, check_shape
from ..parallel import block_rows, for_row_blocks

EPS = 1e-5   # nn.LayerNorm's default, used by every Swin implementation (SPEC 8)


class LayerNormCache(NamedTuple):
    xhat: object       # (..., C) normalised input: saves recomputing mean and var
    rstd: object       # (..., 1) 1 / sqrt(var + eps)
    gamma: object      # (C,)


def layernorm_forward(x, gamma, beta, eps=EPS):
    """out = (x - mean) / sqrt(var + eps) * gamma + beta, over the last axis.

    Args: x (..., C); gamma, beta (C,).
    Cache: xhat and rstd (x itself is not kept: xhat and rstd are all backward needs).
    Rows are independent, so the maths runs on blocks of rows on every core (minswin.parallel).
    """
    xp = get_xp(x, gamma, beta)
    check_array("x", x)
    C = x.shape[-1]
    check_shape("gamma", gamma, (C,), dtype=x.dtype)
    check_shape("beta", beta, (C,), dtype=x.dtype)
    x2 = xp.ascontiguousarray(x).reshape(-1, C)            # (R, C) one row per token
    xhat, out = xp.empty_like(x2), xp.empty_like(x2)       # (R, C)
    rstd = xp.empty((x2.shape[0], 1), x.dtype)             # (R, 1)

    def kernel(s, e):                                      # rows s:e
        xh, o = xhat[s:e], out[s:e]
        mean = x2[s:e].mean(axis=-1, keepdims=True)        # (r, 1)
        xp.subtract(x2[s:e], mean, out=xh)                 # centred, normalised below
        sq = xp.square(xh, out=o)                          # o holds (x - mean)^2 for now
        var = sq.mean(axis=-1, keepdims=True)              # (r, 1) biased
        r = rstd[s:e]
        xp.sqrt(var + eps, out=r)
        xp.reciprocal(r, out=r)                            # 1 / sqrt(var + eps)
        xh *= r                                            # xhat = (x - mean) * rstd
        xp.multiply(xh, gamma, out=o)
        o += beta                                          # out = xhat * gamma + beta
    for_row_blocks(kernel, x2.shape[0], block_rows(C), xp)
    lead = x.shape[:-1]
    return out.reshape(x.shape), LayerNormCache(xhat.reshape(x.shape),
                                                rstd.reshape(*lead, 1), gamma)


def layernorm_backward(dout, cache):
    """Returns (dx, dgamma, dbeta).

    forward: out = xhat * gamma + beta
      dgamma = sum(dout * xhat), dbeta = sum(dout)    over every leading axis
      dxhat  = dout * gamma
    forward: xhat = (x - mean) * rstd, mean and rstd both functions of x
      dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    (the second term is the path through the mean, the third the path through the variance)
    On blocks of rows: dx per row; dgamma and dbeta as per-block sums added in block order.
    """
    xp = get_xp(dout, cache.xhat)
    xhat, rstd, gamma = cache
    C = xhat.shape[-1]
    d2 = xp.ascontiguousarray(dout).reshape(-1, C)         # (R, C)
    xh2, r2 = xhat.reshape(-1, C), rstd.reshape(-1, 1)     # (R, C), (R, 1)
    dx = xp.empty_like(xh2)                                # (R, C)

    def kernel(s, e):                                      # rows s:e
        d, xh = d2[s:e], xh2[s:e]
        t = d * xh                                         # (r, C)
        sums = (t.sum(axis=0), d.sum(axis=0))              # this block's dgamma, dbeta
        dxhat = xp.multiply(d, gamma, out=dx[s:e])         # built into dx in place:
        t *= gamma                                         # now dxhat * xhat
        m1 = dxhat.mean(axis=-1, keepdims=True)            # (r, 1)
        m2 = t.mean(axis=-1, keepdims=True)                # (r, 1)
        dxhat -= m1
        dxhat -= xp.multiply(xh, m2, out=t)
        dxhat *= r2[s:e]                                   # rstd * (dxhat - m1 - xhat * m2)
        return sums
    sums = for_row_blocks(kernel, d2.shape[0], block_rows(C), xp)
    dgamma = sum(g for g, _ in sums)                       # (C,)
    dbeta = sum(b for _, b in sums)                        # (C,)
    return dx.reshape(xhat.shape), dgamma, dbeta
