# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 11. From Swin to Swin V2
#
# Swin V2 (Liu et al., 2022) keeps Swin's windows, shifts, masks and stages, and changes four
# things so that models can be made deeper and moved to larger windows:
#
# | | Swin (v1) | Swin V2 |
# | --- | --- | --- |
# | block | pre-norm: `x + attn(LN(x))` | res-post-norm: `x + LN(attn(x))` |
# | attention logits | `q·k / √d` | `cos(q, k) · τ`, τ = exp(min(logit_scale, log 100)) |
# | position bias | a learned table, one number per offset | `16·sigmoid(cpb_mlp(log offset))` |
# | patch merging | LN(4C) then Linear(4C→2C) | Linear(4C→2C) then LN(2C) |
#
# This tutorial measures why (activation growth, the logits' range), looks at the log-spaced
# coordinates, and moves a model to another window both ways: v1's bicubic table resize
# against V2's network evaluated on the new offsets. Everything runs on minswin's own ops;
# `tests/test_v2_oracle.py` checks them against timm and torchvision in float64.

# %%
import math
import os

import numpy as np

import minswin
from minswin.data import load_dataset
from minswin.gradcheck import check_op
from minswin.layers_v2 import CPB_HIDDEN, WindowAttentionV2
from minswin.ops.attention import window_attention_forward
from minswin.ops.continuous_bias import (
    continuous_bias_backward,
    continuous_bias_forward,
    log_spaced_coordinates,
)
from minswin.ops.cosine_attention import (
    LOGIT_SCALE_MAX,
    cosine_attention_backward,
    cosine_attention_forward,
)
from minswin.ops.masks import relative_position_index
from minswin.ops.relative_bias import relative_bias_forward
from minswin.optim import create_optimizer
from minswin.viz import (
    attention_cpb_table,
    plot_cpb_table,
    plot_log_spaced_coordinates,
    plot_table_resize,
    plot_window_transfer,
    show,
)

SMALL = os.environ.get("MINSWIN_SMALL") == "1"

# %% [markdown]
# ## 1. Activations grow in deep v1 models; res-post-norm stops it
#
# In a pre-norm block the branch sees a normalised input, but what it *adds* to the main path
# is as large as its weights make it: `x ← x + mlp(LN(x))`. As training grows the weights,
# every block adds a larger vector, and the sum grows with depth. V2 normalises the branch's
# output instead, `x ← x + LN(mlp(x))`: each block adds a vector of a fixed size (set by the
# LayerNorm's gain), whatever the weights.
#
# We measure it on one deep stage (12 blocks, or 6 in the small run) of random weights drawn
# with std 1/√fan_in, then multiplied by s = 1, 2, 4 to stand in for grown weights. The
# V2 norms get gain 1 (the official init sets them to 0, which makes every block the
# identity at the start; see the check at the end).

# %%
DEPTH = 6 if SMALL else 12
x = np.random.default_rng(0).standard_normal((2, 32, 32, 3))


def deep_model(name, s):
    m = minswin.create_model(name, img_size=32, patch_size=4, embed_dim=32, depths=(DEPTH,),
                             num_heads=(2,), window_size=4, num_classes=10, dtype="float64",
                             drop_path_rate=0.0)
    for k, p in m.params.items():
        if k.endswith((".qkv.weight", ".proj.weight", ".fc1.weight", ".fc2.weight")):
            p[...] = p / 0.02 / math.sqrt(p.shape[1]) * s    # official std .02 -> s/sqrt(fan_in)
        if k.endswith(("norm1.weight", "norm2.weight")):
            p[...] = 1.0
    return m


def block_rms(m):
    """The root-mean-square of the main path after each block."""
    h = m.patch_embed.forward(x)                           # (2, 8, 8, 32)
    out = []
    for blk in m.layers[0].blocks:
        h = blk.forward(h)
        out.append(float(np.sqrt((h ** 2).mean())))
    return out


rms = {}
for s in (1, 2, 4):
    for name in ("swin_t", "swinv2_t"):
        rms[name, s] = block_rms(deep_model(name, s))
        print(f"{name:9s} weights x{s}: " + " ".join(f"{r:5.1f}" for r in rms[name, s]))

# %% [markdown]
# v1's last-block RMS grows with the weights (about ×s² here: the MLP has two weight
# matrices) and with depth; V2's does not depend on the weight scale at all, only on depth
# (each block adds a unit-size vector). That is what lets V2 train 3-billion-parameter models.
#
# ## 2. Cosine attention keeps the logits in range
#
# v1's logits q·k/√d scale with the activations: large activations make the softmax one-hot
# and a few heads dominate. V2 uses the cosine of q and k times a learned temperature
# τ ≤ 100, so |logit| ≤ τ whatever the activations. Same tokens, multiplied by 1, 10, 100:

