"""Modules that own parameters and call the pure ops: the pieces a Swin block is made of.

Each forward keeps its op's cache in `self.cache`; each backward reads only that cache,
accumulates the parameter gradients and returns the input gradient. The ops come from the tier
`minswin.use_fast` chooses (`tier(...)`, minswin/tiers.py): minswin.ops, the plain maths, or
their fast twins in minswin.fast. Their names, arguments and caches are the same.
Initialisation follows the official `_init_weights` (docs/semantics.md, section 4).
"""
import math

import numpy as np

from .backend import get_xp
from .grad_mode import keeps_attention
from .module import Module
from .ops.masks import cached_relative_position_index
from .ops.relative_bias import relative_bias_backward, relative_bias_forward
from .tiers import tier


def trunc_normal(rng, shape, std=0.02, bound=2.0, dtype=np.float32):
    """Normal(0, std) redrawn where |x| > bound (timm's trunc_normal_, cut at +-2 absolute)."""
    x = rng.standard_normal(shape) * std
    bad = np.abs(x) > bound
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum())) * std
        bad = np.abs(x) > bound
    return x.astype(dtype)


class LayerNorm(Module):
    def __init__(self, dim, dtype=np.float32):
        super().__init__()
        self.param("weight", np.ones(dim, dtype))
        self.param("bias", np.zeros(dim, dtype))

    def forward(self, x):
        out, self.cache = tier(x).layernorm_forward(x, self.params["weight"],
                                                    self.params["bias"])
        return out

    def backward(self, dout):
        dx, dw, db = tier(dout).layernorm_backward(dout, self.cache)
        self.accumulate("weight", dw)
        self.accumulate("bias", db)
        return dx


class Linear(Module):
    def __init__(self, d_in, d_out, bias=True, rng=None, dtype=np.float32):
        super().__init__()
        self.param("weight", trunc_normal(rng, (d_out, d_in), dtype=dtype))
        if bias:
            self.param("bias", np.zeros(d_out, dtype))

    def forward(self, x):
        out, self.cache = tier(x).linear_forward(x, self.params["weight"],
                                                 self.params.get("bias"))
        return out

    def backward(self, dout):
        dx, dw, db = tier(dout).linear_backward(dout, self.cache)
        self.accumulate("weight", dw)
        if db is not None:                                 # the op knows if there is a bias
            self.accumulate("bias", db)
        return dx


class PatchEmbed(Module):
    """`patch_embed`: 4x4 stride-4 conv (`proj`, conv weight layout) then LayerNorm (`norm`)."""

    def __init__(self, patch_size, in_chans, embed_dim, rng, dtype=np.float32):
        super().__init__()
        self.patch_size = patch_size
        fan_in = in_chans * patch_size ** 2
        bound = 1.0 / math.sqrt(fan_in)       # PyTorch's default Conv2d init, as official keeps
        shape = (embed_dim, in_chans, patch_size, patch_size)
        self.param("proj.weight", rng.uniform(-bound, bound, shape).astype(dtype))
        self.param("proj.bias", rng.uniform(-bound, bound, embed_dim).astype(dtype))
        self.norm = self.child("norm", LayerNorm(embed_dim, dtype))

    def forward(self, x):
        """(B, H, W, in_chans) -> (B, ceil(H/p), ceil(W/p), C)"""
        y, self.cache = tier(x).patch_embed_forward(x, self.params["proj.weight"],
                                                    self.params["proj.bias"], self.patch_size)
        return self.norm.forward(y)

    def backward(self, dout):
        dy = self.norm.backward(dout)
        dx, dw, db = tier(dy).patch_embed_backward(dy, self.cache)
        self.accumulate("proj.weight", dw)
        self.accumulate("proj.bias", db)
        return dx


