"""Fast twin of `minswin.ops.linear`: the same 2-D GEMM over all tokens, the bias added in
place on row blocks on every core, and db as one BLAS product (minswin.fast.parallel, .rows).
Each GEMM is handed to the BLAS in the operand layout timed fastest for its shape on this
machine (minswin.fast.tuning: `x @ w.T`, or `x @ w.T` copied to C order first, ...).
"""
from ..backend import get_xp
from ..ops.linear import LinearCache, check_linear_inputs
from .parallel import block_rows, for_row_blocks
from .rows import column_sums
from .tuning import product


def linear_forward(x, w, b=None):
    """Fast twin of `ops.linear.linear_forward`: the bias is added in place, shared among the
    threads, instead of in a new array on one core."""
    xp = get_xp(x, w, b)
    check_linear_inputs(x, w, b)
    x2 = x.reshape(-1, x.shape[-1])                        # (T, Cin)
    out = product("linear_forward", x2, w)                 # (T, Cout) = x2 @ w.T
    if b is not None:                                      # out += b, on row blocks
        for_row_blocks(lambda start, stop: xp.add(out[start:stop], b, out=out[start:stop]),
                       out.shape[0], block_rows(out.shape[1]), xp)
    out = out.reshape(*x.shape[:-1], w.shape[0])           # (..., Cout)
    return out, LinearCache(x, w, b is not None)


def linear_backward(dout, cache):
    """Fast twin of `ops.linear.linear_backward`: 2-D GEMMs in their timed layouts,
    db = ones(T) @ dout (BLAS)."""
    get_xp(dout, cache.x)                                  # one backend for both
    x, w = cache.x, cache.w
    d2 = dout.reshape(-1, dout.shape[-1])                  # (T, Cout)
    x2 = x.reshape(-1, x.shape[-1])                        # (T, Cin)
    dx = product("linear_dx", d2, w).reshape(x.shape)     # (..., Cin) = dout @ w
    dw = product("linear_dw", d2, x2)                      # (Cout, Cin) = dout.T @ x
    db = column_sums(d2) if cache.has_bias else None       # (Cout,)
    return dx, dw, db