# %%
r = np.random.default_rng(1)
C, nH, N = 8, 2, 16
tokens = r.standard_normal((4, N, C))
wqkv, wproj = r.standard_normal((3 * C, C)) / math.sqrt(C), r.standard_normal((C, C))
logit_scale = np.full((nH, 1, 1), math.log(10.0))          # the official init: tau = 10
ranges = {}
for scale in (1, 10, 100):
    t = tokens * scale
    _, c1 = window_attention_forward(t, wqkv, np.zeros(3 * C), wproj, np.zeros(C),
                                     num_heads=nH)
    v1_logits = c1.q @ c1.k.transpose(0, 1, 3, 2)          # q is already scaled by d^-0.5
    _, c2 = cosine_attention_forward(t, wqkv, np.zeros(C), np.zeros(C), logit_scale, wproj,
                                     np.zeros(C), num_heads=nH)
    v2_logits = c2.cos * c2.scale.tau
    ranges[scale] = (np.abs(v1_logits).max(), np.abs(v2_logits).max())
    print(f"tokens x{scale:3d}: max |logit| v1 {ranges[scale][0]:10.1f}   V2 "
          f"{ranges[scale][1]:5.2f}")

# %% [markdown]
# The temperature is learned per head, but clamped: `exp(min(logit_scale, log 100))`. Above
# log 100 ≈ 4.605 the clamp makes τ the constant 100, so `logit_scale` gets **no gradient
# there** (it can come back only if something else moves it, e.g. weight decay, which the
# official recipe switches off for it). The backward checked by central differences, with one
# head on each side of the clamp:

# %%
ins = dict(x=r.standard_normal((4, 4, 4)), qkv_weight=r.standard_normal((12, 4)),
           q_bias=r.standard_normal(4), v_bias=r.standard_normal(4),
           logit_scale=np.array([2.0, LOGIT_SCALE_MAX + 0.5]).reshape(2, 1, 1),
           proj_weight=r.standard_normal((4, 4)), proj_bias=r.standard_normal(4),
           bias=r.standard_normal((2, 4, 4)))
report = check_op(cosine_attention_forward, cosine_attention_backward, ins,
                  static={"num_heads": 2})
print("central-difference check of cosine_attention_backward:")
print(report)
_, cache = cosine_attention_forward(**ins, num_heads=2)
dlogit = cosine_attention_backward(np.ones((4, 4, 4)), cache)[4].ravel()
print("dlogit_scale per head (below, above the clamp):", dlogit)
print(f"the clamp: LOGIT_SCALE_MAX = log 100 = {LOGIT_SCALE_MAX:.3f}, "
      f"so tau <= {math.exp(LOGIT_SCALE_MAX):.0f}")

# %% [markdown]
# ## 3. Log-spaced coordinates
#
# V2 does not learn a number per offset. It feeds each offset (dr, dc) to a small network,
# `cpb_mlp` = Linear(2, 512) → ReLU → Linear(512, heads), and uses 16·sigmoid of its output.
# The offsets are first divided by (P − 1), P the pre-training window (or M when there is
# none), times 8, then log-spaced: `sign(t)·log2(1 + |t|) / log2(8)`. For window 8:

# %%
c8 = log_spaced_coordinates(8)                             # (15, 15, 2)
print(f"cpb_mlp: Linear(2, {CPB_HIDDEN}) -> ReLU -> Linear({CPB_HIDDEN}, heads)")
print("offsets 0..7 ->", np.round(c8[7:, 7, 0], 3))
c16 = log_spaced_coordinates(16, pretrained_window=8)      # window 16, trained with 8
print("window 16, P=8: offsets 0..15 ->", np.round(c16[15:, 15, 0], 3))
lin16 = 15 / 7                                             # linear: 15 / (P - 1)
print(f"offset 15: linear {lin16:.2f}, log-spaced {c16[30, 15, 0]:.3f}")
show(plot_log_spaced_coordinates(8, new_window=16), "11_log_spaced_coordinates.png")

