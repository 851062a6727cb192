"""Exercise: the backward pass of the relative position bias gather (a scatter-add).

Symbols: M window side, N = M*M tokens, nH heads, T = (2M-1)**2 table rows.

The forward (minswin/ops/relative_bias.py):

    bias[h, i, j] = table[index[i, j], h]                     table (T, nH) -> bias (nH, N, N)

index (N, N) is the constant relative position index (minswin.relative_position_index(M));
for M=2 it is [[4,3,1,0],[5,4,2,1],[7,6,4,3],[8,7,5,4]]. Many pairs (i, j) share one offset,
so many entries of bias read the same table row.

Shapes: dbias (nH, N, N), already summed over windows; return dtable (T, nH).
The cache (a RelBiasCache) holds
    cache.index  (N, N) int   the index
    cache.rows   int          T, the number of table rows
"""
import numpy as np  # noqa: F401


def relative_bias_backward(dbias, cache):
    index, T = cache.index, cache.rows
    nH, N, _ = dbias.shape
    # YOUR CODE HERE: every pair (i, j) adds dbias[:, i, j] to row index[i, j] of dtable
    raise NotImplementedError(
        f"relative_bias_backward: compute dtable ({T}, {nH}) = (T, nH) from dbias "
        f"{tuple(dbias.shape)} = (nH, N, N) and cache.index (N, N); repeated rows must add up")


# Check it:  minswin exercise check relative_bias_backward ex_relative_bias_backward.py
#       or:  python ex_relative_bias_backward.py
# Expected: each relative error <= 1e-7 against central differences (a right answer gives
# about 1e-10 or better) and <= 1e-9 against minswin's backward; above 1e-4 means a bug.
if __name__ == "__main__":
    from minswin.exercises import check_file
    raise SystemExit(check_file("relative_bias_backward", __file__))
