# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 12. Swin as a backbone: a pyramid of features for a dense task
#
# The explainer this project grew from makes one claim for Swin above the others: its
# hierarchical feature maps, fine early and coarse late like a CNN's, serve segmentation and
# detection, where ViT's single grid serves classification only. Tutorial 1 showed the
# pyramid's shapes. Here we *use* it:
#
# 1. ask a Swin for the map of every stage (`features_only=True`, timm's names) and send a
#    gradient back into each;
# 2. build a small dense task from the digits minswin already has: canvases with a few
#    digits on them, every pixel labelled with its digit or background;
# 3. write a light feature-pyramid head on the plain tier (1×1 projections, nearest-neighbour
#    upsampling with its hand-written backward, a per-pixel classifier), and a head that sees
#    the last stage only;
# 4. train both with minswin's own backward and measure the claim: mean IoU and per-class IoU
#    on canvases made of digits the model has never seen.
#
# `MINSWIN_SMALL=1` loads the two trained segmenters that ship with minswin instead of
# training them, and trains a fresh one for a few steps only.

# %%
import inspect
import os
import tempfile
import time

import numpy as np
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits  # installed with scikit-learn

import minswin
from minswin.gradcheck import TOL_MODEL, check_module, check_op
from minswin.ops.upsample import upsample_backward, upsample_forward
from minswin.optim import AdamW
from minswin.segment import CLASSES, create_segmenter
from minswin.segment.canvases import make_canvases
from minswin.segment.metrics import iou_per_class, pixel_cross_entropy, pixel_cross_entropy_backward
from minswin.segment.pretrained import pretrained_segmenter, segmenter_info
from minswin.segment.train import (
    evaluate_segmenter,
    make_segment_config,
    segment_data,
    train_segmenter,
)
from minswin.viz import show

SMALL = os.environ.get("MINSWIN_SMALL") == "1"

# %% [markdown]
# ## 1. The stage maps
#
# `create_model(..., features_only=True)` builds the backbone without the final norm and the
# head, and its forward returns one NHWC map per stage in `out_indices`. `feature_info` says
# what each is, in timm's words: its width (`num_chs`) and how many pixels one of its cells
# covers (`reduction`). The backbone we use, `swin_canvas`, is `swin_digits` (tutorial 10)
# with a third stage, on 32×32 canvases with 2×2 patches.

# %%
backbone = minswin.create_model("swin_canvas", features_only=True)
print("feature_info:", list(backbone.feature_info))
x0 = np.zeros((1, 32, 32, 3), np.float32)
maps = backbone.forward(x0)
for info, m in zip(backbone.feature_info, maps):
    print(f"{info['module']}: map {m.shape[1]}x{m.shape[2]}, width {m.shape[3]}, one cell = "
          f"{info['reduction']}x{info['reduction']} pixels")
print("parameters with a gradient:", len(backbone.params), "(no final norm, no head)")

# %% [markdown]
# Stage i's map feeds two things: the output, and the patch merging into stage i+1. So on the
# way back its gradient is the sum of the gradient that arrives from the loss and the one that
# comes down through the merging; a map the loss does not use gets `None`. The float64
# gradient check below sends gradients into every stage at once (a small width, so it runs in
# seconds); `check_module` tries one random direction for dx and for each parameter, and a
# whole model passes below gradcheck's `TOL_MODEL`.

# %%
small = minswin.create_model("swin_canvas", features_only=True, dtype="float64",
                             img_size=(8, 12), embed_dim=6, num_heads=(1, 2, 2),
                             drop_path_rate=0.0).eval()
xs = np.random.default_rng(0).standard_normal((1, 8, 12, 3))
outs = small.forward(xs)
print("maps of an 8x12 image (non-square sizes work too):", [o.shape for o in outs])
dmaps = [np.ones_like(outs[0]), None, np.ones_like(outs[2])]
dx = small.backward(dmaps)
print("dx:", dx.shape, "from gradients at stages 0 and 2")


