"""Linear (fully connected) layer in PyTorch's weight layout.

Symbols: `...` any leading axes (tokens), Cin input width, Cout output width.

    out = x @ w.T + b        w: (Cout, Cin), b: (Cout,) or None
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array, check_shape
from ..parallel import block_rows, for_row_blocks
from .rows import column_sums


class LinearCache(NamedTuple):
    x: object          # (..., Cin) the input, needed for dw
    w: object          # (Cout, Cin) the weight, needed for dx
    has_bias: bool


def linear_forward(x, w, b=None):
    """out = x @ w.T + b.

    Args: x (..., Cin); w (Cout, Cin) as in a PyTorch state dict; b (Cout,) or None.
    Returns out (..., Cout) and a cache holding x and w (nothing recomputed in backward).
    """
    xp = get_xp(x, w, b)
    check_array("x", x)
    check_array("w", w, ndim=2, dtype=x.dtype)
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"x: expected last axis of size {w.shape[1]} (w is {tuple(w.shape)}),"
                         f" got shape {tuple(x.shape)}")
    if b is not None:
        check_shape("b", b, (w.shape[0],), dtype=x.dtype)
    # one 2-D GEMM over all tokens: matmul on a stack of small matrices is far slower
    x2 = x.reshape(-1, x.shape[-1])                        # (T, Cin)
    out = xp.matmul(x2, w.T)                               # (T, Cout)
    if b is not None:                                      # out += b, on row blocks
        for_row_blocks(lambda s, e: xp.add(out[s:e], b, out=out[s:e]), out.shape[0],
                       block_rows(out.shape[1]), xp)
    out = out.reshape(*x.shape[:-1], w.shape[0])           # (..., Cout)
    return out, LinearCache(x, w, b is not None)


def linear_backward(dout, cache):
    """Returns (dx, dw, db); db is None for a layer without bias.

    forward: out = x @ w.T + b
      dx = dout @ w                 (..., Cout) @ (Cout, Cin)
      dw = dout^T @ x               summed over every leading axis
      db = sum(dout)                over every leading axis
    """
    xp = get_xp(dout, cache.x)
    x, w = cache.x, cache.w
    d2 = dout.reshape(-1, dout.shape[-1])                  # (T, Cout)
    x2 = x.reshape(-1, x.shape[-1])                        # (T, Cin)
    dx = xp.matmul(d2, w).reshape(x.shape)                 # (..., Cin)
    dw = xp.matmul(d2.T, x2)                               # (Cout, Cin)
    db = column_sums(d2) if cache.has_bias else None      # (Cout,)
    return dx, dw, db
