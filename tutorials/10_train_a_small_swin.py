# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 10. Train a small Swin from scratch
#
# Every earlier tutorial ran the model forwards and checked one backward at a time. Here
# all the pieces do their real job together: we train a two-stage Swin on real
# images, the hand-written digits that ship with scikit-learn, with nothing but
# our own forward passes, our own backward passes and an optimiser written in NumPy.
#
# The training step is four lines, and everything else is bookkeeping:
#
# ```
# logits = model.forward(x)                              # (B, 10)
# loss, cache = cross_entropy_forward(logits, y, eps)    # ()
# model.backward(cross_entropy_backward(1.0, cache))     # fills model.grads
# optimizer.step(model.grads)                            # changes model.params in place
# ```
#
# We write the loop out by hand below. `minswin train` runs the same loop and adds
# checkpoints, exact resume, a NaN guard and Ctrl-C handling (see `minswin/training.py`).
# `MINSWIN_SMALL=1` trains on fewer images for fewer steps.

# %%
import os
import time

import numpy as np
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits  # installed with scikit-learn

import minswin
from minswin.data import batch_slices, epoch_order, load_dataset, train_batch
from minswin.gradcheck import check_op
from minswin.loss import cross_entropy_backward, cross_entropy_forward
from minswin.optim import AdamW, clip_grad_norm, cosine_lr, uses_weight_decay
from minswin.training import model_from_checkpoint, rescale_init
from minswin.viz import plot_query_attention, show
from minswin.weights import pretrained_path

SMALL = os.environ.get("MINSWIN_SMALL") == "1"

# %% [markdown]
# ## The data
#
# Each digit is an 8×8 grid of grey levels from 0 to 16. We scale the levels to [0, 1], upsample
# bilinearly to 16×16 (the model's `img_size`), copy the grey channel three times (the model
# takes RGB), and split the images, class by class, into train, validation and test sets with a
# fixed seed (their sizes and shares are printed below). The mean and standard deviation used to
# normalise come from the training images only: the test set must not leak into training, even
# through one number.

# %%
ds = load_dataset("digits", img_size=16, split_seed=0)
print(f"image arrays: train {ds.train.x.shape}, val {ds.val.x.shape}, test {ds.test.x.shape}")
n_images = len(ds.train.y) + len(ds.val.y) + len(ds.test.y)
shares = [len(part.y) / n_images for part in (ds.train, ds.val, ds.test)]
print(f"{n_images:,} images: " + ", ".join(f"{name} {share:.0%}" for name, share
                                           in zip(("train", "val", "test"), shares)))
print(f"classes {ds.classes}; mean {ds.mean[0]:.3f}, std {ds.std[0]:.3f} (train split)")
if SMALL:   # half of the training images
    ds = ds._replace(train=ds.train._replace(x=ds.train.x[:640], y=ds.train.y[:640]))

fig = Figure(figsize=(10, 1.8), layout="constrained")
for ax, img, label in zip(fig.subplots(1, 8), ds.train.x, ds.train.y):
    ax.imshow(img[..., 0], cmap="gray_r")
    ax.set_title(f"label {label}")
    ax.axis("off")
fig.suptitle("the first eight training images, 16x16 after upsampling (normalised)")
show(fig, "10_digits.png")

# %% [markdown]
# The only augmentation is a random shift: pad every image by one pixel of background and cut
# a random 16×16 window out of it. Each batch's shifts come from a generator seeded by
# (seed, epoch, batch), so a batch can be rebuilt from three numbers (this is what makes an
# interrupted run resumable bit for bit).

# %% [markdown]
# ## The model
#
# `swin_digits`, slimmed from width 48 to 32 so that this page runs in well under a minute:
# patch 2 turns 16×16 pixels into 8×8 tokens of width 32; stage 1 has two blocks with 4×4
# windows (the second shifted by 2); patch merging gives 4×4 tokens of width 64; stage 2's
# window covers the whole map, so it has no shift and no mask. Mean pooling and a linear head
# give 10 logits.
#
# One change from the official initialisation. It draws every linear weight with one small
# standard deviation, chosen for Swin-T's width and wider (both printed below). At width 32
# that makes each attention and MLP branch add only a sliver to the residual stream at first,
# so the untrained network is little more than an average of pixel embeddings, and the loss
# sits near log(10) for several epochs while the branches grow. `rescale_init` multiplies the
# weights of the blocks' linear layers so that their standard deviation is 1/sqrt(fan_in)
# (LeCun's rule). Let us measure the weights and how much the branches contribute, before and
# after:

