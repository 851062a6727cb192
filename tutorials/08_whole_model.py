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
# heads. Here we count their parameters (by formula, checked against built models), read their
# cost from `model.flops()`, save and reload a checkpoint, and run a model on an image of
# another size than the one it was built for. `MINSWIN_SMALL=1` skips the slow parts (building
# more models, a full-size forward pass).

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
# Where do Swin-T's parameters sit? Grouped by the part of the model that holds them, as a
# picture: the two wide blocks of stage 4 and the six of stage 3 hold almost all of them;
# stage 1, where the map is largest, holds a sliver (the shares are printed under the figure).

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
ax.bar_label(bars, labels=[f"{n:,}" for n in by_part.values()][::-1], padding=3)
ax.set(xlabel="parameters (millions)", xlim=(0, 1.25 * max(by_part.values()) / 1e6),
       title=f"Swin-T: {sum(by_part.values()):,} parameters, by part")
show(fig, "08_params_by_part.png")
total_t = sum(by_part.values())
share_34 = (by_part["stage 3 blocks"] + by_part["stage 4 blocks"]) / total_t
share_1 = by_part["stage 1 blocks"] / total_t
print(f"stages 3 and 4 blocks: {share_34:.1%} of {total_t:,}; stage 1 blocks: {share_1:.2%}; "
      f"stage 4's width C = {model_t.config.num_features}")

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
# A model runs on an image of another size than the one it was built for (Swin-T at 224 px on
# a 200×260 image; in small mode a smaller pair, printed below): the image is padded to a
# multiple of the patch size, each block pads its map to a multiple of M, odd maps are padded
# before merging. Parameters do not depend on the input size, only the padding and masks do.

# %%
if SMALL:
    net, size, (hh, ww) = small_model, 32, (28, 44)
else:
    net, size, (hh, ww) = model_t, 224, (200, 260)
logits, trace = net.trace(g.standard_normal((1, hh, ww, 3)).astype(np.float32))
stage_maps = [dict(trace)[f"layers.{i}.blocks.0"][1:3] for i in range(len(net.layers))]
print(f"{hh}x{ww} image on a {size}-px model: stage maps {stage_maps}, logits {logits.shape}")

# %% [markdown]
# ## Weights from transformers, and where it parts from minswin at 200×260
#
# `minswin.from_pretrained(folder)` reads a Hugging Face folder (`config.json` +
# `model.safetensors`, as `save_pretrained` or the hub writes it), a timm folder, or one minswin
# wrote; it builds the model the config describes and loads the weights strictly. Here
# transformers writes a small Swin-T-shaped model (width 16, two blocks per stage, window 7)
# and we compare the logits, in float64, at three sizes. transformers decides each block's
# window and shift at run time, from the *unpadded* map: when the map is no bigger than the
# window on its shorter side, the window becomes that side and the shift 0
# (`set_shift_and_window_size`). minswin does that only at the model's own size (the official
# rule) and pads elsewhere, switching the shift off per axis where one window covers the padded
# axis (torchvision). The rules agree at 224 and at 256×320 and part at 200×260: the cells
# below print how far apart the logits are at each size and assert it (round-off where the
# rules agree, far more where they do not).
# (This section needs torch and transformers, minswin's test oracles; without them it says so
# and stops. tests/test_folders.py checks the same facts.)

# %%
SIZES = ((224, 224), (256, 320), (200, 260))               # where the logits are compared
try:
    import torch
    import transformers
    transformers.SwinForImageClassification                # imports the model's dependencies
except (ImportError, RuntimeError) as err:
    transformers = None
    print(f"skipped: transformers cannot be used here ({type(err).__name__}: {err})")

# %%
def hf_logits(folder, x):
    """transformers' logits for x (B, H, W, 3): a fresh model per call, since a transformers
    Swin keeps the window/shift it decided at the first size it saw."""
    net = transformers.SwinForImageClassification.from_pretrained(folder).eval().double()
    with torch.no_grad():
        return net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).logits.numpy(), net


gh = minswin.backend.rng(8)                                 # this section's own draws
if transformers is not None:
    torch.manual_seed(0)
    hf_cfg = transformers.SwinConfig(embed_dim=16, depths=[2, 2, 2, 2], num_heads=[2, 2, 4, 4],
                                     num_labels=10)
    hf_net = transformers.SwinForImageClassification(hf_cfg)
    with torch.no_grad():                        # biases and tables start at 0: give them values
        for k, p in hf_net.named_parameters():
            if k.endswith(("bias", "bias_table")):
                p.normal_(0, 0.5)
    hf_dir = os.path.join(workdir, "hf-swin")
    hf_net.save_pretrained(hf_dir)
    hf_model = minswin.from_pretrained(hf_dir, dtype="float64")
    gaps = {}
    for hw in SIZES:
        xs = gh.standard_normal((2, *hw, 3))
        gaps[hw] = np.abs(hf_model.forward(xs) - hf_logits(hf_dir, xs)[0]).max()
        print(f"{hw[0]}x{hw[1]}: max |minswin - transformers| = {gaps[hw]:.1e}")

