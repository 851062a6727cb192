# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 5. Shifted windows and the −100 mask
#
# Window attention never lets two windows talk. Swin's fix: every second block moves the
# window grid by half a window, s = ⌊M/2⌋, so that the new windows straddle the old borders.
# Moved naively, the grid would cut an H×W map into more and smaller windows at the edges
# (for an 8×8 map with M = 4, s = 2: nine pieces instead of four). The official code keeps
# four full windows instead: it **rolls** the map by −s (the first s rows and columns wrap
# round to the bottom and right), partitions as usual, and uses an additive **mask** so that
# tokens which only became neighbours through the wrap-around ignore each other.
#
# We build all of this from minswin's functions on an 8×8 map, and then prove numerically
# that masked shifted attention is the same as attention inside each region separately.

# %%
import numpy as np

from minswin.backend import rng
from minswin.ops.attention import window_attention_forward
from minswin.ops.masks import (
    MASK_VALUE,
    attention_mask,
    attention_mask_slow,
    region_labels,
    window_labels,
)
from minswin.ops.softmax import softmax_forward
from minswin.ops.window import cyclic_shift, from_windows, to_windows_forward, window_partition
from minswin.viz import (
    plot_cyclic_shift,
    plot_region_numbering,
    plot_stage_masks,
    plot_window_mask,
    show,
)

g = rng(0)


# %% [markdown]
# ## The cyclic shift
#
# Number the tokens of an 8×8 map 0..63. `cyclic_shift` is `np.roll(x, (-s, -s))`: token
# (r, c) of the result is token (r + s, c + s) of the input, modulo 8.

# %%
H = W = 8
M, s = 4, 2
ids = np.arange(H * W).reshape(1, H, W, 1)
rolled = cyclic_shift(ids, s)[0, :, :, 0]
print("token ids after cyclic_shift by s = 2 (row r holds old row r + 2):")
print(rolled)

# %% [markdown]
# The same roll as a picture: the nine regions keep their colour and their number as they
# wrap round. The numbers are the ones `region_labels` gives them below.

# %%
show(plot_cyclic_shift(size=8, window=4), "05_cyclic_shift.png")

# %% [markdown]
# ## Nine regions
#
# In the rolled frame, the official code cuts each axis into three bands, `[0, H−M)`,
# `[H−M, H−s)` and `[H−s, H)`, and labels the 3×3 combinations 0..8. Tokens with the same
# label were neighbours before the roll; different labels inside one window were not.

# %%
labels = region_labels(H, W, M, s)                         # (H, W) in the rolled frame
print("region labels of the rolled 8x8 map (M = 4, s = 2):")
print(labels)
wl = window_labels(H, W, M, s)                             # (nW, N): labels per window
for k, lab in enumerate(wl):
    print(f"window {k}: regions {sorted(set(lab.tolist()))}")

# %% [markdown]
# Window 0 is one region; windows 1 and 2 hold two; window 3 (bottom-right) holds four.
#
# One numbering is used everywhere in minswin, in every printout and every figure: the
# one above, counted in the rolled frame as the official loop counts it (3 × row band +
# column band). On the map before the roll the same regions lie elsewhere, so there the
# numbers read in a different order. The figure draws both frames with the same numbers,
# and an arrow from where each region lies to where the roll puts it:

# %%
show(plot_region_numbering(size=8, window=4, shift=2), "05_region_numbering.png")
before = np.roll(labels, (s, s), axis=(0, 1))              # the labels, carried back
print("the same labels on the map before the roll:")
print(before)

# %% [markdown]
# The mask of window k is −100 wherever query and key labels differ, 0 elsewhere:

# %%
mask = attention_mask(H, W, M, s)                          # (nW, N, N)
print("mask shape:", mask.shape, "  masked pairs per window:",
      (mask == MASK_VALUE).sum(axis=(1, 2)).tolist())

