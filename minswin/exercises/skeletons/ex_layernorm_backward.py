"""Exercise: the backward pass of LayerNorm.

The forward (minswin/ops/layernorm.py; try not to look until you are done), over the last axis:

    mean = x.mean(-1, keepdims=True)                          (..., 1)
    var  = ((x - mean) ** 2).mean(-1, keepdims=True)          (..., 1) biased, as PyTorch
    rstd = 1 / sqrt(var + eps)                                (..., 1) eps = 1e-5
    xhat = (x - mean) * rstd                                  (..., C)
    out  = xhat * gamma + beta                                (..., C)

Shapes: x, out and dout are (..., C) with any leading axes; gamma and beta are (C,).
The cache (a LayerNormCache) holds
    cache.xhat   (..., C)   the normalised input
    cache.rstd   (..., 1)   1 / sqrt(var + eps)
    cache.gamma  (C,)
x itself is not kept: xhat and rstd are all the backward needs.

Return (dx, dgamma, dbeta), shaped like (x, gamma, beta).
Hint of hints: mean and var are functions of x, so dx has three parts.
"""
import numpy as np  # noqa: F401  (you will want it)


def layernorm_backward(dout, cache):
    xhat, rstd, gamma = cache.xhat, cache.rstd, cache.gamma
    # YOUR CODE HERE
    # 1. dgamma, dbeta: sum over every axis but the last         -> (C,)
    # 2. dxhat = gradient reaching xhat                          -> (..., C)
    # 3. dx from dxhat, xhat and rstd (direct, mean and variance paths)
    raise NotImplementedError(
        "layernorm_backward: compute dx (..., C), dgamma (C,) and dbeta (C,) from dout "
        "(..., C) and cache.xhat (..., C), cache.rstd (..., 1), cache.gamma (C,)")


# Check it:  minswin exercise check layernorm_backward ex_layernorm_backward.py
#       or:  python ex_layernorm_backward.py
# Expected: each relative error <= 1e-7 against central differences (a right answer gives
# 1e-9 to 1e-12) and <= 1e-9 against minswin's backward; above 1e-4 means a bug.
if __name__ == "__main__":
    from minswin.exercises import check_file
    raise SystemExit(check_file("layernorm_backward", __file__))