# %% [markdown]
# Why 200×260 differs: the stage maps (printed below) end with a last map whose shorter side
# equals M = 7. There transformers takes the window to be that side, so its shifted blocks use
# **no shift**, on the unpadded map padded to a multiple of 7. minswin pads it the same way,
# but the padded width is two windows, so it keeps the shift along the width (torchvision's
# rule; along the height one window covers the rows and the shift is 0). Make minswin's
# stage-4 blocks take transformers' decision and the difference goes away: that rule is the
# whole difference.

# %%
maps_200 = [(-(-200 // (4 * 2 ** i)), -(-260 // (4 * 2 ** i))) for i in range(4)]
print("stage maps of a 200x260 image (each side rounded up):", maps_200)
assert maps_200[-1][0] == 7 < maps_200[-1][1]
if transformers is not None:
    from minswin.ops.masks import forward_window_shift
    xs = gh.standard_normal((2, 200, 260, 3))
    ref, net_after = hf_logits(hf_dir, xs)
    last = hf_model.layers[3].blocks[1]
    print("stage 4 on 7x9, minswin (padded, shift):", last.window_shift_for(7, 9),
          "| transformers (window, shift):",
          (net_after.swin.encoder.layers[3].blocks[1].window_size,
           net_after.swin.encoder.layers[3].blocks[1].shift_size))
    before_fix = np.abs(hf_model.forward(xs) - ref).max()
    for blk in hf_model.layers[3].blocks:                    # transformers' decision on 7x9
        blk.window_shift_for = lambda H, W: forward_window_shift(H, W, 7, 0)
    after_fix = np.abs(hf_model.forward(xs) - ref).max()
    for blk in hf_model.layers[3].blocks:
        del blk.window_shift_for                             # back to minswin's own rule
    print(f"200x260: {before_fix:.1e} with minswin's rule, {after_fix:.1e} with transformers'")

# %% [markdown]
# Two more consequences of deciding at run time. The decision is *kept*: the transformers model
# that just saw 200×260 has switched stage 4's shift off for good, so at 256×320 (where a
# fresh model shifts in stage 4) it now gives other logits than a fresh one. And a map
# smaller than the window (100×132 gives a stage-4 map smaller than 7×7) shrinks the window
# while the bias table is still the 7×7 window's: transformers stops with an error; minswin
# pads the map to 7×7 and runs.

# %%
if transformers is not None:
    xs = gh.standard_normal((1, 256, 320, 3))
    with torch.no_grad():
        stale = net_after(torch.from_numpy(xs.transpose(0, 3, 1, 2).copy())).logits.numpy()
    fresh = hf_logits(hf_dir, xs)[0]
    kept = np.abs(stale - fresh).max()
    print(f"256x320 after 200x260: the kept decision moves transformers' logits by {kept:.1e}")
    xs = gh.standard_normal((1, 100, 132, 3))
    try:
        hf_logits(hf_dir, xs)
        crashed = None
    except RuntimeError as err:
        crashed = str(err).splitlines()[0]
    print(f"100x132: transformers raises {crashed!r}; minswin gives logits of shape "
          f"{hf_model.forward(xs).shape}")
    assert gaps[(224, 224)] < 1e-12 and gaps[(256, 320)] < 1e-12 and gaps[(200, 260)] > 1e-3
    assert after_fix < 1e-12 < before_fix and kept > 1e-3 and crashed


# %% [markdown]
# ## Questions
#
# * **Why 28,288,354 and not "28M"?** The README rounds; the exact count includes the
#   relative position tables, every bias and every LayerNorm.
# * **Why does stage 4's table have (2M − 1)² rows even though its window shrank?** It does
#   not shrink at 224: the map is 7×7, equal to M = 7. At 384 px with M = 12 it is 12×12.
# * **Input sizes not divisible by 32 or by M?** Padded at the bottom and right, as
#   torchvision and the official detection backbone do, so that every size runs; the official
#   classifier would refuse them (microsoft/Swin-Transformer#155, #202).
# * **Can I load timm or torchvision weights?** Yes, `load_state_dict` maps their key names
#   to the official ones.

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
assert share_34 > 0.85 and share_1 < 0.01
if not SMALL:
    assert stage_maps == [(50, 65), (25, 33), (13, 17), (7, 9)] and logits.shape == (1, 1000)
else:
    assert stage_maps == [(7, 11), (4, 6)] and logits.shape == (1, 10)
print("tutorial 8: all checks passed")
