# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 3. Patch merging: half the resolution, twice the width
#
# Between stages Swin shrinks the map like a CNN's stride-2 layer. Patch merging takes every
# second token in both directions, four times with different offsets, and stacks the four
# sub-maps along the channels: an H×W×C map becomes (H/2)×(W/2)×4C. A LayerNorm over those
# 4C numbers and a bias-free Linear 4C → 2C follow.
#
# We first do it by hand on a 4×4 single-channel map, then run the real layer.

# %%
import numpy as np

import minswin
from minswin.backend import rng
from minswin.gradcheck import check_op
from minswin.layers import PatchMerging
from minswin.ops.layernorm import layernorm_forward
from minswin.ops.patch_merging import merge_2x2, patch_merging_backward, patch_merging_forward
from minswin.viz import plot_patch_merging, show

g = rng(0)


# %% [markdown]
# ## The 4×4 example
#
# Number the 16 tokens of a one-channel 4×4 map 0..15, row by row. The four strided slices
# are four 2×2 maps; stacked, they give a 2×2×4 map.

# %%
x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)    # (B, H, W, C) = (1, 4, 4, 1)
print("the 4x4 map, tokens numbered row by row:")
print(x[0, :, :, 0])
x0 = x[:, 0::2, 0::2]                                      # even rows, even columns
x1 = x[:, 1::2, 0::2]                                      # odd rows, even columns
x2 = x[:, 0::2, 1::2]                                      # even rows, odd columns
x3 = x[:, 1::2, 1::2]                                      # odd rows, odd columns
for name, part in (("x0", x0), ("x1", x1), ("x2", x2), ("x3", x3)):
    print(name, part[0, :, :, 0].tolist())
stacked = np.concatenate([x0, x1, x2, x3], axis=-1)        # (1, 2, 2, 4)
print("2x2x4 map, the 4-vector of each cell:\n", stacked[0])

# %% [markdown]
# Look at the top-left cell: `[0, 4, 1, 5]`. The second number is the token *below* the
# first, not the one to its right. The official order is x0 = top-left, x1 = bottom-left,
# x2 = top-right, x3 = bottom-right. The order matters only for loading weights: a model
# with TL, TR, BL, BR would need the columns of `reduction.weight` permuted.
#
# Next, LayerNorm over the 4 numbers of each cell (the shape stays 2×2×4; the values become
# mean 0, variance 1 per cell), then a Linear 4 → 2 (2×2×2): the resolution halved, the
# width doubled relative to the input's C = 1.

# %%
gamma, beta = np.ones(4), np.zeros(4)
normed, _ = layernorm_forward(stacked, gamma, beta)       # (1, 2, 2, 4)
w_red = g.standard_normal((2, 4))                          # reduction.weight, (2C, 4C)
out_hand = normed @ w_red.T                                # (1, 2, 2, 2)
out, _ = patch_merging_forward(x, gamma, beta, w_red)      # minswin's layer
print("after LayerNorm:\n", normed[0].round(3))
print("after the Linear 4 -> 2:", out.shape, " by hand == minswin:",
      np.allclose(out, out_hand, rtol=0, atol=1e-14))

# %% [markdown]
# The same steps as a picture: the four sub-grids, and where each lands in the 4 channels.

# %%
show(plot_patch_merging(size=4), "03_patch_merging.png")

# %% [markdown]
# ## The real layer
#
# Swin-T's first merge (`layers.0.downsample`) takes the 56×56×96 stage-1 map to
# 28×28×192. Its parameters are the LayerNorm(384) affine pair and a 192×384 matrix.

# %%
merge = PatchMerging(96, rng(1))                           # Swin-T's layers.0.downsample
feat = g.standard_normal((1, 56, 56, 96)).astype(np.float32)
print("parameters of layers.0.downsample:", {k: v.shape for k, v in merge.params.items()})
y = merge.forward(feat)
macs = minswin.flops.merging_flops(56, 56, 96)
print("stage-1 map", feat.shape, "-> merged", y.shape, f"  {macs:,} MACs (official count)")

# %% [markdown]
# ## Odd maps
#
# A map with an odd side (which happens for input sizes that are not multiples of 32) is
# zero-padded at the bottom/right first, as timm, torchvision and the detection backbone do:
# 5×5 → 3×3.