class SumOfMaps:
    """L = sum_k <u_k, map_k(x)> as a module, for check_module's directional test."""

    def __init__(self, net):
        self.net, self.params, self.grads, self.training = net, net.params, net.grads, False

    def forward(self, x):
        return np.concatenate([m.ravel() for m in self.net.forward(x)])

    def backward(self, dflat):
        shapes = self.net.cache
        dm, start = [], 0
        for i in self.net.out_indices:
            n = int(np.prod(shapes[i]))
            dm.append(dflat[start:start + n].reshape(shapes[i]))
            start += n
        return self.net.backward(dm)

    def zero_grad(self):
        self.net.zero_grad()


pyramid_check = check_module(SumOfMaps(small), xs, title="features_only backbone")
print(f"worst relative error over dx and {len(small.params)} parameters: "
      f"{pyramid_check.max_rel_error:.1e}")

# %% [markdown]
# ## 2. A dense task made of digits
#
# A canvas is 32×32 black pixels. One to three digits are drawn for it, each an 8×8
# scikit-learn digit resized to 16×16 (the size `swin_digits` was trained at), and each is
# pasted at a random place where it overlaps none of those already there; a digit that finds
# no room is left out, so on so small a canvas most hold one digit and some two (the counts
# are printed below). A pixel brighter than 0.3 is a stroke and is labelled 1 + its digit;
# every other pixel is background (label 0). The training and validation canvases use the
# training digits; the test canvases use the held-out digits (the same split as tutorial 10).

# %%
t0 = time.perf_counter()
cfg = make_segment_config("canvas", n_train=200 if SMALL else None)   # the runs' recipe
ds = segment_data(cfg)            # normalised as swin_digits' training images were
n_train = len(ds.train.y)
defaults = {k: v.default for k, v in inspect.signature(make_canvases).parameters.items()
            if v.default is not inspect.Parameter.empty}
print(f"{len(ds.train.y)} train / {len(ds.val.y)} val / {len(ds.test.y)} test canvases of "
      f"{ds.train.x.shape[1]}x{ds.train.x.shape[2]}, {len(CLASSES)} classes, built in "
      f"{time.perf_counter() - t0:.1f} s")
print("canvas recipe:", {k: defaults[k] for k in ("size", "digit", "max_digits", "threshold")})
count = np.array([len(np.unique(y)) - 1 for y in ds.train.y])   # distinct digits per canvas
print("digits per training canvas:", {int(k): int((count == k).sum()) for k in np.unique(count)})
share = np.bincount(ds.train.y.ravel(), minlength=len(CLASSES)) / ds.train.y.size
print(f"background is {100 * share[0]:.1f}% of the training pixels; each digit class "
      f"{100 * share[1:].min():.1f}% to {100 * share[1:].max():.1f}%")


def label_image(y):
    """(H, W) labels -> (H, W, 3) colours: background black, each digit its own colour."""
    from matplotlib import colormaps
    colours = np.vstack([[0, 0, 0], colormaps["tab10"](np.arange(10))[:, :3]])
    return colours[y]


shown = list(np.flatnonzero(count == 1)[:3]) + list(np.flatnonzero(count == 2)[:2])
fig = Figure(figsize=(10, 4.2))
axes = fig.subplots(2, 5)
for j, n in enumerate(shown):
    axes[0, j].imshow(ds.train.x[n, ..., 0], cmap="gray")
    axes[1, j].imshow(label_image(ds.train.y[n]))
    digits = sorted({int(v) - 1 for v in np.unique(ds.train.y[n]) if v})
    axes[1, j].set_title(f"digits {digits}", fontsize=9)
for ax in axes.ravel():
    ax.set_xticks([]), ax.set_yticks([])
axes[0, 0].set_ylabel("canvas")
axes[1, 0].set_ylabel("labels")
fig.suptitle("training canvases and their per-pixel labels (colour = digit, black = "
             "background)")
fig.tight_layout()
show(fig, "12_canvases.png")

# %% [markdown]
# ## 3. The upsampling op, forward and backward
#
# A pyramid climbs from coarse to fine by upsampling. Nearest-neighbour upsampling by f copies
# each coarse cell into an f×f block (cropped to the finer map's size); its backward hands each
# coarse cell the *sum* of the gradients of its block. Forward and backward side by side, as
# `minswin/ops/upsample.py` has them:

# %%
print(inspect.getsource(upsample_forward))
print(inspect.getsource(upsample_backward))
up_check = check_op(upsample_forward, upsample_backward,
                    dict(x=np.random.default_rng(1).standard_normal((2, 3, 4, 5))),
                    static=dict(factor=3, size=(8, 11)), title="upsample x3 -> 8x11")
print(up_check)

# %% [markdown]
# To write this backward yourself: `minswin exercise start upsample_backward`, then
# `minswin exercise check upsample_backward ex_upsample_backward.py` (it knows the usual
# mistakes: a mean instead of a sum, blocks gathered with a stride, one copy only).

# %% [markdown]
# ## 4. Two heads on the same backbone
#
# The feature-pyramid head (`minswin/segment/head.py`) projects each stage to D channels with a
# 1×1 projection (a Linear on the channel axis), then walks down from the coarsest map:
#
#     p_2 = lateral_2(f_2)
#     p_1 = lateral_1(f_1) + up2(p_2)
#     p_0 = lateral_0(f_0) + up2(p_1)
#     logits = up2(classifier(p_0))                 (B, 32, 32, 11)
#
# The coarse maps bring *which digit* (a stage-2 cell sees a whole digit); the fine map brings
# *where the strokes are*. The last-stage head is the same classifier on `lateral(f_2)` alone,
# upsampled by the last stage's whole stride. Both backbones start from `swin_digits`' weights
# where the names and shapes match (its two stages), as ImageNet weights start the backbones
# in the paper; stage 2, the merging into it and the heads start random.
#
# The whole segmenter, backbone and head, passes the float64 gradient check:

# %%
tiny = create_segmenter("swin_canvas", head="fpn", dim=4, dtype="float64", backbone_init="",
                        img_size=8, embed_dim=6, num_heads=(1, 2, 2), drop_path_rate=0.0).eval()
seg_check = check_module(tiny, np.random.default_rng(2).standard_normal((1, 8, 8, 3)),
                         title="segmenter (FPN head)")
print(f"segmenter: worst relative error over dx and {len(tiny.params)} parameters "
      f"{seg_check.max_rel_error:.1e}")

# %% [markdown]
# ## 5. Training by hand
#
# The step is classification's with every pixel a row of the cross-entropy:
#
# ```
# logits = model.forward(x)                                    # (B, 32, 32, 11)
# loss, cache = pixel_cross_entropy(logits, y)                 # mean over B*32*32 pixels
# model.backward(pixel_cross_entropy_backward(1.0, cache, logits.shape))
# optimizer.step(model.grads)
# ```
#
# A few steps of it, on one thread, for a fresh FPN segmenter:

# %%
model = create_segmenter("swin_canvas", head="fpn")
model.train()
opt = AdamW(model.params, lr=2e-3, weight_decay=0.05)
steps = 3 if SMALL else 20
losses = []
t0 = time.perf_counter()
with threadpool_limits(1, user_api="blas"):
    for step in range(steps):
        idx = np.arange(step * 16, step * 16 + 16) % n_train
        x, y = ds.train.x[idx], ds.train.y[idx]
        model.zero_grad()
        logits = model.forward(x)
        loss, cache = pixel_cross_entropy(logits, y)
        model.backward(pixel_cross_entropy_backward(1.0, cache, logits.shape))
        opt.step(model.grads)
        losses.append(float(loss))
print("logits:", logits.shape)
print(f"{steps} steps in {time.perf_counter() - t0:.1f} s; loss {losses[0]:.3f} -> "
      f"{losses[-1]:.3f} (log 11 = {np.log(11):.3f} is a uniform guess)")

# %% [markdown]
# The full run is `minswin train --task segment` (and `--config canvas_last` for the other
# head): the same step with checkpoints, resume, curves and a NaN guard. Without
# `MINSWIN_SMALL` this notebook runs both here; in small mode it loads the two segmenters that
# ship with minswin, trained by exactly those commands.

