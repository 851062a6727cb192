"""Patch merging: halve the resolution, double the width.

Symbols: B batch, H, W map size, C width.

    x0 = x[0::2, 0::2], x1 = x[1::2, 0::2], x2 = x[0::2, 1::2], x3 = x[1::2, 1::2]
    out = Linear_{4C->2C, no bias}(LayerNorm_{4C}(concat[x0, x1, x2, x3]))

The order is the official one: x1 is the ODD row, even column, so inside each 2x2 cell the
four pixels go top-left, bottom-left, top-right, bottom-right (column-major). Odd maps are
zero-padded at the bottom/right first (as timm, torchvision and det do).
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array, check_shape
from .layernorm import layernorm_backward, layernorm_forward
from .linear import linear_backward, linear_forward


class MergeCache(NamedTuple):
    hw: tuple          # (H, W) of the input, before padding
    norm: object       # LayerNormCache over the 4C vectors
    reduction: object  # LinearCache of the 4C -> 2C product


def merge_2x2(x):
    """(B, H, W, C) with H, W even -> (B, H/2, W/2, 4C) in the x0, x1, x2, x3 order."""
    xp = get_xp(x)
    x0 = x[:, 0::2, 0::2]                                  # (B, H/2, W/2, C) top-left
    x1 = x[:, 1::2, 0::2]                                  # (B, H/2, W/2, C) bottom-left
    x2 = x[:, 0::2, 1::2]                                  # (B, H/2, W/2, C) top-right
    x3 = x[:, 1::2, 1::2]                                  # (B, H/2, W/2, C) bottom-right
    return xp.concatenate([x0, x1, x2, x3], axis=-1)       # (B, H/2, W/2, 4C)


def split_2x2(g, H, W):
    """The transpose of `merge_2x2`: scatter (B, H/2, W/2, 4C) back onto (B, H, W, C)."""
    xp = get_xp(g)
    B, h, w, C4 = g.shape
    C = C4 // 4
    x = xp.zeros((B, H, W, C), dtype=g.dtype)
    x[:, 0::2, 0::2] = g[..., 0 * C:1 * C]
    x[:, 1::2, 0::2] = g[..., 1 * C:2 * C]
    x[:, 0::2, 1::2] = g[..., 2 * C:3 * C]
    x[:, 1::2, 1::2] = g[..., 3 * C:4 * C]
    return x                                               # (B, H, W, C)


def pad_and_merge(x, norm_weight, norm_bias, reduction_weight):
    """Check the arguments, pad an odd map by one row/column, merge: (B, H, W, C) ->
    (B, ceil(H/2), ceil(W/2), 4C). The first step of the forward (and of its fast twin)."""
    xp = get_xp(x, norm_weight, norm_bias, reduction_weight)
    check_array("x", x, ndim=4)
    B, H, W, C = x.shape
    check_shape("reduction_weight", reduction_weight, (2 * C, 4 * C), dtype=x.dtype)
    if H % 2 or W % 2:
        x = xp.pad(x, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)))   # (B, H+1?, W+1?, C)
    return merge_2x2(x)                                    # (B, h, w, 4C)


def patch_merging_forward(x, norm_weight, norm_bias, reduction_weight):
    """Args: x (B, H, W, C); norm_* (4C,); reduction_weight (2C, 4C). Returns (B, h, w, 2C)
    with h = ceil(H/2), w = ceil(W/2). Cache: the norm and linear caches."""
    m = pad_and_merge(x, norm_weight, norm_bias, reduction_weight)   # (B, h, w, 4C)
    n, norm_cache = layernorm_forward(m, norm_weight, norm_bias)   # (B, h, w, 4C)
    out, red_cache = linear_forward(n, reduction_weight)   # (B, h, w, 2C)
    return out, MergeCache(x.shape[1:3], norm_cache, red_cache)


def patch_merging_backward(dout, cache):
    """Returns (dx, dnorm_weight, dnorm_bias, dreduction_weight).

    forward: out = n @ Wr.T           -> linear backward (no bias)
    forward: n = LayerNorm(m)         -> layernorm backward
    forward: m = concat(x0..x3)       -> split_2x2 scatters each C-block to its sub-grid
    forward: odd pad                  -> crop
    """
    dn, dred, _ = linear_backward(dout, cache.reduction)
    dm, dgamma, dbeta = layernorm_backward(dn, cache.norm)
    H, W = cache.hw
    h, w = dm.shape[1:3]
    dx = split_2x2(dm, 2 * h, 2 * w)[:, :H, :W]            # (B, H, W, C)
    return dx, dgamma, dbeta, dred
