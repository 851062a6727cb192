"""LayerNorm over the last axis, as torch.nn.LayerNorm (biased variance, eps inside the sqrt).

Symbols: `...` leading axes, C normalised width.

    mean = x.mean(-1);  var = ((x - mean)^2).mean(-1)
    xhat = (x - mean) / sqrt(var + eps);  out = xhat * gamma + beta
"""
from typing import NamedTuple

import numpy as np

from ..backend import get_xp
from ..checks import check_array, check_shape
from ..parallel import block_rows, for_row_blocks
from .rows import column_sums, repeat_rows, row_sums

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
    R = x2.shape[0]
    xhat, out = xp.empty_like(x2), xp.empty_like(x2)       # (R, C)
    rstd = xp.empty((R, 1), x.dtype)                       # (R, 1)
    block = block_rows(C) if xp is np else R               # rows per block (CuPy: one)
    ones = xp.ones((C, 1), x.dtype)
    g, b = repeat_rows(gamma, min(block, R)), repeat_rows(beta, min(block, R))

    def kernel(s, e):                                      # rows s:e
        xh, o, n = xhat[s:e], out[s:e], e - s
        mean = row_sums(x2[s:e], ones) / C                 # (n, 1)
        xp.subtract(x2[s:e], mean, out=xh)                 # centred, normalised below
        sq = xp.square(xh, out=o)                          # o holds (x - mean)^2 for now
        var = row_sums(sq, ones) / C                       # (n, 1) biased
        r = rstd[s:e]
        xp.sqrt(var + eps, out=r)
        xp.reciprocal(r, out=r)                            # 1 / sqrt(var + eps)
        xh *= r                                            # xhat = (x - mean) * rstd
        xp.multiply(xh, g[:n], out=o)
        o += b[:n]                                         # out = xhat * gamma + beta
    for_row_blocks(kernel, R, block, xp)
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
    R = d2.shape[0]
    dx = xp.empty_like(xh2)                                # (R, C)
    block = block_rows(C) if xp is np else R
    ones = xp.ones((C, 1), xh2.dtype)
    g = repeat_rows(gamma, min(block, R))

    def kernel(s, e):                                      # rows s:e
        d, xh, n = d2[s:e], xh2[s:e], e - s
        t = d * xh                                         # (n, C)
        sums = (column_sums(t), column_sums(d))            # this block's dgamma, dbeta
        dxhat = xp.multiply(d, g[:n], out=dx[s:e])         # built into dx in place:
        t *= g[:n]                                         # now dxhat * xhat
        m1 = row_sums(dxhat, ones) / C                     # (n, 1) mean(dxhat)
        m2 = row_sums(t, ones) / C                         # (n, 1) mean(dxhat * xhat)
        dxhat -= m1
        dxhat -= xp.multiply(xh, m2, out=t)
        dxhat *= r2[s:e]                                   # rstd * (dxhat - m1 - xhat * m2)
        return sums
    sums = for_row_blocks(kernel, R, block, xp)
    dgamma = sum(gs for gs, _ in sums)                     # (C,)
    dbeta = sum(bs for _, bs in sums)                      # (C,)
    return dx.reshape(xhat.shape), dgamma, dbeta
