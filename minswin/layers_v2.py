"""Swin V2's modules with parameters: cosine window attention with its continuous position
bias network, and patch merging that normalises after the reduction.

Names are the official swin_transformer_v2.py's (`attn.logit_scale`, `attn.q_bias`,
`attn.v_bias`, `attn.cpb_mlp.0.weight`, ...). There is no `k_bias` parameter: k's bias is
the constant 0 (ops/qv_bias.py). Initialisation follows the official `_init_weights`
(trunc-normal Linear weights including the cpb_mlp's, zero biases) and WindowAttention
(logit_scale = log 10, q_bias = v_bias = 0).
"""
import math

import numpy as np

from .backend import get_xp, to_backend
from .layers import WindowAttention, trunc_normal
from .module import Module
from .ops.continuous_bias import (
    continuous_bias_backward,
    continuous_bias_forward,
    log_spaced_coordinates,
)
from .ops.masks import cached_relative_position_index
from .ops.patch_merging_v2 import patch_merging_v2_backward, patch_merging_v2_forward
from .tiers import tier

CPB_HIDDEN = 512      # official: nn.Linear(2, 512, bias=True) in cpb_mlp


class WindowAttentionV2(Module):
    """`attn`: scaled cosine attention in windows, bias from the `cpb_mlp` network."""

    def __init__(self, dim, window_size, num_heads, pretrained_window_size, rng,
                 dtype=np.float32):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads: expected a divisor of the width dim={dim}, "
                             f"got {num_heads}")
        self.dim, self.window_size, self.num_heads = dim, window_size, num_heads
        self.pretrained_window_size = pretrained_window_size
        self.param("logit_scale", np.full((num_heads, 1, 1), math.log(10.0), dtype))
        self.param("q_bias", np.zeros(dim, dtype))
        self.param("v_bias", np.zeros(dim, dtype))
        self.param("cpb_mlp.0.weight", trunc_normal(rng, (CPB_HIDDEN, 2), dtype=dtype))
        self.param("cpb_mlp.0.bias", np.zeros(CPB_HIDDEN, dtype))
        self.param("cpb_mlp.2.weight", trunc_normal(rng, (num_heads, CPB_HIDDEN), dtype=dtype))
        self.param("qkv.weight", trunc_normal(rng, (3 * dim, dim), dtype=dtype))
        self.param("proj.weight", trunc_normal(rng, (dim, dim), dtype=dtype))
        self.param("proj.bias", np.zeros(dim, dtype))
        # the network's input, a constant: float64 on the host, moved once per backend/dtype
        self.coords = log_spaced_coordinates(window_size, pretrained_window_size)
        self._coords_on = {}

    def relative_coords_table(self, xp, dtype):
        """The (2M-1, 2M-1, 2) log-spaced coordinates on backend xp (the official buffer of
        that name is (1, 2M-1, 2M-1, 2))."""
        key = (xp.__name__, np.dtype(dtype).str)
        if key not in self._coords_on:
            self._coords_on[key] = to_backend(self.coords.astype(dtype), xp)
        return self._coords_on[key]

    def continuous_position_bias(self):
        """The (nH, N, N) bias 16 * sigmoid(cpb_mlp(coords))[index], and the op's cache."""
        p = self.params
        w = p["cpb_mlp.0.weight"]
        xp = get_xp(w)
        coords = self.relative_coords_table(xp, w.dtype)
        index = cached_relative_position_index(self.window_size, xp)
        return continuous_bias_forward(coords, w, p["cpb_mlp.0.bias"], p["cpb_mlp.2.weight"],
                                       index)

    def forward(self, tokens, mask=None):
        """tokens (B*nW, N, C), mask (nW, N, N) or None -> (B*nW, N, C).

        The attention runs on the tier minswin.use_fast chooses; the position network, small
        ((2M-1)^2 rows), always on the plain one."""
        p = self.params
        bias, bias_cache = self.continuous_position_bias()     # (nH, N, N)
        out, attn_cache = tier(tokens).cosine_attention_forward(
            tokens, p["qkv.weight"], p["q_bias"], p["v_bias"], p["logit_scale"],
            p["proj.weight"], p["proj.bias"], bias, mask, self.num_heads)
        self.cache = (attn_cache, bias_cache)
        self.keep_attention(attn_cache)
        return out

    def backward(self, dout):
        attn_cache, bias_cache = self.cache
        dx, dqkv_w, dq_b, dv_b, dls, dproj_w, dproj_b, dbias = \
            tier(dout).cosine_attention_backward(dout, attn_cache)
        _, dfc1_w, dfc1_b, dfc2_w = continuous_bias_backward(dbias, bias_cache)
        for k, g in (("qkv.weight", dqkv_w), ("q_bias", dq_b), ("v_bias", dv_b),
                     ("logit_scale", dls), ("proj.weight", dproj_w), ("proj.bias", dproj_b),
                     ("cpb_mlp.0.weight", dfc1_w), ("cpb_mlp.0.bias", dfc1_b),
                     ("cpb_mlp.2.weight", dfc2_w)):
            self.accumulate(k, g)
        return dx

    # the last forward's probabilities as (B, nW, nH, N, N): v1's, from the same cache field
    keep_attention = WindowAttention.keep_attention
    attention_weights = WindowAttention.attention_weights


class PatchMergingV2(Module):
    """`downsample`: 2x2 neighbours concatenated (x0,x1,x2,x3), Linear(4C->2C), LayerNorm(2C)."""

    def __init__(self, dim, rng, dtype=np.float32):
        super().__init__()
        self.dim = dim
        self.param("reduction.weight", trunc_normal(rng, (2 * dim, 4 * dim), dtype=dtype))
        self.param("norm.weight", np.ones(2 * dim, dtype))
        self.param("norm.bias", np.zeros(2 * dim, dtype))

    def forward(self, x):
        """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C)"""
        p = self.params
        out, self.cache = patch_merging_v2_forward(x, p["reduction.weight"], p["norm.weight"],
                                                   p["norm.bias"])
        return out

    def backward(self, dout):
        dx, dred, dnw, dnb = patch_merging_v2_backward(dout, self.cache)
        self.accumulate("reduction.weight", dred)
        self.accumulate("norm.weight", dnw)
        self.accumulate("norm.bias", dnb)
        return dx
