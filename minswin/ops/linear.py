"""Linear (fully connected) layer in PyTorch's weight layout.

Symbols: `...` any leading axes (tokens), Cin input width, Cout output width.

    out = x @ w.T + b        w: (Cout, Cin), b: (Cout,) or None
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array, check_shape


class LinearCache(NamedTuple):
    x: object          # (..., Cin) the input, needed for dw
    w: object          # (Cout, Cin) the weight, needed for dx
    has_bias: bool


def check_linear_inputs(x, w, b):
    """The argument checks of `linear_forward`, shared with its fast twin."""
    get_xp(x, w, b)
    check_array("x", x)
    check_array("w", w, ndim=2, dtype=x.dtype)
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"x: expected last axis of size {w.shape[1]} (w is {tuple(w.shape)}),"
                         f" got shape {tuple(x.shape)}")
    if b is not None:
        check_shape("b", b, (w.shape[0],), dtype=x.dtype)


def linear_forward(x, w, b=None):
    """out = x @ w.T + b.

    Args: x (..., Cin); w (Cout, Cin) as in a PyTorch state dict; b (Cout,) or None.
    Returns out (..., Cout) and a cache holding x and w (nothing recomputed in backward).
    """
    check_linear_inputs(x, w, b)
    out = x @ w.T                                          # (..., Cout)
    if b is not None:
        out = out + b                                      # (Cout,) added to every token
    return out, LinearCache(x, w, b is not None)


def linear_backward(dout, cache):
    """Returns (dx, dw, db); db is None for a layer without bias.

    forward: out = x @ w.T + b
      dx = dout @ w                 (..., Cout) @ (Cout, Cin)
      dw = dout^T @ x               summed over every leading axis
      db = sum(dout)                over every leading axis
    """
    get_xp(dout, cache.x)
    x, w = cache.x, cache.w
    d2 = dout.reshape(-1, dout.shape[-1])                  # (T, Cout) one row per token
    x2 = x.reshape(-1, x.shape[-1])                        # (T, Cin)
    dx = dout @ w                                          # (..., Cin)
    dw = d2.T @ x2                                         # (Cout, Cin) summed over tokens
    db = d2.sum(axis=0) if cache.has_bias else None        # (Cout,)
    return dx, dw, db