# %%
model = minswin.create_model("swin_digits", num_classes=10, seed=0, embed_dim=32,
                             num_heads=(2, 4))


def branch_share(model, x):
    """|attention branch| / |residual stream| in the first block, averaged over tokens."""
    blk = model.layers[0].blocks[0]
    h = model.patch_embed.forward(x)                       # (B, 8, 8, 32) the stream
    out = blk.forward(h)                                   # (B, 8, 8, 32) stream + branches
    return float(np.abs(out - h).mean() / np.abs(h).mean())


qkv = "layers.0.blocks.0.attn.qkv.weight"
std_official = float(model.params[qkv].std())
share_official = branch_share(model, ds.train.x[:16])
rescale_init(model)
share_lecun = branch_share(model, ds.train.x[:16])
fan_in = model.params[qkv].shape[1]
print(f"{qkv} std: official init {std_official:.2f} (meant for Swin-T's width "
      f"{minswin.get_config('swin_t').embed_dim}), after rescale_init "
      f"{float(model.params[qkv].std()):.2f} = 1/sqrt({fan_in}) = {1 / np.sqrt(fan_in):.2f}")
print(f"branches / stream in block 0: official init {share_official:.1%}, "
      f"after rescale_init {share_lecun:.1%}")
_, trace = model.trace(ds.train.x[:2])
print(f"{'module':22s} output shape")
for name, shape in trace:
    print(f"{name:22s} {shape}")
print(f"{model.num_params():,} parameters")

# %% [markdown]
# ## The loss and its gradient
#
# With probabilities p = softmax(z) and the smoothed target q = (1−ε)·onehot(y) + ε/K, the
# mean cross-entropy is L = −(1/B) Σ q·log p, and its gradient has the short form
# dL/dz = (p − q)/B. We check that claim the same way as every other backward in minswin:
# central differences in float64. The relative error should sit far below the gate in the
# table's `expected` column.

# %%
g = np.random.default_rng(0)
report = check_op(cross_entropy_forward, cross_entropy_backward,
                  {"logits": g.standard_normal((4, 10))},
                  static={"labels": np.array([3, 1, 4, 1]), "label_smoothing": 0.1})
print("central-difference check of the cross-entropy backward:")
print(report)

# %% [markdown]
# ## The optimiser
#
# AdamW keeps two running averages per parameter (of g and of g²) and takes a step of about
# `lr` in the direction of their ratio. The weight decay is *decoupled*: the weights shrink by
# a factor (1 − lr·wd) directly instead of through the gradient. As in the official recipe,
# LayerNorm parameters, biases and the relative position bias tables are not decayed:

# %%
decayed = [k for k, p in model.params.items() if uses_weight_decay(k, p)]
print(f"{len(decayed)} of {len(model.params)} parameter arrays are decayed, e.g. {decayed[:2]}")
print("not decayed, e.g.:", [k for k in model.params if k not in decayed][:4])

EPOCHS, BATCH, LR = (3, 32, 3e-3) if SMALL else (6, 32, 3e-3)
steps_per_epoch = len(batch_slices(len(ds.train.y), BATCH))
total = EPOCHS * steps_per_epoch
warmup = steps_per_epoch // 2
optimizer = AdamW(model.params, lr=LR, weight_decay=0.05)
lrs = [cosine_lr(s, base_lr=LR, total_steps=total, warmup_steps=warmup, min_lr=1e-5)
       for s in range(total)]
print(f"{total} steps: warm-up to {LR} over {warmup} steps, then a cosine down to 1e-5")

# %% [markdown]
# ## The loop, by hand

