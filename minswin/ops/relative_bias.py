"""Relative position bias: a learned table, read through the constant index.

Symbols: M window side, N = M*M, nH heads, T = (2M-1)^2 table rows.

    bias[h, i, j] = table[index[i, j], h]       table: (T, nH), index: (N, N) in 0..T-1

Row k of the table is read once for every pair of tokens with that offset, (M-|dr|)(M-|dc|)
times, so its gradient is a sum over those pairs: a scatter-add, not an assignment.
"""
from typing import NamedTuple

from ..backend import get_xp, index_add
from ..checks import check_array


class RelBiasCache(NamedTuple):
    index: object      # (N, N) int, the constant index
    rows: int          # T, the table's number of rows


def relative_bias_forward(table, index):
    """Gather the (nH, N, N) bias from a (T, nH) table. Cache: the index and T."""
    xp = get_xp(table, index)
    check_array("table", table, ndim=2)
    if index.ndim != 2 or index.shape[0] != index.shape[1]:
        raise ValueError(f"index: expected a square (N, N) array, got {tuple(index.shape)}")
    N = index.shape[0]
    bias = table[index.reshape(-1)]                        # (N*N, nH)
    bias = bias.reshape(N, N, -1).transpose(2, 0, 1)       # (nH, N, N)
    return xp.ascontiguousarray(bias), RelBiasCache(index, table.shape[0])


def relative_bias_backward(dbias, cache):
    """forward: bias[h, i, j] = table[index[i, j], h]  ->  dtable[index[i, j], h] += dbias[h, i, j]

    dbias must already be summed over windows and batch, (nH, N, N).
    """
    xp = get_xp(dbias, cache.index)
    nH, N, _ = dbias.shape
    dtable = xp.zeros((cache.rows, nH), dtype=dbias.dtype)   # (T, nH)
    d = dbias.transpose(1, 2, 0).reshape(N * N, nH)        # (N*N, nH)
    index_add(dtable, cache.index.reshape(-1), d)          # repeated rows accumulate
    return dtable