# %% [markdown]
# Window 3 as a picture: its 16 tokens coloured by region, and its 16×16 mask, dark where
# query and key lie in different regions (−100) and light where they may attend (0).

# %%
show(plot_window_mask(size=8, window=4, window_id=3), "05_mask.png")

# %% [markdown]
# All four windows' masks side by side, laid out like the windows: window 0 (top left) is one
# region, so nothing is masked; the bottom-right window mixes four regions.

# %%
show(plot_stage_masks(8, 4, 2), "05_all_masks.png")

# %% [markdown]
# ## The small example: H = W = 4, M = 2, s = 1
#
# An issue of the official repository, microsoft/Swin-Transformer#38, asked about this one.
# The labels, and the four windows' labels:

# %%
small = region_labels(4, 4, 2, 1)
small_windows = window_labels(4, 4, 2, 1)
print("region labels, H = W = 4, M = 2, s = 1:")
print(small)
print("region labels of each window's 4 tokens (one window per row):")
print(small_windows)

# %% [markdown]
# ## Why −100 and not −∞?
#
# The mask is *added* to the logits before the softmax. A masked logit s − 100 has weight
# e^(s−100) relative to e^s, printed below: zero for every practical purpose.
# Compare three ways to mask one row where the last two keys belong to another region:

# %%
logits = np.array([2.0, 1.0, 0.5, 1.5])
m = np.array([0.0, 0.0, MASK_VALUE, MASK_VALUE])
p100, _ = softmax_forward(logits + m)
pinf, _ = softmax_forward(logits + np.where(m != 0, -np.inf, 0.0))
keep = m == 0
pbool = np.zeros(4)
pbool[keep] = softmax_forward(logits[keep])[0]
p32, _ = softmax_forward((logits + m).astype(np.float32))
print(f"e^-100 = {np.exp(MASK_VALUE):.0e}")
print("softmax with -100 :", p100)
print("softmax with -inf :", pinf)
print("boolean mask      :", pbool)
print("-100 in float32:", p32, " (masked weights are denormal or zero)")
with np.errstate(invalid="ignore"):                        # -inf - (-inf) is NaN
    row_all_masked_inf, _ = softmax_forward(np.full(3, -np.inf))
row_all_masked_100, _ = softmax_forward(np.full(3, MASK_VALUE))
print("a fully masked row: -inf gives", row_all_masked_inf, " -100 gives", row_all_masked_100)
agree = max(np.abs(p100 - pinf).max(), np.abs(p100 - pbool).max())
print(f"largest difference between the three: {agree:.0e}")

# %% [markdown]
# All three agree to the difference printed above, the size of e^−100 or less. −100 is finite,
# so even a row whose keys were all masked would not produce NaN (it would become uniform); with
# these labels that never happens, since every token sees at least itself.
#
# ## Proof: masked shifted attention = attention inside each region
#
# Take a random 8×8×C map. Path A is what the model does: roll, partition, window attention
# with the relative bias and the mask. Path B never uses a mask: inside each window it runs
# attention separately over the tokens of each region, with the matching entries of the
# bias. They must agree.

# %%
C, nH = 6, 2
N = M * M
x = g.standard_normal((1, H, W, C))
params = dict(qkv_weight=g.standard_normal((3 * C, C)), qkv_bias=g.standard_normal(3 * C),
              proj_weight=g.standard_normal((C, C)), proj_bias=g.standard_normal(C))
bias = g.standard_normal((nH, N, N))

tokens, wcache = to_windows_forward(x, M, s)               # (nW, N, C) rolled + partitioned
out_a, _ = window_attention_forward(tokens, **params, bias=bias, mask=mask, num_heads=nH)

