# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 1. From ViT to Swin: a pyramid of feature maps
#
# A Vision Transformer cuts the image into 16×16 patches once and keeps that single grid in
# every layer: 224×224 pixels become 14×14 = 196 tokens, and every token attends to every
# other one. That is fine for classification, but detection and segmentation want what
# convolutional networks have always given them: fine maps early, coarse maps late.
#
# Swin keeps the transformer block but changes two things:
#
# * **a hierarchy.** The first tokens are small 4×4 patches (a 56×56 grid at 224 px). After
#   each stage a *patch merging* layer joins 2×2 neighbours, so the maps are 4×, 8×, 16× and
#   32× smaller than the image, while the width doubles: C, 2C, 4C, 8C;
# * **local attention.** A token only attends inside its M×M window (M = 7), so the cost
#   grows linearly with the number of tokens, not with its square. Every second block shifts
#   the windows by M/2 so that information crosses window borders (tutorial 5).
#
# This tutorial walks real arrays through Swin-T and reads every shape off the model.
# Run it as `python tutorials/01_from_vit_to_swin.py`; `MINSWIN_SMALL=1` uses a 64×64 input
# instead of 224×224 so that it finishes in a few seconds.

# %%
import os

import numpy as np

import minswin
from minswin.viz import normalise, plot_hierarchy, sample_image, show

SMALL = os.environ.get("MINSWIN_SMALL") == "1"

# %% [markdown]
# ## The configuration
#
# Swin-T is four stages of (2, 2, 6, 2) blocks with (3, 6, 12, 24) heads, width C = 96,
# patch 4, window 7. From the configuration alone we can predict every stage's map.

# %%
cfg = minswin.get_config("swin_t")
print("swin_t config:", cfg.as_dict())
grid = cfg.img_size // cfg.patch_size                      # 56 tokens per side after the stem
print(f"{'stage':>5} {'map':>7} {'down':>5} {'width':>6} {'heads':>5} {'windows':>7}")
predicted = []
for i, depth in enumerate(cfg.depths):
    side = grid // 2 ** i
    width = cfg.embed_dim * 2 ** i
    M = min(cfg.window_size, side)                         # the official shrink rule (stage 4)
    windows = (side // M) ** 2
    predicted.append((side, width))
    print(f"{i + 1:>5} {side:>3}x{side:<3} {cfg.img_size // side:>4}x {width:>6} "
          f"{cfg.num_heads[i]:>5} {windows:>7}")

# %% [markdown]
# ## The shape walk, with real arrays
#
# `model.trace(x)` runs the forward and returns `(name, output shape)` for every module.
# Images are channels-last, `(B, H, W, 3)`; between modules a feature map is `(B, H, W, C)`.
# No backward follows, so the forward runs inside `minswin.no_grad()`: it keeps none of the
# caches a backward would read (as `torch.no_grad()` does in PyTorch).

# %%
size = 64 if SMALL else 224
model = minswin.create_model("swin_t")                     # float32, random weights
photo = sample_image(size)                                 # (size, size, 3) in [0, 1]
x = normalise(photo)[None].astype(np.float32)              # (1, size, size, 3)
with minswin.no_grad():
    logits, trace = model.trace(x)
print(f"{'module':<22} output shape (B, H, W, C)")
for name, shape in trace:
    print(f"{name:<22} {shape}")
p = cfg.patch_size
print(f"one patch: {p}x{p}x3 = {p * p * 3} numbers -> a vector of C = {cfg.embed_dim}")

# %% [markdown]
# Read the trace from the top:
#
# * `patch_embed`: every 4×4×3 = 48-number patch becomes a C = 96 vector (tutorial 2);
# * each `layers.i.blocks.j` keeps the shape: attention and MLP only mix information;
# * each `layers.i.downsample` halves the side and doubles the width (tutorial 3);
# * `norm`, `avgpool` (mean over all final tokens) and `head` give the 1000 logits.
#
# The same model accepts any input size: the stages are always size/4, /8, /16, /32.

# %%
shapes = dict(trace)
strides = []
for i in range(cfg.num_layers):
    B, H, W, C = shapes[f"layers.{i}.blocks.{cfg.depths[i] - 1}"]
    strides.append(size // H)
    print(f"stage {i + 1}: {H}x{W}x{C}  = image / {size // H}")

# %% [markdown]
# ## ViT against Swin, in numbers
#
# One attention layer of ViT-B/16 at 224 px compares 196 tokens with 196 tokens. Swin-T's
# first stage has 16 times more tokens (3136), but each one is compared with only the 49
# tokens of its window.

# %%
vit_tokens = (224 // 16) ** 2
swin_tokens = (224 // 4) ** 2
print(f"ViT-B/16: {vit_tokens} tokens, {vit_tokens} keys per query, "
      f"{vit_tokens ** 2:,} scores per head")
print(f"Swin-T stage 1: {swin_tokens} tokens, {cfg.window_size ** 2} keys per query, "
      f"{swin_tokens * cfg.window_size ** 2:,} scores per head")
print(f"global attention over the same 3136 tokens would need {swin_tokens ** 2:,}")

# %% [markdown]
# The same walk as a picture: each stage's map drawn to scale, with its shape and window grid.

# %%
show(plot_hierarchy(model, trace, photo, "Swin-T"), "01_hierarchy.png")

# %% [markdown]
# ## Questions
#
# * **Why is the last stage 7×7 with a 7×7 window and no shift?** At 224 px the last map is
#   7×7, no bigger than the window, so the official code makes the window the whole map and
#   switches the shift off: one window, plain global attention. A shifted grid would only
#   roll the single window onto itself.
# * **What if the image size is not a multiple of 32 (or the maps not of M)?** The official
#   classifier refuses it. minswin, like torchvision and the detection backbone, pads: the
#   image to a multiple of 4, each block's map to a multiple of M, odd maps before merging.
#   Tutorial 8 runs the model on an image whose sides are not multiples of 32.
# * **What is the pyramid for?** Dense tasks. `create_model(name, features_only=True)` returns
#   the map of every stage (timm's names: `out_indices`, `feature_info`) and its backward takes
#   a gradient for each; tutorial 12 trains a feature-pyramid head on them to segment digit
#   canvases pixel by pixel, and measures the pyramid against the last stage alone.
# * **Is the stem a convolution or a linear layer?** Both: tutorial 2.
# * **Why 9 regions when a shifted map could be cut into 4?** Tutorial 5.

# %% [markdown]
# ## Checks

# %%
assert shapes["patch_embed"] == (1, size // 4, size // 4, 96)
if not SMALL:
    assert [shapes[f"layers.{i}.blocks.{d - 1}"][1:] for i, d in enumerate(cfg.depths)] == \
        [(56, 56, 96), (28, 28, 192), (14, 14, 384), (7, 7, 768)]
    assert predicted == [(56, 96), (28, 192), (14, 384), (7, 768)]
    assert [b.window_size for _, b in model.blocks()][-1] == 7
    assert model.layers[3].blocks[1].shift_size == 0      # stage 4: one window, no shift
assert strides == [4, 8, 16, 32]
assert [shapes[f"layers.{i}.downsample"][-1] for i in range(3)] == [192, 384, 768]
assert logits.shape == (1, 1000) and np.all(np.isfinite(logits))
assert len(trace) == 1 + sum(cfg.depths) + 3 + 3           # embed, blocks, merges, tail
print("tutorial 1: all checks passed")