# %%
fill = -ds.mean / ds.std              # a black pixel after normalisation (the padding)
step, losses, epoch_rows = 0, [], []
t0 = time.perf_counter()
threadpool_limits(1)    # one BLAS thread: these matrices are too small to share out
for epoch in range(EPOCHS):
    model.train()                                          # DropPath on
    order = epoch_order(len(ds.train.y), seed=0, epoch=epoch)
    for b, (start, stop) in enumerate(batch_slices(len(ds.train.y), BATCH)):
        x, y = train_batch(ds.train, order, start, stop, seed=0, epoch=epoch, batch=b,
                           max_shift=1, fill=fill)         # (B, 16, 16, 3), (B,)
        model.zero_grad()
        logits = model.forward(x)                          # (B, 10)
        loss, cache = cross_entropy_forward(logits, y, label_smoothing=0.1)
        model.backward(cross_entropy_backward(1.0, cache))
        clip_grad_norm(model.grads, 5.0)
        optimizer.lr = lrs[step]
        optimizer.step(model.grads)
        losses.append(float(loss))
        step += 1
    model.eval()                                           # DropPath off
    with minswin.no_grad():                                # no backward: keep no caches
        val_logits = np.concatenate([model.forward(ds.val.x[i:j])
                                     for i, j in batch_slices(len(ds.val.y), 256)])
    val_acc = float((val_logits.argmax(1) == ds.val.y).mean())
    epoch_rows.append((epoch + 1, float(np.mean(losses[-steps_per_epoch:])), val_acc))
    print(f"epoch {epoch + 1}: mean train loss {epoch_rows[-1][1]:.3f}, val accuracy "
          f"{100 * val_acc:.1f}%  ({time.perf_counter() - t0:.1f} s)")

# %% [markdown]
# The curves: the loss of every step (noisy: each batch is different) and its mean per
# epoch, next to the learning rate that produced it.

