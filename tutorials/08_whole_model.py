# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 8. The whole model: sizes, costs, checkpoints, any input size
#
# Swin-T, -S, -B and -L differ only in the width C, the depth of stage 3 and the number of
# heads. Here we count their parameters (by formula, checked against built models), read
# their cost from `model.flops()`, save and reload a checkpoint, and run the 224-px model on
# an image of another size. `MINSWIN_SMALL=1` skips the slow parts (building more models,
# a full-size forward pass).

# %%
import os
import tempfile

import numpy as np
from matplotlib.figure import Figure

import minswin
from minswin.flops import model_flops
from minswin.viz import show

SMALL = os.environ.get("MINSWIN_SMALL") == "1"
g = minswin.backend.rng(0)

# %% [markdown]
# ## The four configurations

# %%
NAMES = ("swin_t", "swin_s", "swin_b", "swin_l")
print("the four configurations (width C, blocks per stage, heads per stage, window M):")
for name in NAMES:
    c = minswin.get_config(name)
    print(f"{name}: C={c.embed_dim:<3} depths={c.depths}  heads={c.num_heads}  M={c.window_size}")

# %% [markdown]
# ## Counting parameters
#
# Per block of width C with n heads and window M: two LayerNorms (2·2C), the relative
# position table ((2M−1)²·n), qkv (3C·C + 3C), proj (C·C + C), and the MLP
# (C·4C + 4C + 4C·C + C). Per merge: LayerNorm(4C) and a 4C → 2C matrix. Plus the stem
# (conv 48·C + C, LayerNorm), the final LayerNorm and the head.