# %% [markdown]
# Linear coordinates would ask the network about 2.14, more than twice the range it was
# trained on (±1); log-spaced ones ask about 1.39, a much milder extrapolation. Near offsets
# are spread apart, where the bias changes fastest.
#
# ## 4. Moving to another window: resize a table, or evaluate a function
#
# Say a model learned that a query likes keys near it: bias(dr, dc) = 4 + 8·exp(−(dr²+dc²)/6)
# in a 4×4 window. v1 stores exactly that as a (7², 1) table. V2 learns it as a network; we
# fit `cpb_mlp` to the same values with minswin's own backward
# (`continuous_bias_backward`) and AdamW.

# %%
M, M_NEW = 4, 8
offsets = np.arange(-(M - 1), M)
dr, dc = np.meshgrid(offsets, offsets, indexing="ij")
target = 4 + 8 * np.exp(-(dr ** 2 + dc ** 2) / 6.0)        # (7, 7)
v1_table = target.reshape(-1, 1)                           # ((2M-1)^2, 1): v1 learns this

attn = WindowAttentionV2(8, M, 1, pretrained_window_size=M, rng=np.random.default_rng(0),
                         dtype=np.float64)
p = {k: attn.params[k] for k in ("cpb_mlp.0.weight", "cpb_mlp.0.bias", "cpb_mlp.2.weight")}
index = relative_position_index(M)
want, _ = relative_bias_forward(v1_table, index)           # (1, N, N)
opt = create_optimizer("adamw", p, lr=1e-2, weight_decay=0.0)
for step in range(250 if SMALL else 400):
    bias, cache = continuous_bias_forward(attn.coords, *p.values(), index)
    diff = bias - want
    _, g1, gb1, g2 = continuous_bias_backward(2 * diff / diff.size, cache)   # d mean(diff^2)
    opt.step({"cpb_mlp.0.weight": g1, "cpb_mlp.0.bias": gb1, "cpb_mlp.2.weight": g2})
fit_rms = float(np.sqrt((diff ** 2).mean()))
print(f"cpb_mlp fitted: rms error {fit_rms:.3f} on the {M}x{M} window's biases")

# %% [markdown]
# Now both move to window 8. v1: the official fine-tuning resizes the (7×7) image of the
# table bicubically to (15×15) (`minswin.resize_relative_bias_table`). V2: the same network
# on window 8's offsets, normalised by the pre-training window P = 4 (that is what
# `pretrained_window_sizes` is for).

# %%
v1_new = minswin.resize_relative_bias_table(v1_table, M_NEW)   # (225, 1)
v2_new = attention_cpb_table(attn, window=M_NEW)           # (225, 1)
d_new = np.arange(-(M_NEW - 1), M_NEW)
DR, DC = np.meshgrid(d_new, d_new, indexing="ij")
truth = (4 + 8 * np.exp(-(DR ** 2 + DC ** 2) / 6.0)).reshape(-1, 1)
centre = (M_NEW - 1) * (2 * M_NEW - 1) + (M_NEW - 1)       # row of offset (0, 0)
for dcol in (0, 1, 2, 3):
    k = centre + dcol
    print(f"offset (0, {dcol}): true {truth[k, 0]:5.2f}  v1 resized {v1_new[k, 0]:5.2f}  "
          f"V2 {v2_new[k, 0]:5.2f}")
old = (np.abs(DR) < M) & (np.abs(DC) < M)                  # the offsets trained on
err_v1 = float(np.abs(v1_new - truth)[old.ravel()].max())
err_v2 = float(np.abs(v2_new - truth)[old.ravel()].max())
print(f"max error on the old offsets: v1 resized {err_v1:.2f}, V2 {err_v2:.2f}")
print(f"window {M} -> {M_NEW}: offsets ±{M - 1} -> ±{M_NEW - 1}")
show(plot_window_transfer(v1_table, attn, M_NEW, head=0), "11_window_transfer.png")
show(plot_table_resize(v1_table, M_NEW), "11_table_resize.png")