# %%
odd, _ = patch_merging_forward(g.standard_normal((1, 5, 5, 2)), np.ones(8), np.zeros(8),
                               g.standard_normal((4, 8)))
print("a 5x5x2 map, padded to 6x6 and merged ->", odd.shape[1:])
t = minswin.get_config("swin_t")
stride = t.patch_size * 2 ** (t.num_layers - 1)            # the stem, then 3 halvings
print(f"Swin-T's last map is the image / {stride}: sides that are not multiples of {stride} "
      "give an odd map somewhere")

# %% [markdown]
# ## Is patch merging a convolution?
#
# The Linear on the stacked cell alone *is* a 2×2 convolution with stride 2: the weight of
# channel block k goes to kernel position (row k % 2, column k // 2). But the LayerNorm comes
# first, and it rescales every 2×2 cell by that cell's own statistics. Multiply one cell of
# the input by 3: a convolution's output there would triple, patch merging's does not move
# (with β = 0, LayerNorm cannot see the scale).

# %%
C = 2
xin = g.standard_normal((1, 4, 4, C))
wr = g.standard_normal((2 * C, 4 * C))
kernel = np.zeros((2 * C, C, 2, 2))                        # (out, in, kh, kw)
for k in range(4):
    kernel[:, :, k % 2, k // 2] = wr[:, k * C:(k + 1) * C]
conv = np.einsum("bhpwqc,ocpq->bhwo", xin.reshape(1, 2, 2, 2, 2, C), kernel)   # stride-2
lin_only = merge_2x2(xin) @ wr.T
print("Linear part == stride-2 conv:", np.allclose(conv, lin_only, atol=1e-13))
ones, zeros = np.ones(4 * C), np.zeros(4 * C)
scaled = xin.copy()
scaled[:, 0:2, 0:2] *= 3.0                                 # one 2x2 cell, three times larger
a, _ = patch_merging_forward(xin, ones, zeros, wr)
b, _ = patch_merging_forward(scaled, ones, zeros, wr)
cell_change = np.abs(a[0, 0, 0] - b[0, 0, 0]).max()
conv_change = np.abs(2 * conv[0, 0, 0]).max()             # a conv's output would triple
print(f"at that cell a conv's output changes by {conv_change:.2f}, patch merging's by "
      f"{cell_change:.1e} (only through LayerNorm's eps = 1e-5)")

# %% [markdown]
# ## Backward
#
# Reverse order: the Linear's backward, the LayerNorm's backward, then each C-block of the
# 4C gradient goes back to its strided sub-grid, and padding is cropped. It is exercise
# `patch_merging_backward` (`minswin exercise start patch_merging_backward`). Checked here:

# %%
report = check_op(patch_merging_forward, patch_merging_backward,
                  {"x": g.standard_normal((1, 4, 6, 2)),
                   "norm_weight": 1 + 0.3 * g.standard_normal(8),
                   "norm_bias": 0.3 * g.standard_normal(8),
                   "reduction_weight": g.standard_normal((4, 8))})
print("central-difference check of patch_merging_backward:")
print(report)

# %% [markdown]
# ## Questions
#
# * **Patch merging vs a conv (microsoft/Swin-Transformer#256, #330).** The Linear is a 2×2
#   stride-2 conv, but the per-cell LayerNorm before it is not: shown above.
# * **Why is x1 the bottom-left token?** That is the official slicing (`x[:, 1::2, 0::2]`);
#   timm's reshape gives the same channel order, so their weights are interchangeable.
# * **Sizes not divisible by 2 (or 32)?** Zero-pad bottom/right, as above.

# %% [markdown]
# ## Checks

# %%
assert stacked.shape == (1, 2, 2, 4) and normed.shape == (1, 2, 2, 4) and out.shape == (1, 2, 2, 2)
assert stacked[0, 0, 0].tolist() == [0, 4, 1, 5]
assert stacked[0, 1, 1].tolist() == [10, 14, 11, 15]
assert np.allclose(normed.mean(-1), 0) and np.allclose(normed.var(-1), 1, atol=1e-4)
assert np.allclose(out, out_hand, rtol=0, atol=1e-14)
assert y.shape == (1, 28, 28, 192)
assert odd.shape == (1, 3, 3, 4)
assert np.allclose(conv, lin_only, atol=1e-13) and cell_change < 1e-3 * conv_change
assert report.passed
print("tutorial 3: all checks passed")
