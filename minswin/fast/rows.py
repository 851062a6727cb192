"""Helpers for ops that work row by row: NumPy-friendly forms of row sums and column sums, and
a row repeated to a block's shape.

Each computes exactly what its one-line docstring says; they exist because NumPy's loops are
slow on short rows (Swin's rows are 49 to 768 long), and the fast paths run them millions of
times.
"""
import numpy as np

from ..backend import get_xp


def row_sums(x, ones=None):
    """x (..., K) summed over its last axis, as (..., 1): a matrix product with a column of ones.

    The same sum as x.sum(-1, keepdims=True), done by BLAS: NumPy's reduction loops are slow on
    rows as short as Swin's (K = 49 scores, C = 96 .. 768 channels), 4-6x slower than this on
    64K elements. `ones` (K, 1) may be passed in to reuse it across blocks.
    """
    xp = get_xp(x)
    if ones is None:
        ones = xp.ones((x.shape[-1], 1), x.dtype)
    return xp.matmul(x, ones)                              # (..., K) @ (K, 1)


def column_sums(x):
    """x (R, C) summed over its rows, as (C,): ones(R) @ x, one BLAS call on every core.

    The same sum as x.sum(axis=0): bias and LayerNorm gradients add over all tokens this way.
    """
    xp = get_xp(x)
    return xp.matmul(xp.ones(x.shape[0], x.dtype), x)      # (R,) @ (R, C)


def repeat_rows(v, rows):
    """v (C,) repeated as (rows, C): then `block * v` is a plain same-shape product, which NumPy
    runs about 2x faster than broadcasting a (C,) row over each short row. On CuPy, where the
    ops run as one block of every row, it is a broadcast view: a copy would cost a whole
    activation's memory for nothing."""
    xp = get_xp(v)
    repeated = xp.broadcast_to(v, (rows, v.shape[0]))     # (rows, C), a view
    return repeated.copy() if xp is np else repeated
