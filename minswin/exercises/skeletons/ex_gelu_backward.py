"""Exercise: the backward pass of GELU, the exact (erf) version Swin's MLP uses.

The forward (minswin/ops/gelu.py):

    Phi(x) = (1 + erf(x / sqrt(2))) / 2                       the standard normal CDF
    out    = x * Phi(x)                                       (...) elementwise

The standard normal density is phi(x) = exp(-x**2 / 2) / sqrt(2 pi).

Shapes: x, out and dout all have the same shape (...).
The cache (a GeluCache) holds
    cache.x      (...)   the input
    cache.cdf    (...)   Phi(x), saved because erf is the expensive part

Return dx, shaped like x.
"""
import numpy as np  # noqa: F401


def gelu_backward(dout, cache):
    x, cdf = cache.x, cache.cdf
    # YOUR CODE HERE: d out / dx by the product rule, then multiply by dout
    raise NotImplementedError(
        "gelu_backward: compute dx (same shape as x) from dout and cache.x, cache.cdf = Phi(x)")


# Check it:  minswin exercise check gelu_backward ex_gelu_backward.py
#       or:  python ex_gelu_backward.py
# Expected: each relative error <= 1e-7 against central differences (a right answer gives
# 1e-9 to 1e-12) and <= 1e-9 against minswin's backward; above 1e-4 means a bug.
if __name__ == "__main__":
    from minswin.exercises import check_file
    raise SystemExit(check_file("gelu_backward", __file__))
