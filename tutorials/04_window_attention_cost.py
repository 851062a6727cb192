# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 4. What windows save: counting the multiply-adds
#
# The Swin paper compares global multi-head self-attention (MSA) with window attention
# (W-MSA) on an h×w map of width C:
#
#     Ω(MSA)   = 4·hw·C² + 2·(hw)²·C
#     Ω(W-MSA) = 4·hw·C² + 2·M²·hw·C
#
# "FLOPs" there means multiply-accumulates (MACs) of the matrix products; softmax, the
# bias and the mask are not counted. Here we derive both formulas from matrix shapes, then
# check them against the matrix products that minswin's attention really performs.

# %%
from contextlib import contextmanager

import numpy as np

import minswin
from minswin.backend import rng
from minswin.flops import msa_flops, msa_saving, wmsa_flops
from minswin.ops.attention import window_attention_forward
from minswin.ops.window import to_windows_forward
from minswin.viz import plot_attention_cost, show

g = rng(0)

# %% [markdown]
# ## From shapes to the formula
#
# Multiplying an (a×b) matrix by a (b×c) one costs a·b·c multiply-adds. With L = hw tokens:
#
# | step | shapes | MACs |
# | --- | --- | --- |
# | q, k, v = x W_q, x W_k, x W_v | 3 × (L×C)(C×C) | 3LC² |
# | scores q kᵀ | (L×C)(C×L), summed over heads: each head d = C/nH wide | L²C |
# | a v | (L×L)(L×C), again over all heads | L²C |
# | output projection | (L×C)(C×C) | LC² |
#
# Total 4LC² + 2L²C. Splitting into heads changes nothing: nH heads of width C/nH cost the
# same as one head of width C. For W-MSA, each of the hw/M² windows is an MSA over M² tokens:
# (hw/M²)·(4M²C² + 2M⁴C) = 4hwC² + 2M²hwC. The first term is unchanged; the second, the
# one quadratic in the number of tokens, becomes linear.
#
# ## Counting the matrix products minswin actually runs
#
# minswin's attention (the plain tier, `minswin/ops/attention.py`) multiplies with `@`, which
# NumPy runs as the `np.matmul` ufunc. We hand it arrays of a tiny NumPy subclass that writes
# down the shape of every product it takes part in (a trick for a tutorial, never for library
# code): the maths runs unchanged, and we read off what it cost.

# %%
class Counted(np.ndarray):
    """A NumPy array that logs batch * m * k * n for every matrix product it takes part in."""
    log = None                                             # the list being written, or None

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [x.view(np.ndarray) if isinstance(x, Counted) else x for x in inputs]
        out = getattr(ufunc, method)(*plain, **kwargs)     # the real computation
        if ufunc is np.matmul and Counted.log is not None:
            a, b = plain                                   # (..., m, k) @ (..., k, n)
            *_, m, k = a.shape
            batch = int(np.prod(out.shape[:-2], dtype=np.int64))
            Counted.log.append(batch * m * k * b.shape[-1])
        return out.view(Counted) if isinstance(out, np.ndarray) else out


@contextmanager
def count_matmuls():
    """Within the block, every product with a Counted array adds its MACs to the list."""
    Counted.log = []
    try:
        yield Counted.log
    finally:
        Counted.log = None


def attention_params(C):
    return dict(qkv_weight=g.standard_normal((3 * C, C)), qkv_bias=np.zeros(3 * C),
                proj_weight=g.standard_normal((C, C)), proj_bias=np.zeros(C))


h = w = 14
C, nH, M = 24, 3, 7
fmap = g.standard_normal((1, h, w, C))                     # (B, h, w, C)
params = attention_params(C)

# global MSA: one "window" holding all h*w tokens
with count_matmuls() as log_msa:
    x = fmap.reshape(1, h * w, C).view(Counted)            # (1, h*w, C)
    window_attention_forward(x, **params, num_heads=nH)
# W-MSA: (h/M)*(w/M) windows of M*M tokens
tokens, _ = to_windows_forward(fmap, M, 0)                 # (4, 49, C)
with count_matmuls() as log_wmsa:
    window_attention_forward(tokens.view(Counted), **params, num_heads=nH)

print("MSA   matmuls:", log_msa, "=", sum(log_msa), "  formula:", msa_flops(h, w, C))
print("W-MSA matmuls:", log_wmsa, "=", sum(log_wmsa), "  formula:", wmsa_flops(h, w, C, M))

# %% [markdown]
# The four entries of each list are the qkv projection, q kᵀ, a v and the output
# projection, in that order; only the middle two shrink with windows.
#
# ## Pixels as tokens: the explainer's example
#
# The explainer (the Chinese article on Swin that minswin grew from; the README says more)
# works the two formulas on a picture in which every *pixel* is a token: h = w = 224,
# C = 3 (RGB), M = 7. That is not a setting of Swin, whose stage 1 sees 56×56 tokens of width
# 96 (the next section); it is the formulas at their simplest. The difference is
# 2·(hw)²·C − 2·M²·hw·C = 2·224⁴·3 − 2·49·224²·3:

