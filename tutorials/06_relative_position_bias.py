# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 6. Relative position bias: a small table, a constant index
#
# Attention by itself does not know where tokens are. Swin adds a learned number B[i, j] to
# each attention logit, before the softmax, that depends only on the *offset* between query
# i and key j inside the window:
#
#     attention = softmax(q kᵀ / √d + B) v
#
# In an M×M window, row and column offsets each range over −(M−1)..M−1, i.e. 2M−1 values,
# so there are (2M−1)² possible offsets: the table has (2M−1)² rows, one column per head.
# A constant (N, N) index, N = M², tells every pair which row to read. We build that index
# step by step for M = 2, look at why the row offset is multiplied by 2M−1, and write the
# gather's backward, a scatter-add.

# %%
import numpy as np

import minswin
from minswin.backend import rng
from minswin.gradcheck import check_op
from minswin.ops.masks import relative_coordinates, relative_position_index
from minswin.ops.relative_bias import relative_bias_backward, relative_bias_forward
from minswin.viz import (
    plot_index_walkthrough,
    plot_relative_position_bias,
    plot_relative_position_index,
    show,
)

g = rng(0)


# %% [markdown]
# ## The 2×2 walk-through
#
# Tokens of a 2×2 window, numbered row by row: 0 = (0, 0), 1 = (0, 1), 2 = (1, 0),
# 3 = (1, 1). For every pair (query i, key j) take position i minus position j:

# %%
M = 2
rel = relative_coordinates(M)                              # (2, N, N): dr and dc
print("dr = row_i - row_j (query i down, key j across):")
print(rel[0])
print("dc = col_i - col_j:")
print(rel[1])

# %% [markdown]
# Offsets run from −1 to 1. Add M − 1 = 1 so they run from 0 to 2M − 2 = 2, then read
# (dr, dc) as the digits of a number in base 2M − 1 = 3: index = dr·(2M−1) + dc.

# %%
dr, dc = rel[0] + (M - 1), rel[1] + (M - 1)
index_by_hand = dr * (2 * M - 1) + dc
print("relative position index, M = 2 (dr * 3 + dc):")
print(index_by_hand)
print("minswin.relative_position_index(2) is the same:",
      np.array_equal(index_by_hand, relative_position_index(2)))

# %% [markdown]
# The diagonal is always the middle of the table (offset (0, 0), row 4 here), and each
# index value appears once per pair with that offset. The same steps as pictures:

# %%
show(plot_index_walkthrough(window=2), "06_index_walkthrough.png")

# %% [markdown]
#
# ## Why multiply by 2M − 1, not 2M − 2?
#
# After the shift, dc takes 2M − 1 values (0..2M−2). For the base-(2M−1) reading to be unique
# the row digit must step by 2M − 1. Stepping by 2M − 2 (asked in
# microsoft/Swin-Transformer#367) makes the last column digit of one row collide with the first
# of the next:

# %%
def offsets_by_index(M, multiplier):
    """Which (dr, dc) offsets land on each index value."""
    rel = relative_coordinates(M)
    idx = (rel[0] + M - 1) * multiplier + (rel[1] + M - 1)
    seen = {}
    for v, a, b in zip(idx.ravel(), rel[0].ravel(), rel[1].ravel()):
        seen.setdefault(int(v), set()).add((int(a), int(b)))
    return seen


for mult in (2 * M - 1, 2 * M - 2):
    clashes = {k: v for k, v in offsets_by_index(M, mult).items() if len(v) > 1}
    print(f"multiplier {mult}: indices shared by different offsets: {clashes or 'none'}")
collisions_7 = sum(len(v) > 1 for v in offsets_by_index(7, 12).values())
print(f"M = 7 with multiplier 12: {collisions_7} table rows shared by two offsets")

# %% [markdown]
# ## The (2M − 1)² table for M = 7
#
# Swin-T's windows are 7×7: 49 tokens, 49×49 pairs, 13 × 13 = 169 offsets. Every table row
# is used, and row k is read once for each pair with that offset: (M − |dr|)·(M − |dc|)
# times. The centre (offset 0, 0) is read 49 times, the corners once.

# %%
M7 = 7
idx7 = relative_position_index(M7)                         # (49, 49)
uses = np.bincount(idx7.ravel(), minlength=(2 * M7 - 1) ** 2).reshape(13, 13)
d = np.arange(-(M7 - 1), M7)
expected_uses = np.outer(M7 - np.abs(d), M7 - np.abs(d))
print("index shape:", idx7.shape, "  table rows used:", len(np.unique(idx7)))
print("how often each of the 13x13 table rows is read (row dr + 6, column dc + 6):")
print(uses)