out_b = np.zeros_like(out_a)
for k in range(tokens.shape[0]):
    for region in np.unique(wl[k]):
        idx = np.nonzero(wl[k] == region)[0]               # the tokens of this region
        sub, _ = window_attention_forward(tokens[k:k + 1, idx], **params,
                                          bias=np.ascontiguousarray(bias[:, idx][:, :, idx]),
                                          num_heads=nH)
        out_b[k, idx] = sub[0]
gap = np.abs(out_a - out_b).max()
print(f"max |masked - per region| = {gap:.1e}")
back = from_windows(out_a, wcache)                         # (1, H, W, C), rolled back
print("rolled back to the map:", back.shape)

# %% [markdown]
# ## 9 regions or 4?
#
# When H is a multiple of M, the window rows are [0, M), [M, 2M), ..., [H−M, H). The first
# band `[0, H−M)` is covered by the upper window rows only, the other two bands by the last
# window row only. So the first two bands never meet inside a window, and telling them apart
# changes no mask entry: two bands per axis, `[0, H−s)` and `[H−s, H)` (four regions), give
# the same mask.

# %%
def four_region_mask(H, W, M, s):
    lab = np.zeros((H, W), dtype=np.int64)
    lab[H - s:, :] += 2                                    # bottom band
    lab[:, W - s:] += 1                                    # right band
    wlab = window_partition(lab[None, :, :, None].astype(float), M).reshape(-1, M * M)
    return np.where(wlab[:, :, None] != wlab[:, None, :], MASK_VALUE, 0.0)


same_masks = [np.array_equal(four_region_mask(n, n, Mi, Mi // 2),
                             attention_mask(n, n, Mi, Mi // 2))
              for n, Mi in ((8, 4), (56, 7), (28, 7), (14, 7))]
print("4-region mask == official 9-region mask:", same_masks)

# %% [markdown]
# ## Questions
#
# * **Why −100 (microsoft/Swin-Transformer#38, #52)?** Added to the logits, it makes the
#   weight e^(−100) times smaller (printed above): zero in practice, yet finite, so no NaN
#   can ever appear. −∞ or a boolean mask give the same numbers here.
# * **Why 9 regions when 4 would do (microsoft/Swin-Transformer#174, #194)?** For maps
#   divisible by M they give the same mask (shown above); the three-band code is simply how
#   the official loop is written, and minswin keeps it so that its masks equal the official
#   buffers.
# * **Does the order of the subtraction in the mask matter (microsoft/Swin-Transformer#42)?**
#   No: only "labels differ" matters, and that is symmetric.
# * **Maps not divisible by M?** minswin pads the map to a multiple of M first, then rolls
#   and builds the mask on the padded grid (torchvision/det). The padded tokens are not
#   masked; they are cropped afterwards.

# %% [markdown]
# ## Checks

# %%
assert rolled[0, 0] == 2 * W + 2 and rolled[-1, -1] == 1 * W + 1
assert len(np.unique(labels)) == 9
assert [len(set(lab.tolist())) for lab in wl] == [1, 2, 2, 4]
assert small.tolist() == [[0, 0, 1, 2], [0, 0, 1, 2], [3, 3, 4, 5], [6, 6, 7, 8]]
assert before[0].tolist() == [8, 8, 6, 6, 6, 6, 7, 7]            # the top row before the roll
assert small_windows.tolist() == [[0, 0, 0, 0], [1, 2, 1, 2], [3, 3, 6, 6], [4, 5, 7, 8]]
assert np.array_equal(mask, attention_mask_slow(H, W, M, s))
assert set(np.unique(mask)) == {0.0, MASK_VALUE} and np.array_equal(mask, mask.transpose(0, 2, 1))
assert (mask[0] == 0).all() and (mask[3] != 0).sum() == 16 * 16 - 4 * 4 * 4
assert agree <= np.exp(MASK_VALUE) * 10
assert np.isnan(row_all_masked_inf).all() and np.allclose(row_all_masked_100, 1 / 3)
assert gap < 1e-12
assert all(same_masks)
print("tutorial 5: all checks passed")
