"""Fast twin of `minswin.ops.layernorm`: the same LayerNorm on cache-sized blocks of rows on
every core (minswin.fast.parallel), in place, with row and column sums done by BLAS.
"""
import numpy as np

from ..backend import get_xp
from ..ops.layernorm import EPS, LayerNormCache, check_layernorm_inputs
from .parallel import block_rows, for_row_blocks
from .rows import column_sums, repeat_rows, row_sums


def layernorm_forward(x, gamma, beta, eps=EPS):
    """Fast twin of `ops.layernorm.layernorm_forward`: rows are independent, so the maths runs
    on blocks of rows that stay in the cache, shared among the threads."""
    xp = get_xp(x, gamma, beta)
    check_layernorm_inputs(x, gamma, beta)
    C = x.shape[-1]
    x2 = xp.ascontiguousarray(x).reshape(-1, C)            # (R, C) one row per token
    R = x2.shape[0]
    xhat, out = xp.empty_like(x2), xp.empty_like(x2)       # (R, C)
    rstd = xp.empty((R, 1), x.dtype)                       # (R, 1)
    block = block_rows(C) if xp is np else R               # rows per block (CuPy: one)
    ones = xp.ones((C, 1), x.dtype)
    g, b = repeat_rows(gamma, min(block, R)), repeat_rows(beta, min(block, R))

    def kernel(start, stop):                               # rows start:stop
        xh, o, n = xhat[start:stop], out[start:stop], stop - start
        mean = row_sums(x2[start:stop], ones) / C          # (n, 1)
        xp.subtract(x2[start:stop], mean, out=xh)          # centred, normalised below
        sq = xp.square(xh, out=o)                          # o holds (x - mean)^2 for now
        var = row_sums(sq, ones) / C                       # (n, 1) biased
        r = rstd[start:stop]
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
    """Fast twin of `ops.layernorm.layernorm_backward`: dx per block of rows, built in place;
    dgamma and dbeta as per-block sums added in block order (the same for any thread count)."""
    xp = get_xp(dout, cache.xhat)
    xhat, rstd, gamma = cache
    C = xhat.shape[-1]
    dout2 = xp.ascontiguousarray(dout).reshape(-1, C)      # (R, C)
    xhat2, rstd2 = xhat.reshape(-1, C), rstd.reshape(-1, 1)   # (R, C), (R, 1)
    R = dout2.shape[0]
    dx = xp.empty_like(xhat2)                              # (R, C)
    block = block_rows(C) if xp is np else R
    ones = xp.ones((C, 1), xhat2.dtype)
    g = repeat_rows(gamma, min(block, R))

    def kernel(start, stop):                               # rows start:stop
        db, xh, n = dout2[start:stop], xhat2[start:stop], stop - start
        t = db * xh                                        # (n, C)
        sums = (column_sums(t), column_sums(db))           # this block's dgamma, dbeta
        dxhat = xp.multiply(db, g[:n], out=dx[start:stop])   # built into dx in place:
        t *= g[:n]                                         # now dxhat * xhat
        m1 = row_sums(dxhat, ones) / C                     # (n, 1) mean(dxhat)
        m2 = row_sums(t, ones) / C                         # (n, 1) mean(dxhat * xhat)
        dxhat -= m1
        dxhat -= xp.multiply(xh, m2, out=t)
        dxhat *= rstd2[start:stop]                         # rstd * (dxhat - m1 - xhat * m2)
        return sums
    sums = for_row_blocks(kernel, R, block, xp)
    dgamma = sum(gs for gs, _ in sums)                     # (C,)
    dbeta = sum(bs for _, bs in sums)                      # (C,)
    return dx.reshape(xhat.shape), dgamma, dbeta