# %%
def count_params(c):
    g_side = c.img_size // c.patch_size
    hidden = int(c.embed_dim * c.mlp_ratio)
    total = c.embed_dim * c.in_chans * c.patch_size ** 2 + c.embed_dim + 2 * c.embed_dim
    for i, (depth, heads) in enumerate(zip(c.depths, c.num_heads)):
        C = c.embed_dim * 2 ** i
        M = min(c.window_size, g_side // 2 ** i)           # shrink rule: the last stage at 224
        hid = hidden * 2 ** i
        block = (2 * 2 * C + (2 * M - 1) ** 2 * heads + 3 * C * C + 3 * C + C * C + C
                 + C * hid + hid + hid * C + C)
        total += depth * block
        if i < c.num_layers - 1:
            total += 2 * 4 * C + 4 * C * 2 * C
    F = c.num_features
    return total + 2 * F + F * c.num_classes + c.num_classes


model_t = minswin.create_model("swin_t")                   # float32, random weights
built = {"swin_t": model_t.num_params()}
for name in ("swin_micro",) + (() if SMALL else ("swin_s",)):
    built[name] = minswin.create_model(name).num_params()
for name in built:
    formula = count_params(minswin.get_config(name))
    print(f"{name}: built model {built[name]:,}  formula {formula:,}")
counts = {name: count_params(minswin.get_config(name)) for name in NAMES}
for name, n in counts.items():
    print(f"{name}: {n:>12,} parameters")


# %% [markdown]
# Where do Swin-T's 28 million parameters sit? Grouped by the part of the model that holds
# them, as a picture: the two wide blocks of stage 4 (C = 768) and the six of stage 3 hold
# almost nine tenths; stage 1, where the map is largest, holds less than 1%.

# %%
def params_by_part(model):
    """{part: parameter count}, parts in forward order: stem, each stage's blocks and merge,
    final norm + head."""
    parts = {}
    for key, v in model.params.items():
        if key.startswith("layers."):
            i, kind = key.split(".")[1], key.split(".")[2]
            part = f"stage {int(i) + 1} " + ("blocks" if kind == "blocks" else "merge")
        else:
            part = "stem" if key.startswith("patch_embed") else "norm + head"
        parts[part] = parts.get(part, 0) + int(v.size)
    return parts


by_part = params_by_part(model_t)
fig = Figure(figsize=(8, 3.4), layout="constrained")
ax = fig.subplots()
bars = ax.barh(list(by_part)[::-1], [n / 1e6 for n in by_part.values()][::-1], color="#4c72b0")
ax.bar_label(bars, labels=[f"{n / 1e6:.2f} M" for n in by_part.values()][::-1], padding=3)
ax.set(xlabel="parameters (millions)", xlim=(0, 1.2 * max(by_part.values()) / 1e6),
       title=f"Swin-T: {sum(by_part.values()):,} parameters, by part")
show(fig, "08_params_by_part.png")

# %% [markdown]
# ## Cost: `model.flops()`
#
# The official count (multiply-adds of the matrix products, the stem and the LayerNorms;
# tutorial 4). `model.flops()` only reads the configuration, through
# `minswin.flops.model_flops`, so we can ask it for the big models without building them.

# %%
gflops = {name: model_flops(minswin.get_config(name)) / 1e9 for name in NAMES}
for name, v in gflops.items():
    print(f"{name}: {v:.3f} GMACs")
print("swin_t by part (GMACs):",
      {k: round(v / 1e9, 4) for k, v in model_t.flops_breakdown().items()})

# %% [markdown]
# ## Save and load a checkpoint
#
# `state_dict()` maps the official key names to arrays; `save_checkpoint` writes them as
# `.safetensors` (or `.npz`), never as a pickle. A model built with another seed gives
# different logits until it loads the file.

# %%
workdir = tempfile.mkdtemp(prefix="minswin-tutorial-")
small_model = minswin.create_model("swin_micro", num_classes=10, seed=1)
x = g.standard_normal((2, 32, 32, 3)).astype(np.float32)
ref = small_model.forward(x)
path = os.path.join(workdir, "micro.safetensors")
minswin.save_checkpoint(path, small_model.state_dict(), metadata={"name": "swin_micro"})
other = minswin.create_model("swin_micro", num_classes=10, seed=2)
before = np.abs(other.forward(x) - ref).max()
state = minswin.load_checkpoint(path)
other.load_state_dict(state)
after = np.abs(other.forward(x) - ref).max()
print(f"{len(state)} tensors; logits differ by {before:.2e} before loading, {after:.1e} after")
print("first keys:", list(state)[:4])
keys_t = len(model_t.state_dict())
print("Swin-T has", keys_t, "parameter tensors (official checkpoints add 12 index and 5 mask "
      "buffers, which minswin recomputes)")

# %% [markdown]
# ## Any input size
#
# The 224-px model runs on a 200×260 image: the image is padded to a multiple of 4
# (50×65 tokens), each block pads its map to a multiple of 7, odd maps are padded before
# merging. Parameters do not depend on the input size, only the padding and masks do.

# %%
if SMALL:
    net, size, (hh, ww) = small_model, 32, (28, 44)
else:
    net, size, (hh, ww) = model_t, 224, (200, 260)
trace = []
logits = net.forward(g.standard_normal((1, hh, ww, 3)).astype(np.float32), trace=trace)
stage_maps = [dict(trace)[f"layers.{i}.blocks.0"][1:3] for i in range(len(net.layers))]
print(f"{hh}x{ww} image on a {size}-px model: stage maps {stage_maps}, logits {logits.shape}")

# %% [markdown]
# ## Questions
#
# * **Why 28,288,354 and not "28M"?** The README rounds; the exact count includes the
#   relative position tables, every bias and every LayerNorm.
# * **Why does stage 4's table have 169 rows even though its window shrank?** It does not
#   shrink at 224: the map is 7×7, equal to M = 7. At 384 px with M = 12 it is 12×12.
# * **Input sizes not divisible by 32 or by M?** Padded (SPEC §13, torchvision/det
#   semantics); the official classifier would refuse them (issues #155, #202).
# * **Can I load timm or torchvision weights?** Yes, `load_state_dict` maps their key names
#   (SPEC §11).

# %% [markdown]
# ## Checks

# %%
assert all(built[n] == count_params(minswin.get_config(n)) for n in built)
assert built["swin_t"] == counts["swin_t"] == 28_288_354
assert counts["swin_s"] == 49_606_258 and counts["swin_b"] == 87_768_224
assert counts["swin_l"] == 196_532_476
assert model_t.flops() == model_flops(model_t.config)
assert [round(gflops[n], 1) for n in ("swin_t", "swin_s", "swin_b")] == [4.5, 8.7, 15.4]
assert sum(model_t.flops_breakdown().values()) == model_t.flops()
assert before > 1e-3 and after == 0.0
assert keys_t == 173
assert sum(by_part.values()) == 28_288_354 and max(by_part, key=by_part.get) == "stage 4 blocks"
assert by_part["stage 3 blocks"] + by_part["stage 4 blocks"] > 0.85 * 28_288_354
if not SMALL:
    assert stage_maps == [(50, 65), (25, 33), (13, 17), (7, 9)] and logits.shape == (1, 1000)
else:
    assert stage_maps == [(7, 11), (4, 6)] and logits.shape == (1, 10)
print("tutorial 8: all checks passed")