# %%
saving = msa_saving(224, 224, 3, 7)
by_hand = 2 * 224 ** 4 * 3 - 2 * 7 * 7 * 224 ** 2 * 3
print(f"MSA - W-MSA at 224x224x3, M=7: {saving:,}  (by hand: {by_hand:,})")
print(f"MSA costs {msa_flops(224, 224, 3) / wmsa_flops(224, 224, 3, 7):.0f} times W-MSA there")

# %% [markdown]
# ## Swin-T's stages
#
# The same comparison for one attention layer at each stage of Swin-T at 224 px. The
# saving is largest in stage 1, where the map is biggest; at stage 4 (7×7, one window) the
# two are the same.

# %%
cfg = minswin.get_config("swin_t")
stage_rows = []
for i in range(cfg.num_layers):
    side, width = 56 // 2 ** i, cfg.embed_dim * 2 ** i
    Mi = min(cfg.window_size, side)
    a, b = msa_flops(side, side, width), wmsa_flops(side, side, width, Mi)
    stage_rows.append((side, width, a, b))
    print(f"stage {i + 1}: {side:>2}x{side:<2}x{width:<3}  MSA {a / 1e9:6.3f} G   "
          f"W-MSA {b / 1e9:6.3f} G   ratio {a / b:5.1f}")

# %% [markdown]
# As a picture, on a linear scale: global attention's stage 1 dwarfs everything else, and the
# windows bring every stage down to about the same cost. The range, from the table above:

# %%
wmsa_by_stage = [b for _, _, _, b in stage_rows]
spread = max(wmsa_by_stage) / min(wmsa_by_stage)
print(f"W-MSA per stage: {min(wmsa_by_stage) / 1e6:.0f} to {max(wmsa_by_stage) / 1e6:.0f} "
      f"million MACs (the largest {spread:.2f} times the smallest); stage 1's MSA "
      f"{stage_rows[0][2] / max(wmsa_by_stage):.0f} times the largest of them")
show(plot_attention_cost(minswin.create_model("swin_t")), "04_attention_cost.png")

# %% [markdown]
# ## The block's count in `model.flops()`
#
# The official `flops()` counts, per block, the two LayerNorms (hw·C each), the window
# attention (exactly the W-MSA formula) and the MLP (two Linears C → 4C → C: 8hwC²).

# %%
blk = minswin.flops.block_flops(56, 56, 96, 3, 7, 4.0)
parts = 2 * 56 * 56 * 96 + wmsa_flops(56, 56, 96, 7) + 8 * 56 * 56 * 96 ** 2
print(f"one stage-1 block: {blk:,.0f} MACs = LN {2 * 56 * 56 * 96:,} + W-MSA "
      f"{wmsa_flops(56, 56, 96, 7):,} + MLP {8 * 56 * 56 * 96 ** 2:,}")
odd_h, odd_w = 50, 65                                      # a map that is not a multiple of 7
pad_h, pad_w = odd_h + (-odd_h) % 7, odd_w + (-odd_w) % 7
print(f"a {odd_h}x{odd_w} map is padded to {pad_h}x{pad_w} before windowing: W-MSA "
      f"{wmsa_flops(pad_h, pad_w, 96, 7):,} MACs")

# %% [markdown]
# ## Questions
#
# * **Are these FLOPs or MACs?** MACs: one multiply and one add count once. Some tools
#   double them (microsoft/Swin-Transformer#340); `model.flops()` follows the paper.
# * **Why is the MLP factor 2·hw·C²·4?** Two Linears, C → 4C and 4C → C.
# * **Does the mask or the relative bias cost anything?** They are additions, not counted.
# * **What about maps that are not multiples of M?** They are padded to the next multiple,
#   so a 50×65 map with M = 7 costs as much as 56×70 (tutorial 8).

# %% [markdown]
# ## Checks

# %%
assert sum(log_msa) == msa_flops(h, w, C) == 4 * h * w * C ** 2 + 2 * (h * w) ** 2 * C
assert sum(log_wmsa) == wmsa_flops(h, w, C, M) == 4 * h * w * C ** 2 + 2 * M * M * h * w * C
assert len(log_msa) == len(log_wmsa) == 4
assert saving == by_hand == 15_091_034_112
assert stage_rows[3][2] == stage_rows[3][3]                # stage 4: one window = global
assert blk == parts
assert spread < 1.5 and stage_rows[0][2] > 10 * max(wmsa_by_stage)   # "about the same cost"
assert (pad_h, pad_w) == (56, 70)
print("tutorial 4: all checks passed")