# %% [markdown]
# The bicubic resize **stretches** the table: it maps the old range of offsets (±3) onto the
# new one (±7), so the bias learned for offset 3 lands near offset 7 and the peak gets about
# twice as wide. Fine-tuning then has to learn the bias again. V2 keeps every old offset where
# it was (the network is asked about the same coordinates) and only extrapolates to the new,
# farther offsets. For v1 checkpoints, minswin does the official resize on loading when asked:
#
#     model = minswin.create_model("swin_b_384")             # window 12
#     model.load_state_dict(state_for_window_7, resize_windows=True)
#
# and refuses such a checkpoint without `resize_windows=True`, naming the first table and
# both shapes. A V2 checkpoint needs nothing resized (its buffers of the old window are
# dropped with the same flag).
#
# ## 5. What a trained V2 learned
#
# `swinv2_digits` ships with minswin (`minswin.pretrained("swinv2_digits")`): the digits recipe
# of tutorial 10 with V2's blocks (its test accuracy is printed below). Here is its first shifted
# block's `cpb_mlp`, evaluated on the 7×7 offsets of its 4×4 window. Untrained, the network's
# output is near 0 and every bias near 16·sigmoid(0) = 8: no preference. Trained, each head
# spans nearly the whole range (0, 16), high on one side of the query and low on the other:
# one head looks at the rows on one side, one at the columns on one side, one along a diagonal.
# (dr, dc) = query minus key position, so dr < 0 means the key lies below the query.

# %%
v2_digits = minswin.pretrained("swinv2_digits")
digits = load_dataset("digits", img_size=16, split_seed=0)     # tutorial 10's split
v2_digits.eval()
v2_acc = float((v2_digits.forward(digits.test.x).argmax(1) == digits.test.y).mean())
print(f"swinv2_digits: test accuracy {v2_acc:.1%} on {len(digits.test.y)} digits")
learned = attention_cpb_table(v2_digits.layers[0].blocks[1].attn)      # (49, 3)
untrained = attention_cpb_table(minswin.create_model("swinv2_digits", num_classes=10)
                                .layers[0].blocks[1].attn)              # (49, 3)
print("bias range per head, trained:  ", np.round(learned.max(0) - learned.min(0), 2))
print("bias range per head, untrained:", np.round(untrained.max(0) - untrained.min(0), 2))
show(plot_cpb_table(learned, name="layers.0.blocks.1 of swinv2_digits (trained)"),
     "11_cpb_trained.png")

# %% [markdown]
# Try it yourself: `minswin exercise start cosine_attention_backward` and
# `minswin exercise start continuous_bias_backward`; figures: `minswin plot log-coords`,
# `minswin plot cpb`, `minswin plot table-resize`.
#
# ## Questions
#
# * **Why no √d in V2?** Cosines are already in [−1, 1]; the learned τ sets the sharpness.
# * **Why does `logit_scale` stop learning above log 100?** The clamp makes τ constant there,
#   so its gradient is exactly 0 (checked above).
# * **Why is there no k bias?** With dot products a k bias b adds q·b to every logit of a
#   query alike, which the softmax ignores: it is redundant, so V2 drops it (official:
#   `q_bias`, `v_bias`, a fixed zero between them; torchvision: a full `qkv.bias` whose
#   middle third is zeroed in every forward). minswin has no `k_bias` parameter.
# * **What does `pretrained_window_sizes` do?** It fixes the divisor of the offsets, so a
#   model fine-tuned at a larger window sees its old offsets at the old coordinates.
# * **Why is the official V2 block the identity at initialisation?** `_init_respostnorm`
#   sets norm1/norm2 weights and biases to 0, so each branch adds LN(·)·0 + 0 = 0.

# %% [markdown]
# ## Checks

# %%
s_max = 4
assert rms["swin_t", s_max][-1] > 5 * rms["swin_t", 1][-1]      # v1 grows with the weights
assert abs(rms["swinv2_t", s_max][-1] - rms["swinv2_t", 1][-1]) < 0.1 * rms["swinv2_t", 1][-1]
assert ranges[100][0] > 1000 * ranges[1][0] / 10           # v1 logits scale as scale^2
assert max(v for _, v in ranges.values()) <= 10.0 + 1e-9   # |cos * tau| <= tau = 10
assert report.passed and dlogit[1] == 0.0 and dlogit[0] != 0.0
assert np.isclose(c8[14, 7, 0], math.log2(9) / 3) and np.isclose(c16[30, 15, 0],
                                                                  math.log2(1 + 120 / 7) / 3)
assert fit_rms < 0.2
assert err_v2 < 1.0 < 3.0 < err_v1                         # V2 keeps the old offsets; v1 moves
assert (learned.max(0) - learned.min(0) > 8).all()         # trained: each head prefers a side
assert (untrained.max(0) - untrained.min(0) < 1).all()     # untrained: all near 8
assert v2_acc > 0.95
v2_init = minswin.create_model("swinv2_digits", num_classes=10)
h = np.random.default_rng(2).standard_normal((1, 8, 8, 48)).astype(np.float32)
assert np.array_equal(v2_init.layers[0].blocks[0].forward(h), h)   # official init: identity
print("tutorial 11: all checks passed")