# %%
if SMALL:
    fpn, meta_fpn = pretrained_segmenter("swin_canvas_fpn")
    last, meta_last = pretrained_segmenter("swin_canvas_last")
    times = {k: segmenter_info(n)["train_time_s"] for k, n in
             (("fpn", "swin_canvas_fpn"), ("last", "swin_canvas_last"))}
    print("loaded the shipped segmenters; their recorded training times: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
else:
    runs = tempfile.mkdtemp(prefix="minswin-t12-")
    r_fpn = train_segmenter("canvas", out=os.path.join(runs, "fpn"), progress=False)
    r_last = train_segmenter("canvas_last", out=os.path.join(runs, "last"), progress=False)
    fpn, last = r_fpn["model"].eval(), r_last["model"].eval()
    times = {"fpn": r_fpn["history"]["train_time_s"], "last": r_last["history"]["train_time_s"]}
    print("training times: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
test = ds.test                    # the runs' held-out canvases (independent of n_train)

# %% [markdown]
# ## 6. What the pyramid buys
#
# Intersection over union of class k: pixels predicted k *and* labelled k, over pixels
# predicted k *or* labelled k. The mean IoU averages the 11 classes, so the background, most
# of every canvas, counts as one class among eleven.

# %%
results = {}
with threadpool_limits(1, user_api="blas"):
    for name, net in (("pyramid (FPN)", fpn), ("last stage only", last)):
        loss, cm, pred = evaluate_segmenter(net, test)
        results[name] = (iou_per_class(cm), pred, loss)
print(f"{'class':>12} " + " ".join(f"{n:>16}" for n in results))
for k, cname in enumerate(CLASSES):
    print(f"{cname:>12} " + " ".join(f"{100 * r[0][k]:15.1f}%" for r in results.values()))
miou = {n: float(np.nanmean(r[0])) for n, r in results.items()}
print(f"{'mean IoU':>12} " + " ".join(f"{100 * v:15.1f}%" for v in miou.values()))
print(f"on {len(test.y)} held-out canvases ({len(test.y) * 32 * 32:,} pixels)")
gain = miou["pyramid (FPN)"] - miou["last stage only"]
print(f"the pyramid head is {100 * gain:.1f} points of mean IoU ahead")

# %% [markdown]
# The last-stage head paints 8×8 blocks: every pixel of a block gets the same label, and a
# block is mostly background even where a stroke crosses it, so the cheapest answer for a
# mixed block is "background". The pyramid's finest map has 2×2 cells, fine enough to follow
# a stroke, and the coarse maps tell it which digit the stroke belongs to.

# %%
pred_f, pred_l = results["pyramid (FPN)"][1], results["last stage only"][1]
test_count = np.array([len(np.unique(y)) - 1 for y in test.y])
picks = list(np.flatnonzero(test_count == 2)[:2]) + list(np.flatnonzero(test_count == 1)[:2])
fig = Figure(figsize=(10, 8))
axes = fig.subplots(4, 4)
for j, n in enumerate(picks):
    for i, (img, title) in enumerate([(test.x[n, ..., 0], "input"),
                                      (label_image(test.y[n]), "truth"),
                                      (label_image(pred_f[n]), "pyramid (FPN)"),
                                      (label_image(pred_l[n]), "last stage only")]):
        ax = axes[j, i]
        ax.imshow(img, cmap="gray" if i == 0 else None, interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        if j == 0:
            ax.set_title(title)
fig.suptitle("held-out canvases (digits never seen in training): truth and both heads' "
             "predictions")
fig.tight_layout()
show(fig, "12_predictions.png")

# %% [markdown]
# ## 7. What each stage sees
#
# One held-out canvas with two digits through the trained pyramid's backbone. Each stage's map
# has many channels; we project its cells onto their three main directions (PCA over the
# cells) and show them as red, green and blue: cells that look alike to the network get alike
# colours. At stage 0 a cell covers 2×2 pixels and the colours follow the strokes; at stage 2 a
# cell covers 8×8 pixels, a quarter of a digit, and the colours mark regions, not strokes.

# %%
canvas = test.x[picks[0]][None]
stage_maps = fpn.backbone.forward(canvas)


def pca_rgb(m):
    """(h, w, C) -> (h, w, 3): the three main components of the cells, scaled to [0, 1]."""
    cells = m.reshape(-1, m.shape[-1]).astype(np.float64)
    cells = cells - cells.mean(axis=0)
    _, s, vt = np.linalg.svd(cells, full_matrices=False)
    rgb = cells @ vt[:3].T
    rgb = (rgb - rgb.min(axis=0)) / np.maximum(np.ptp(rgb, axis=0), 1e-12)
    return rgb.reshape(*m.shape[:2], 3), s ** 2 / np.sum(s ** 2)


fig = Figure(figsize=(11, 3.2))
axes = fig.subplots(1, 1 + len(stage_maps))
axes[0].imshow(canvas[0, ..., 0], cmap="gray")
axes[0].set_title("canvas")
explained = []
for i, (m, info) in enumerate(zip(stage_maps, fpn.backbone.feature_info)):
    rgb, var = pca_rgb(m[0])
    explained.append(float(var[:3].sum()))
    axes[i + 1].imshow(rgb, interpolation="nearest")
    axes[i + 1].set_title(f"stage {i}: {m.shape[1]}x{m.shape[2]}x{m.shape[3]}\n"
                          f"3 components = {100 * explained[-1]:.0f}% of the variance",
                          fontsize=9)
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
fig.suptitle("the trained backbone's stage maps, 3 principal components as RGB")
fig.tight_layout(rect=(0, 0, 1, 0.88))
show(fig, "12_stage_features.png")

# %% [markdown]
# ## Questions
#
# * **Why not upsample with a learned (transposed) convolution?** It works, and it is what
#   many decoders use; nearest-neighbour keeps the head free of parameters between the
#   projections, so the comparison is about *which maps* the head sees.
# * **Would a 3×3 convolution after each sum help?** FPN has one, to smooth the copied blocks;
#   our head leaves it out to stay light. Try it: it is a patch embedding with stride 1.
# * **Why is the background IoU high for both heads?** Most pixels are background, and both
#   heads get most of them right; the digit classes are where the heads differ.
# * **Try:** give the last-stage head the stage-1 map instead (`out_indices=(1,)`), or train
#   the pyramid head from a random backbone (`backbone_init=""`) and compare.

# %% [markdown]
# ## Checks

# %%
assert [f["reduction"] for f in backbone.feature_info] == [2, 4, 8]
assert backbone.config.patch_size == 2 and backbone.config.img_size == 32
assert minswin.get_config("swin_canvas").depths == (2, 2, 2)
assert defaults["size"] == 32 and defaults["digit"] == 16 and defaults["max_digits"] == 3
assert defaults["threshold"] == 0.3 and len(CLASSES) == 11
assert all(2 <= len(np.unique(y)) <= 4 for y in ds.test.y)   # background + 1 to 3 digits
assert logits.shape == (16, 32, 32, 11)
assert [m.shape[1:] for m in maps] == [(16, 16, 48), (8, 8, 96), (4, 4, 192)]
assert "norm.weight" not in backbone.params and "head.weight" not in backbone.params
assert [o.shape for o in outs] == [(1, 4, 6, 6), (1, 2, 3, 12), (1, 1, 2, 24)]
assert pyramid_check.passed and pyramid_check.max_rel_error < TOL_MODEL
assert up_check.passed and up_check.max_rel_error < 1e-7
assert seg_check.passed and seg_check.max_rel_error < TOL_MODEL
assert len(shown) == 5 and len(picks) == 4 and count.min() >= 1
assert len(ds.test.y) == 300 and share[0] > 0.5
assert losses[-1] < losses[0], "a few steps lower the loss"
assert miou["pyramid (FPN)"] > miou["last stage only"] + 0.2, "the pyramid must win clearly"
assert results["pyramid (FPN)"][0][0] > 0.9                 # background
assert np.all(results["pyramid (FPN)"][0][1:] > results["last stage only"][0][1:])
assert all(0 < e <= 1 for e in explained)
print("tutorial 12: all checks passed")
