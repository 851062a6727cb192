"""Fast twin of `minswin.ops.linear`: one 2-D GEMM over all tokens, the bias added on row
blocks on every core, and db as one BLAS product (minswin.fast.parallel, .rows).
"""
from ..backend import get_xp
from ..ops.linear import LinearCache, check_linear_inputs
from .parallel import block_rows, for_row_blocks
from .rows import column_sums


def linear_forward(x, w, b=None):
    """Fast twin of `ops.linear.linear_forward`: matmul on a stack of small matrices is far
    slower than one GEMM on (T, Cin); the bias add is shared among the threads."""
    xp = get_xp(x, w, b)
    check_linear_inputs(x, w, b)
    x2 = x.reshape(-1, x.shape[-1])                        # (T, Cin)
    out = xp.matmul(x2, w.T)                               # (T, Cout)
    if b is not None:                                      # out += b, on row blocks
        for_row_blocks(lambda start, stop: xp.add(out[start:stop], b, out=out[start:stop]),
                       out.shape[0], block_rows(out.shape[1]), xp)
    out = out.reshape(*x.shape[:-1], w.shape[0])           # (..., Cout)
    return out, LinearCache(x, w, b is not None)


def linear_backward(dout, cache):
    """Fast twin of `ops.linear.linear_backward`: 2-D GEMMs, db = ones(T) @ dout (BLAS)."""
    xp = get_xp(dout, cache.x)
    x, w = cache.x, cache.w
    d2 = dout.reshape(-1, dout.shape[-1])                  # (T, Cout)
    x2 = x.reshape(-1, x.shape[-1])                        # (T, Cin)
    dx = xp.matmul(d2, w).reshape(x.shape)                 # (..., Cin)
    dw = xp.matmul(d2.T, x2)                               # (Cout, Cin)
    db = column_sums(d2) if cache.has_bias else None       # (Cout,)
    return dx, dw, db