class WindowAttention(Module):
    """`attn`: window multi-head attention with its relative position bias table."""

    def __init__(self, dim, window_size, num_heads, rng, dtype=np.float32):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads: expected a divisor of the width dim={dim}, "
                             f"got {num_heads}")
        self.dim, self.window_size, self.num_heads = dim, window_size, num_heads
        rows = (2 * window_size - 1) ** 2
        self.param("relative_position_bias_table", trunc_normal(rng, (rows, num_heads),
                                                                dtype=dtype))
        self.param("qkv.weight", trunc_normal(rng, (3 * dim, dim), dtype=dtype))
        self.param("qkv.bias", np.zeros(3 * dim, dtype))
        self.param("proj.weight", trunc_normal(rng, (dim, dim), dtype=dtype))
        self.param("proj.bias", np.zeros(dim, dtype))

    def relative_position_bias(self):
        """The gathered (nH, N, N) bias and the gather's cache."""
        table = self.params["relative_position_bias_table"]
        index = cached_relative_position_index(self.window_size, get_xp(table))
        return relative_bias_forward(table, index)

    def forward(self, tokens, mask=None):
        """tokens (B*nW, N, C), mask (nW, N, N) or None -> (B*nW, N, C)."""
        p = self.params
        bias, bias_cache = self.relative_position_bias()   # (nH, N, N)
        out, attn_cache = tier(tokens).window_attention_forward(
            tokens, p["qkv.weight"], p["qkv.bias"], p["proj.weight"], p["proj.bias"],
            bias, mask, self.num_heads)
        self.cache = (attn_cache, bias_cache)
        self.keep_attention(attn_cache)
        return out

    def backward(self, dout):
        attn_cache, bias_cache = self.cache
        dx, dqkv_w, dqkv_b, dproj_w, dproj_b, dbias = \
            tier(dout).window_attention_backward(dout, attn_cache)
        self.accumulate("qkv.weight", dqkv_w)
        self.accumulate("qkv.bias", dqkv_b)
        self.accumulate("proj.weight", dproj_w)
        self.accumulate("proj.bias", dproj_b)
        self.accumulate("relative_position_bias_table",
                        relative_bias_backward(dbias, bias_cache))
        return dx

    def keep_attention(self, attn_cache):
        """Keep the forward's probabilities (B*nW, nH, N, N) for attention_weights(): the very
        array of the cache, or inside no_grad() only with keep_attention=True."""
        self.attention = attn_cache.attn.out if keeps_attention() else None

    def attention_weights(self, num_windows):
        """The last forward's attention probabilities as (B, nW, nH, N, N), nW = num_windows
        per image (the forward sees only B*nW windows; the block knows nW)."""
        a = getattr(self, "attention", None)               # (B*nW, nH, N, N)
        if a is None and self._cache is not None:          # a forward inside no_grad()
            raise RuntimeError("attention_weights: the last forward ran inside "
                               "minswin.no_grad(), which keeps no attention weights; use "
                               "minswin.no_grad(keep_attention=True)")
        if a is None:
            raise RuntimeError("attention_weights: run a forward pass first")
        if a.shape[0] % num_windows:
            raise ValueError(f"num_windows: expected a divisor of the {a.shape[0]} windows "
                             f"of the last forward, got {num_windows}")
        return a.reshape(-1, num_windows, *a.shape[1:])    # (B, nW, nH, N, N)


class Mlp(Module):
    """`mlp`: fc1 (C -> 4C), exact GELU, fc2 (4C -> C)."""

    def __init__(self, dim, hidden, rng, dtype=np.float32):
        super().__init__()
        self.param("fc1.weight", trunc_normal(rng, (hidden, dim), dtype=dtype))
        self.param("fc1.bias", np.zeros(hidden, dtype))
        self.param("fc2.weight", trunc_normal(rng, (dim, hidden), dtype=dtype))
        self.param("fc2.bias", np.zeros(dim, dtype))

    def forward(self, x):
        p = self.params
        out, self.cache = tier(x).mlp_forward(x, p["fc1.weight"], p["fc1.bias"],
                                              p["fc2.weight"], p["fc2.bias"])
        return out

    def backward(self, dout):
        dx, dw1, db1, dw2, db2 = tier(dout).mlp_backward(dout, self.cache)
        for k, g in (("fc1.weight", dw1), ("fc1.bias", db1), ("fc2.weight", dw2),
                     ("fc2.bias", db2)):
            self.accumulate(k, g)
        return dx


class PatchMerging(Module):
    """`downsample`: 2x2 neighbours concatenated (x0,x1,x2,x3), LayerNorm(4C), Linear(4C->2C)."""

    def __init__(self, dim, rng, dtype=np.float32):
        super().__init__()
        self.dim = dim
        self.param("norm.weight", np.ones(4 * dim, dtype))
        self.param("norm.bias", np.zeros(4 * dim, dtype))
        self.param("reduction.weight", trunc_normal(rng, (2 * dim, 4 * dim), dtype=dtype))

    def forward(self, x):
        """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C)"""
        p = self.params
        out, self.cache = tier(x).patch_merging_forward(x, p["norm.weight"], p["norm.bias"],
                                                        p["reduction.weight"])
        return out

    def backward(self, dout):
        dx, dnw, dnb, dred = tier(dout).patch_merging_backward(dout, self.cache)
        self.accumulate("norm.weight", dnw)
        self.accumulate("norm.bias", dnb)
        self.accumulate("reduction.weight", dred)
        return dx
