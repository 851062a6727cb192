"""Exercise: the backward pass of Swin V2's continuous position bias.

Symbols: M window side, N = M*M tokens, nH heads, T = (2M-1)**2 offsets, D hidden units.

The forward (minswin/ops/continuous_bias.py):

    t = coords.reshape(T, 2)                                  log-spaced offsets
    hidden = t @ W1.T + b1                                    (T, D)  cpb_mlp.0
    r = relu(hidden)                                          (T, D)
    table = r @ W2.T                                          (T, nH) cpb_mlp.2, no bias
    g[h, i, j] = table[index[i, j], h]                        (nH, N, N) v1's gather
    bias = 16 * sigmoid(g)                                    (nH, N, N)

The cache (a ContinuousBiasCache) holds
    cache.fc1, cache.fc2   LinearCaches: use minswin.ops.linear.linear_backward
    cache.active           (T, D) bool: hidden > 0
    cache.gather           .index (N, N) int, .rows T
    cache.sig              (nH, N, N) sigmoid(g)
    cache.coords_shape     (2M-1, 2M-1, 2)

Return (dcoords, dfc1_weight, dfc1_bias, dfc2_weight), shaped like the inputs.
"""
import numpy as np  # noqa: F401

from minswin.ops.linear import linear_backward  # noqa: F401


def continuous_bias_backward(dbias, cache):
    nH, N, _ = dbias.shape
    T = cache.gather.rows
    # YOUR CODE HERE
    # 1. through 16 * sigmoid
    # 2. the gather: a scatter-add into dtable (T, nH) (rows repeat!)
    # 3. the second Linear, the ReLU, the first Linear
    raise NotImplementedError(
        f"continuous_bias_backward: compute dcoords {cache.coords_shape}, dfc1_weight, "
        f"dfc1_bias and dfc2_weight from dbias (nH={nH}, N={N}, N) through a ({T}, {nH}) table")


# Check it:  minswin exercise check continuous_bias_backward ex_continuous_bias_backward.py
#       or:  python ex_continuous_bias_backward.py
# Expected: each relative error <= 1e-7 against central differences (a right answer gives
# 1e-9 to 1e-12) and <= 1e-9 against minswin's backward; above 1e-4 means a bug.
if __name__ == "__main__":
    from minswin.exercises import check_file
    raise SystemExit(check_file("continuous_bias_backward", __file__))
