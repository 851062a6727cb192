# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 2. Patch embedding: 4×4×3 = 48 numbers per token
#
# Swin's first step cuts an H×W×3 image into non-overlapping 4×4 patches. One patch holds
# 4 · 4 · 3 = 48 numbers, so the image becomes an (H/4)×(W/4) grid of 48-vectors
# ("patch partition"), and one linear layer maps each 48-vector to C numbers ("linear
# embedding"). The official code does both in one go with a convolution whose kernel and
# stride are both 4. This tutorial checks, with arrays, that the three descriptions — slice
# and flatten, matrix product, strided convolution — are the same computation.

# %%
import numpy as np
from matplotlib.figure import Figure

from minswin.backend import rng
from minswin.gradcheck import check_op
from minswin.ops.patch_embed import patch_embed_backward, patch_embed_forward, patchify
from minswin.viz import show

g = rng(0)

# %% [markdown]
# ## One patch, flattened
#
# minswin keeps images channels-last, `(B, H, W, 3)`. The conv weight of the official
# checkpoint is `(C, 3, 4, 4)`, i.e. (output channel, input channel, kernel row, kernel
# column), so a patch is flattened in the order (channel, row, column) to line up with
# `weight.reshape(C, 48)`.

# %%
img = g.standard_normal((1, 8, 12, 3))                     # (B, H, W, 3): a 2x3 grid of patches
p = 4
patch = img[0, 4:8, 8:12, :]                               # (4, 4, 3): patch at grid (1, 2)
vec = patch.transpose(2, 0, 1).reshape(-1)                 # (48,) in (c, kh, kw) order
grid = patchify(img, p)                                    # (1, 2, 3, 48)
print("patch vector length:", vec.size, "  grid of patches:", grid.shape[1:3])
print("minswin's patchify gives the same vector:", np.array_equal(grid[0, 1, 2], vec))

# %% [markdown]
# Where each of the 48 numbers comes from, as a picture: the patch's three colour planes,
# each pixel labelled with its position in the vector. All of red first (0..15, row by row),
# then green (16..31), then blue (32..47): the order of the conv weight's (3, 4, 4).

# %%
position = np.arange(48).reshape(3, p, p)                  # (c, kh, kw) -> place in vec
print("places in the vector:", ", ".join(f"{name} {position[c].min()}..{position[c].max()}"
                                         for c, name in enumerate(("red", "green", "blue"))))
fig = Figure(figsize=(10, 4.4), layout="constrained")
for c, (ax, colour) in enumerate(zip(fig.subplots(1, 3), ("Reds", "Greens", "Blues"))):
    ax.imshow(patch[:, :, c], cmap=colour)
    for (r, q), k in np.ndenumerate(position[c]):
        ax.text(q, r, str(k), ha="center", va="center", fontsize=12, fontweight="bold",
                bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))
    ax.set(title=f"channel {c}: vector[{16 * c}..{16 * c + 15}]", xticks=range(p),
           yticks=range(p), xlabel="kernel column kw", ylabel="kernel row kh")
fig.suptitle("One 4x4x3 patch: where each pixel lands in its 48-number vector")
show(fig, "02_patch_vector.png")

# %% [markdown]
# ## Linear embedding = strided convolution
#
# A convolution with kernel 4 and stride 4 visits every patch exactly once and takes a dot
# product of the 48 patch numbers with each of its C filters. That is the linear layer
# `patch @ W.reshape(C, 48).T + b`. Below, a literal loop convolution (as a textbook writes
# it) against minswin's `patch_embed_forward`, which is a reshape and one matrix product.

# %%
C = 8
weight = g.standard_normal((C, 3, p, p))                   # (C, 3, 4, 4) conv layout
bias = g.standard_normal(C)


def conv_loops(image, weight, bias, stride):
    """out[i, j, o] = b[o] + sum over c, kh, kw of w[o, c, kh, kw] * image[S*i+kh, S*j+kw, c]"""
    H, W, _ = image.shape
    Co, Ci, K, _ = weight.shape
    out = np.zeros(((H - K) // stride + 1, (W - K) // stride + 1, Co))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            for o in range(Co):
                acc = bias[o]
                for c in range(Ci):
                    for kh in range(K):
                        for kw in range(K):
                            pixel = image[stride * i + kh, stride * j + kw, c]
                            acc += weight[o, c, kh, kw] * pixel
                out[i, j, o] = acc
    return out


ours, _ = patch_embed_forward(img, weight, bias, patch=p)  # (1, 2, 3, C)
loops = conv_loops(img[0], weight, bias, stride=p)         # (2, 3, C)
matmul = grid @ weight.reshape(C, -1).T + bias             # (1, 2, 3, C)
err_conv = np.abs(ours[0] - loops).max()
err_matmul = np.abs(ours - matmul).max()
print(f"max |patch_embed - loop conv|: {err_conv:.1e}   max |patch_embed - patch @ W.T|: "
      f"{err_matmul:.1e}")

# %% [markdown]
# The matrix form is why minswin does not need a convolution routine at all: patch
# embedding is `patchify` (a reshape and a transpose) and a `linear_forward`.
#
# ## Sizes that are not multiples of 4
#
# The official classifier only accepts its own `img_size`. minswin follows the detection
# backbone: zero-pad the image at the bottom and right up to a multiple of 4 first. An
# 18×18 image becomes 20×20, a 5×5 grid of tokens.

# %%
odd = g.standard_normal((1, 18, 18, 3))
out_odd, _ = patch_embed_forward(odd, weight, bias, patch=p)
padded = np.pad(odd[0], ((0, 2), (0, 2), (0, 0)))          # (20, 20, 3)
err_pad = np.abs(out_odd[0] - conv_loops(padded, weight, bias, p)).max()
print("18x18 image ->", out_odd.shape[1:3], f"grid; vs loop conv on the padded image: "
      f"{err_pad:.1e}")

# %% [markdown]
# In the model a LayerNorm over C follows the projection (`patch_embed.norm`), then the
# first stage starts.
#
# ## The backward pass
#
# Backward undoes the three steps in reverse: the linear layer's backward gives the
# gradient of every patch vector, `unpatchify` puts the 48 numbers back in their pixels, and
# the padding is cropped away. A float64 central-difference check:

# %%
report = check_op(patch_embed_forward, patch_embed_backward,
                  {"x": g.standard_normal((1, 6, 8, 3)), "weight": weight.copy(),
                   "bias": bias.copy()}, static={"patch": p})
print("central-difference check of patch_embed_backward:")
print(report)

# %% [markdown]
# ## Questions
#
# * **Is the stem a convolution or a linear layer?** Both, exactly: the loop conv above and
#   the matrix product agree to round-off. The checkpoint keeps the conv layout
#   `(C, 3, 4, 4)` (`patch_embed.proj.weight`).
# * **Patch merging is also "a 2×2 conv", isn't it?** Only its final Linear is; the
#   LayerNorm over each 2×2 cell comes first (tutorial 3).
# * **Sizes not divisible by 4 (or by the window)?** Padding at the bottom/right, here and
#   before every window partition (tutorials 5 and 8).

# %% [markdown]
# ## Checks

# %%
assert vec.size == 4 * 4 * 3 == 48
assert grid.shape == (1, 2, 3, 48)
assert err_conv < 1e-12 and err_matmul < 1e-12 and err_pad < 1e-12
assert out_odd.shape == (1, 5, 5, C)
assert report.passed and report.max_rel_error < 1e-8
print("tutorial 2: all checks passed")