# %%
fig = Figure(figsize=(10, 3.5), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
ax1.plot(losses, lw=0.8, alpha=0.6, label="each step")
ax1.plot([steps_per_epoch * (e - 0.5) for e, _, _ in epoch_rows],
         [m for _, m, _ in epoch_rows], "o-", label="epoch mean")
ax1.set(xlabel="step", ylabel="cross-entropy", title="training loss")
ax1.legend()
ax2.plot(lrs)
ax2.set(xlabel="step", ylabel="learning rate", title="warm-up, then cosine")
show(fig, "10_curves.png")

# %% [markdown]
# ## Test accuracy and a confusion matrix
#
# Rows are the true digit, columns the prediction. A few epochs on a few hundred images are
# far from done: `minswin train` runs the full recipe (its epochs and width are printed with
# the shipped model below; benchmarks/results/train_digits.md has a run).

# %%
model.eval()                                               # DropPath off
with minswin.no_grad():                                    # no backward: keep no caches
    test_logits = np.concatenate([model.forward(ds.test.x[i:j])
                                  for i, j in batch_slices(len(ds.test.y), 256)])
pred = test_logits.argmax(1)
test_acc = float((pred == ds.test.y).mean())
cm = np.zeros((10, 10), dtype=int)
np.add.at(cm, (ds.test.y, pred), 1)
print(f"test accuracy: {100 * test_acc:.1f}%")
print("confusion matrix (rows: true digit 0..9, columns: predicted digit 0..9):")
print(cm)

# %% [markdown]
# ## What does a trained window attend to?
#
# A forward pass keeps every cache its backward would need, the attention probabilities among
# them. Evaluating above ran inside `minswin.no_grad()`, which keeps nothing (`model.eval()`
# only turns DropPath off); `minswin.no_grad(keep_attention=True)` keeps the probabilities
# alone: `attention_weights()`, shape (B, nW, nH, N, N). Below, one query token of the
# shifted block in stage 1 and where its heads look inside its 4×4 window.

# %%
with minswin.no_grad(keep_attention=True):
    model.forward(ds.test.x[:1])
attn = model.layers[0].blocks[1].attention_weights()   # (B, nW, nH, N, N)
print("attention weights:", attn.shape, "rows sum to", float(attn[0, 0, 0, 0].sum()))
img = (ds.test.x[0] * ds.std + ds.mean).clip(0, 1)        # back to [0, 1] for display
uniform = 1 / attn.shape[-1]                              # 1/N: where every head starts
peaks = attn[0, 0, :, 5].max(axis=-1)                     # (nH,) largest weight of query 5
print(f"query 5, largest weight per head after {EPOCHS} epochs: "
      + ", ".join(f"{p:.2f}" for p in peaks)
      + f"  (uniform: 1/{attn.shape[-1]} = {uniform:.4f}; largest {peaks.max() / uniform:.1f}x)")
show(plot_query_attention(img, attn, (8, 8), window=4, shift=2, window_id=0, query=5,
                          name=f"layers.0.blocks.1 after {EPOCHS} epochs"),
     "10_attention.png")

# %% [markdown]
# How far the heads have moved from the uniform weight they started from is printed above
# the figure: every head starts at 1/N and learning concentrates the weight. The model that
# ships with minswin, `minswin.pretrained("swin_digits")`, is the full recipe (its training
# record and its test accuracy are printed below). The same query, the same digit:

# %%
trained, meta = model_from_checkpoint(pretrained_path("swin_digits"))
trained.eval()                                             # DropPath off
with minswin.no_grad():                                    # no backward: keep no caches
    shipped_logits = np.concatenate([trained.forward(ds.test.x[i:j])
                                     for i, j in batch_slices(len(ds.test.y), 256)])
shipped_acc = float((shipped_logits.argmax(1) == ds.test.y).mean())
print(f"shipped swin_digits: {meta['epoch']} epochs, width {trained.config.embed_dim}, "
      f"test accuracy {shipped_acc:.1%}")
with minswin.no_grad(keep_attention=True):                 # only the attention, for the picture
    trained.forward(ds.test.x[:1])
attn_trained = trained.layers[0].blocks[1].attention_weights()      # (1, nW, 3, N, N)
peaks_trained = attn_trained[0, 0, :, 5].max(axis=-1)
print("query 5, largest weight per head: " + ", ".join(f"{p:.2f}" for p in peaks_trained))
show(plot_query_attention(img, attn_trained, (8, 8), window=4, shift=2, window_id=0, query=5,
                          name=f"layers.0.blocks.1 of swin_digits (trained, "
                               f"{meta['epoch']} epochs)"),
     "10_attention_trained.png")

# %% [markdown]
# ## Questions
#
# * **What if we keep the official initialisation?** Delete the `rescale_init(model)` line
#   and run again: with the same number of steps the loss stays near log(10), the loss of a
#   uniform guess (printed below), for much longer, and the validation accuracy per epoch
#   shows it. Large models get away with the official small weights because their branches
#   sum over many more channels, and they train for hundreds of epochs.
# * **Why warm up?** Adam's first steps use noisy estimates of g²; a small learning rate for
#   the first half epoch keeps those steps from throwing the model somewhere bad.
# * **Why mean pooling, and no position embedding?** Swin v1 has none (`ape=False`). Position
#   enters through the relative position bias inside each window and through patch merging,
#   which keeps each 2×2 neighbourhood's layout in its channel order.
# * **Why is the relative position table not decayed?** Shrinking it towards zero means
#   shrinking towards "no preference for any offset"; that is not the kind of simplicity weight
#   decay is meant to reward, so the official recipe leaves it (and norms and biases) alone.
# * **Why clip the gradient norm?** One unlucky batch can produce a huge gradient; clipping
#   caps the size of the step without changing its direction.
# * **Try:** remove the warm-up (`warmup=0`), set `max_shift=0`, or double `LR`. Which change
#   hurts the test accuracy, and which only the training loss?

# %%
first, last = float(np.mean(losses[:5])), float(np.mean(losses[-5:]))
print(f"loss: first 5 steps {first:.3f}, last 5 steps {last:.3f}; log(10) = {np.log(10):.2f}")
assert report.passed and report.max_rel_error < 1e-7
assert abs(first - np.log(10)) < 0.15, "an untrained model should be near log(10)"
assert last < first - 0.3, "training must lower the loss"
assert test_acc > 0.3, "well above the 10% of guessing"
assert cm.sum() == len(ds.test.y) == 359
assert attn.shape == (1, 4, 2, 16, 16) and attn_trained.shape == (1, 4, 3, 16, 16)
assert share_lecun > 3 * share_official, "rescale_init makes the branches matter"
assert round(std_official, 2) == 0.02 and share_official < 0.05     # "a sliver"
assert shipped_acc > 0.95 and meta["epoch"] == 70
print("tutorial 10: all checks passed")
