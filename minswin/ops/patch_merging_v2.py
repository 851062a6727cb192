"""Patch merging, Swin V2: halve the resolution, double the width, normalise after.

Symbols: B batch, H, W map size, C width.

    m = concat[x0, x1, x2, x3]                        (B, H/2, W/2, 4C), v1's order
    out = LayerNorm_{2C}(m @ Wred.T)                  (B, H/2, W/2, 2C)

v1 normalises the 4C vector and then reduces it; V2 reduces first and normalises the 2C
result (official `PatchMerging` of swin_transformer_v2.py, torchvision's `PatchMergingV2`),
like the res-post-norm of its blocks. The gather and the odd-size padding are v1's.
"""
from typing import NamedTuple

from .layernorm import layernorm_backward, layernorm_forward
from .linear import linear_backward, linear_forward
from .patch_merging import pad_and_merge, split_2x2


class MergeV2Cache(NamedTuple):
    hw: tuple          # (H, W) of the input, before padding
    reduction: object  # LinearCache of the 4C -> 2C product (keeps the merged 4C vectors)
    norm: object       # LayerNormCache over the 2C vectors


def patch_merging_v2_forward(x, reduction_weight, norm_weight, norm_bias):
    """Args: x (B, H, W, C); reduction_weight (2C, 4C); norm_* (2C,).
    Returns (B, ceil(H/2), ceil(W/2), 2C). Cache: the linear and norm caches."""
    m = pad_and_merge(x, norm_weight, norm_bias, reduction_weight)   # (B, h, w, 4C) v1's
    r, red_cache = linear_forward(m, reduction_weight)     # (B, h, w, 2C)
    out, norm_cache = layernorm_forward(r, norm_weight, norm_bias)   # (B, h, w, 2C)
    return out, MergeV2Cache(x.shape[1:3], red_cache, norm_cache)


def patch_merging_v2_backward(dout, cache):
    """Returns (dx, dreduction_weight, dnorm_weight, dnorm_bias).

    forward: out = LayerNorm(r)       -> layernorm backward
    forward: r = m @ Wr.T             -> linear backward (no bias)
    forward: m = concat(x0..x3)       -> split_2x2 scatters each C-block to its sub-grid
    forward: odd pad                  -> crop
    """
    dr, dgamma, dbeta = layernorm_backward(dout, cache.norm)
    dm, dred, _ = linear_backward(dr, cache.reduction)
    H, W = cache.hw
    h, w = dm.shape[1:3]
    dx = split_2x2(dm, 2 * h, 2 * w)[:, :H, :W]            # (B, H, W, C)
    return dx, dred, dgamma, dbeta