# %% [markdown]
# The 49×49 index as a picture. Token i = 7·row + column, so the lines every 7 tokens cut it
# into 7×7 blocks, one per pair of window rows: inside a block only dc changes, from block to
# block dr changes by one. Every block is the same Toeplitz pattern shifted by 13, and the
# diagonal is the table row of offset (0, 0), printed below.

# %%
centre = (M7 - 1) * (2 * M7 - 1) + (M7 - 1)                # offset (0, 0): row 6 * 13 + 6
print(f"the diagonal of the index: {sorted(set(np.diag(idx7).tolist()))}, "
      f"the row of offset (0, 0) = {centre}")
show(plot_relative_position_index(window=7), "06_index_7.png")

# %% [markdown]
# ## Gather (forward)
#
# `bias[h, i, j] = table[index[i, j], h]`: one fancy-index read.

# %%
nH = 3
table = g.standard_normal(((2 * M7 - 1) ** 2, nH))         # (169, nH) learned
bias, cache = relative_bias_forward(table, idx7)            # (nH, 49, 49)
loop = np.empty((nH, 49, 49))
for h in range(nH):
    for i in range(49):
        for j in range(49):
            loop[h, i, j] = table[idx7[i, j], h]
print("gather == loops:", np.array_equal(bias, loop), "  bias shape:", bias.shape)

# %% [markdown]
# What a *trained* table looks like: the first shifted block of `swin_digits`, the small
# model that ships with minswin (`minswin.pretrained()`, trained on the digits). Each head
# learned its own preference for near or far, horizontal or vertical neighbours; the (N, N)
# bias gathered from the table repeats it for every query.

# %%
digits = minswin.pretrained("swin_digits")
key = "layers.0.blocks.1.attn.relative_position_bias_table"
show(plot_relative_position_bias(digits.params[key], name=f"{key} (swin_digits, trained)"),
     "06_bias_trained.png")

# %% [markdown]
# ## Scatter-add (backward)
#
# Every pair that read row k sends its gradient back to row k, so the gradient of row k is
# the *sum* over those pairs. `dtable[index] += d` does not do that: NumPy computes the
# right-hand side for every pair, then writes each repeated row once, so only one of the
# repeats survives. `np.add.at` (minswin's `index_add`) accumulates.

# %%
dbias = g.standard_normal(bias.shape)                      # (nH, 49, 49), summed over windows
dtable = relative_bias_backward(dbias, cache)              # (169, nH)
wrong = np.zeros_like(table)
wrong[idx7.ravel()] += dbias.transpose(1, 2, 0).reshape(-1, nH)
print(f"sum of dbias       {dbias.sum():9.4f}   (what the table must receive)")
print(f"sum of dtable      {dtable.sum():9.4f}   (np.add.at: nothing lost)")
print(f"sum with += fancy  {wrong.sum():9.4f}   (repeats overwritten)")
report = check_op(relative_bias_forward, relative_bias_backward,
                  {"table": g.standard_normal((9, 2))},
                  static={"index": relative_position_index(2)})
print("central-difference check of relative_bias_backward:")
print(report)

# %% [markdown]
# Try it yourself: `minswin exercise start relative_bias_backward`.
#
# ## Questions
#
# * **Why ×(2M − 1) (microsoft/Swin-Transformer#75, #367)?** It turns the 2-D offset into a
#   unique 1-D index (base 2M − 1 digits); 2M − 2 makes different offsets share a row, shown
#   above.
# * **Why (2M − 1)² rows (microsoft/Swin-Transformer#139)?** That is the number of distinct
#   offsets; all are used.
# * **Is the index learned?** No, it is a constant of M; only the table is learned. A
#   checkpoint's `relative_position_index` buffer is checked against minswin's and dropped.
# * **Windows of another size (Swin-B at 384 px uses M = 12)?** The table is interpolated to
#   (2·12 − 1)² rows and the index rebuilt (microsoft/Swin-Transformer#24, #58).

# %% [markdown]
# ## Checks

# %%
assert index_by_hand.tolist() == [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
assert np.array_equal(index_by_hand, relative_position_index(2))
assert not any(len(v) > 1 for v in offsets_by_index(M, 2 * M - 1).values())
assert offsets_by_index(M, 2 * M - 2)[4] == {(0, 1), (1, -1)}
assert collisions_7 > 0
assert len(np.unique(idx7)) == 169 and np.array_equal(uses, expected_uses)
assert uses[6, 6] == 49 and uses[0, 0] == 1
assert set(np.diag(idx7).tolist()) == {centre} and centre == 84
assert np.array_equal(bias, loop)
assert abs(dtable.sum() - dbias.sum()) < 1e-9 and abs(wrong.sum() - dbias.sum()) > 1.0
assert report.passed
print("tutorial 6: all checks passed")
