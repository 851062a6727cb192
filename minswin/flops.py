"""Counting the cost of Swin, as the paper and the official `flops()` do.

"FLOPs" in the Swin paper and code are multiply-accumulates (MACs) of the matrix products,
the patch-embed conv and the LayerNorms; softmax, GELU, biases, residuals, the relative bias
and the mask are not counted (docs/semantics.md, section 5).

The paper's comparison for one h x w x C map, with window M:
    MSA    = 4 h w C^2 + 2 (h w)^2 C     (global self-attention)
    W-MSA  = 4 h w C^2 + 2 M^2 h w C     (attention inside M x M windows)
"""
from .ops.masks import official_window_shift


def matmul_macs(a, b, c):
    """(a x b) @ (b x c) costs a*b*c multiply-adds."""
    return a * b * c


def msa_flops(h, w, C):
    """Global multi-head self-attention on an h x w x C map: 4hwC^2 + 2(hw)^2 C.

    q, k, v: 3 * (hw x C)(C x C); q k^T: (hw x C)(C x hw); a v: (hw x hw)(hw x C);
    output projection: (hw x C)(C x C).
    """
    L = h * w
    return (3 * matmul_macs(L, C, C) + matmul_macs(L, C, L) + matmul_macs(L, L, C)
            + matmul_macs(L, C, C))


def wmsa_flops(h, w, C, M):
    """Window attention: (h/M)(w/M) windows, each an MSA over M*M tokens = 4hwC^2 + 2M^2 hwC."""
    return (h // M) * (w // M) * msa_flops(M, M, C)


def msa_saving(h, w, C, M):
    """MSA - W-MSA = 2(hw)^2 C - 2 M^2 hwC (15,091,034,112 at h = w = 224, C = 3, M = 7: the
    pixels-as-tokens example of the explainer, the Chinese article this project grew from; see
    the README)."""
    return msa_flops(h, w, C) - wmsa_flops(h, w, C, M)


# ---------------------------------------------------------------------------- official flops()

def attention_flops(N, dim, heads):
    """Official WindowAttention.flops(N): one window of N tokens."""
    return (N * dim * 3 * dim + heads * N * (dim // heads) * N
            + heads * N * N * (dim // heads) + N * dim * dim)


def block_flops(H, W, dim, heads, window, mlp_ratio):
    """Official SwinTransformerBlock.flops(): two LayerNorms, nW windows, the MLP."""
    nW = H * W / window / window
    return (H * W * dim + nW * attention_flops(window * window, dim, heads)
            + 2 * H * W * dim * dim * mlp_ratio + H * W * dim)


def merging_flops(H, W, dim):
    """Official PatchMerging.flops(): LayerNorm(4C) counted as H*W*C, then 4C -> 2C."""
    return H * W * dim + (H // 2) * (W // 2) * 4 * dim * 2 * dim


def merging_flops_v2(H, W, dim):
    """Official V2 PatchMerging.flops(): 4C -> 2C, then LayerNorm(2C) counted as H*W*C/2."""
    return (H // 2) * (W // 2) * 4 * dim * 2 * dim + H * W * dim // 2


def model_flops_breakdown(config, img_size=None):
    """Part -> MACs for the official counting, at img_size (int or (H, W); default: the
    config's)."""
    c = config
    size = c.img_size if img_size is None else img_size
    step = c.patch_size * 2 ** (c.num_layers - 1)
    hw = tuple(size) if isinstance(size, (tuple, list)) and len(size) == 2 else (size, size)
    if any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 or s % step for s in hw):
        # the official count assumes every stage's map divides exactly; at other sizes the
        # model pads, and the official formula would count a different network
        raise ValueError(f"img_size: expected a positive multiple of patch_size * "
                         f"2^(stages - 1) = {step} (or a pair of them), got {size!r}")
    gh, gw = hw[0] // c.patch_size, hw[1] // c.patch_size
    parts = {"patch_embed": gh * gw * c.embed_dim * c.in_chans * c.patch_size ** 2
             + gh * gw * c.embed_dim}
    for i, (depth, dim) in enumerate(zip(c.depths, c.stage_dims)):
        h, w = gh // 2 ** i, gw // 2 ** i
        window, _ = official_window_shift((h, w), c.window_size, 0)
        parts[f"layers.{i}.blocks"] = depth * block_flops(h, w, dim, c.num_heads[i], window,
                                                          c.mlp_ratio)
        if i < c.num_layers - 1:
            merge = merging_flops_v2 if c.version == 2 else merging_flops
            parts[f"layers.{i}.downsample"] = merge(h, w, dim)
    # the official tail: final norm counted over gh*gw / 2^L tokens (docs/semantics.md,
    # section 5), then the head
    parts["norm"] = c.num_features * gh * gw // 2 ** c.num_layers
    parts["head"] = c.num_features * c.num_classes
    return {k: int(round(v)) for k, v in parts.items()}


def model_flops(config, img_size=None):
    """Total MACs of the official count (Swin-T at 224: 4,494 M)."""
    return sum(model_flops_breakdown(config, img_size).values())
