"""Exercise: the backward pass of patch merging (halve the map, double the width).

Symbols: B batch, H, W map size, C width, h = ceil(H/2), w = ceil(W/2).

The forward (minswin/ops/patch_merging.py), official order:

    x = pad x at the bottom/right to even H, W (only when odd)
    x0 = x[:, 0::2, 0::2]   x1 = x[:, 1::2, 0::2]            (B, h, w, C) each
    x2 = x[:, 0::2, 1::2]   x3 = x[:, 1::2, 1::2]
    m   = concat([x0, x1, x2, x3], axis=-1)                   (B, h, w, 4C)
    n   = LayerNorm_4C(m)                                     (B, h, w, 4C)
    out = n @ Wred.T                                          (B, h, w, 2C) no bias

Note x1 is the odd ROW, even column: inside each 2x2 cell the order is top-left,
bottom-left, top-right, bottom-right.

The cache (a MergeCache) holds
    cache.hw         (H, W) of the input before any padding
    cache.norm       LayerNormCache of the 4C LayerNorm (use layernorm_backward on it)
    cache.reduction  LinearCache of the 4C -> 2C product (use linear_backward on it)

Return (dx, dnorm_weight, dnorm_bias, dreduction_weight), shaped like
(x (B, H, W, C), (4C,), (4C,), (2C, 4C)).
"""
import numpy as np  # noqa: F401

from minswin.ops.layernorm import layernorm_backward  # noqa: F401  (dm, dgamma, dbeta)
from minswin.ops.linear import linear_backward  # noqa: F401  (dn, dW, None) without bias


def patch_merging_backward(dout, cache):
    H, W = cache.hw
    # YOUR CODE HERE:
    # 1. the reduction (linear, no bias) -> dn, dreduction_weight
    # 2. the LayerNorm                   -> dm (B, h, w, 4C), dnorm_weight, dnorm_bias
    # 3. the concat: send each C-block of dm back to its strided sub-grid of a zero map
    # 4. the padding: crop back to (H, W)
    raise NotImplementedError(
        "patch_merging_backward: from dout (B, h, w, 2C) compute dx (B, H, W, C), "
        f"dnorm_weight (4C,), dnorm_bias (4C,), dreduction_weight (2C, 4C); here (H, W) = "
        f"{(H, W)}")


# Check it:  minswin exercise check patch_merging_backward ex_patch_merging_backward.py
#       or:  python ex_patch_merging_backward.py
# Expected: each relative error <= 1e-7 against central differences (a right answer gives
# 1e-9 to 1e-12) and <= 1e-9 against minswin's backward; above 1e-4 means a bug.
if __name__ == "__main__":
    from minswin.exercises import check_file
    raise SystemExit(check_file("patch_merging_backward", __file__))
