"""Fast twin of `minswin.ops.patch_merging`: the same steps with the fast LayerNorm and linear
(the merge itself is data movement, shared with the plain tier)."""
from ..ops.patch_merging import MergeCache, pad_and_merge, split_2x2
from .layernorm import layernorm_backward, layernorm_forward
from .linear import linear_backward, linear_forward


def patch_merging_forward(x, norm_weight, norm_bias, reduction_weight):
    """Fast twin of `ops.patch_merging.patch_merging_forward`: fast LayerNorm(4C) and linear."""
    m = pad_and_merge(x, norm_weight, norm_bias, reduction_weight)   # (B, h, w, 4C)
    n, norm_cache = layernorm_forward(m, norm_weight, norm_bias)   # (B, h, w, 4C)
    out, red_cache = linear_forward(n, reduction_weight)   # (B, h, w, 2C)
    return out, MergeCache(x.shape[1:3], norm_cache, red_cache)


def patch_merging_backward(dout, cache):
    """Fast twin of `ops.patch_merging.patch_merging_backward`: fast LayerNorm and linear."""
    dn, dred, _ = linear_backward(dout, cache.reduction)
    dm, dgamma, dbeta = layernorm_backward(dn, cache.norm)
    H, W = cache.hw
    h, w = dm.shape[1:3]
    dx = split_2x2(dm, 2 * h, 2 * w)[:, :H, :W]            # (B, H, W, C)
    return dx, dgamma, dbeta, dred
