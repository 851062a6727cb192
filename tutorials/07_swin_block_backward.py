# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 7. One Swin block, forward and backward, line by line
#
# A Swin block is two residual branches, each starting with a LayerNorm (pre-norm):
#
#     x1  = x  + unshift(W-MSA(shift(LN1(x))))        shift only in odd blocks (SW-MSA)
#     out = x1 + MLP(LN2(x1))                          MLP = fc1 -> GELU -> fc2
#
# (DropPath on both branches is the identity at evaluation time.) We first write the block's
# forward with minswin's ops and check it against `SwinTransformerBlock.forward`; then the
# backward, each step under the forward line it undoes; then a gradient check of the whole
# block in float64.
#
# The ops are the plain tier, `minswin/ops/`: open `ops/attention.py`, `ops/layernorm.py` and
# `ops/mlp.py` beside this notebook, they are the maths below, a line each. (The model runs
# their fast twins from `minswin/fast/` on NumPy by default: the same numbers, computed in
# cache-sized blocks on every core. `minswin.use_fast(False)` runs these plain ones.)

# %%
import numpy as np

from minswin.backend import rng
from minswin.gradcheck import check_module
from minswin.model import SwinTransformerBlock
from minswin.ops.attention import window_attention_backward, window_attention_forward
from minswin.ops.layernorm import layernorm_backward, layernorm_forward
from minswin.ops.masks import MASK_VALUE, attention_mask, relative_position_index, window_labels
from minswin.ops.mlp import mlp_backward, mlp_forward
from minswin.ops.relative_bias import relative_bias_backward, relative_bias_forward
from minswin.ops.window import (
    from_windows,
    from_windows_backward,
    to_windows_backward,
    to_windows_forward,
)
from minswin.viz import plot_window_attention, show

g = rng(0)

# %% [markdown]
# ## A small float64 block
#
# An 8×8 map of width C = 12, 3 heads, windows of M = 4, shifted by s = 2 (an odd block).
# Fresh blocks have LN = identity, zero biases and weights drawn with the official small
# standard deviation (`minswin.layers.trunc_normal`'s default, printed below), which makes
# the branches tiny; we randomise every parameter so that the check sees every path.

# %%
import inspect

from minswin.layers import trunc_normal

print("weights of a fresh block: std", inspect.signature(trunc_normal).parameters["std"].default)
B, H, W, C, nH, M, s = 2, 8, 8, 12, 3, 4, 2
block = SwinTransformerBlock(C, (H, W), nH, M, s, mlp_ratio=4.0, drop_path=0.0, rng=g,
                             dtype=np.float64)
for k, v in block.params.items():
    v[...] = (1.0 if k.endswith("norm1.weight") or k.endswith("norm2.weight") else 0.0) \
        + 0.5 * g.standard_normal(v.shape)
p = block.params
x = g.standard_normal((B, H, W, C))
print("the block's parameters:", {k: v.shape for k, v in p.items()})

# %% [markdown]
# ## Forward, by hand

# %%
h, ln1 = layernorm_forward(x, p["norm1.weight"], p["norm1.bias"])           # (B, H, W, C)
tokens, win = to_windows_forward(h, M, s)                  # (B*nW, N, C): roll(-s), partition
mask = attention_mask(H, W, M, s)                          # (nW, N, N) of 0 / -100
bias, rb = relative_bias_forward(p["attn.relative_position_bias_table"],
                                 relative_position_index(M))                 # (nH, N, N)
a, att = window_attention_forward(tokens, p["attn.qkv.weight"], p["attn.qkv.bias"],
                                  p["attn.proj.weight"], p["attn.proj.bias"],
                                  bias, mask, nH)          # (B*nW, N, C)
y = from_windows(a, win)                                   # (B, H, W, C): merge, roll(+s)
x1 = x + y                                                 # residual 1
n2, ln2 = layernorm_forward(x1, p["norm2.weight"], p["norm2.bias"])
m, mc = mlp_forward(n2, p["mlp.fc1.weight"], p["mlp.fc1.bias"], p["mlp.fc2.weight"],
                    p["mlp.fc2.bias"])                     # (B, H, W, C)
out = x1 + m                                               # residual 2

out_module = block.forward(x)
print(f"by hand vs SwinTransformerBlock.forward: {np.abs(out - out_module).max():.1e}")

# %% [markdown]
# ## Backward, each step under the forward line it undoes
#
# Residuals copy the gradient to both branches and add it back; everything else calls the
# op's own backward with the op's cache.

# %%
dout = g.standard_normal(out.shape)
# forward: out = x1 + m                 ->  dx1 = dout (shortcut) ;  dm = dout (branch)
dx1, dm = dout, dout
# forward: m = mlp(n2)                  ->  mlp_backward gives dn2 and the four MLP grads
dn2, dfc1_w, dfc1_b, dfc2_w, dfc2_b = mlp_backward(dm, mc)
# forward: n2 = LN2(x1)                 ->  add to the shortcut's gradient
dn2x, dln2_w, dln2_b = layernorm_backward(dn2, ln2)
dx1 = dx1 + dn2x
# forward: x1 = x + y                   ->  dx = dx1 (shortcut) ;  dy = dx1 (branch)
dx, dy = dx1, dx1
# forward: y = from_windows(a)          ->  pad, roll(-s), partition the gradient
da = from_windows_backward(dy, win)
# forward: a = attention(tokens, bias)  ->  six gradients; the mask has none
dtokens, dqkv_w, dqkv_b, dproj_w, dproj_b, dbias = window_attention_backward(da, att)
# forward: bias = table[index]          ->  scatter-add into the table
dtable = relative_bias_backward(dbias, rb)
# forward: tokens = to_windows(h)       ->  un-partition, roll(+s), crop
dh = to_windows_backward(dtokens, win)
# forward: h = LN1(x)                   ->  add to the shortcut's gradient
dhx, dln1_w, dln1_b = layernorm_backward(dh, ln1)
dx = dx + dhx

block.zero_grad()
dx_module = block.backward(dout)
by_hand = {"norm1.weight": dln1_w, "attn.relative_position_bias_table": dtable,
           "attn.qkv.weight": dqkv_w, "attn.proj.weight": dproj_w, "mlp.fc1.weight": dfc1_w,
           "norm2.bias": dln2_b}
gaps = {k: float(np.abs(v - block.grads[k]).max()) for k, v in by_hand.items()}
gaps["x"] = float(np.abs(dx - dx_module).max())
print("by hand vs block.backward, max |difference|:", gaps)

# %% [markdown]
# ## The mask at work
#
# In the shifted block, a query's attention to keys from another region must be ≈ 0:

# %%
weights = block.attention_weights()                        # (B, nW, nH, N, N)
labels = window_labels(H, W, M, s)                         # (nW, N)
other = labels[:, :, None] != labels[:, None, :]           # (nW, N, N)
leak = float(np.max(weights * other[None, :, None]))       # weights where labels differ
print(f"largest attention weight across regions: {leak:.1e}  (mask value {MASK_VALUE})")

# %% [markdown]
# The bottom-right window holds four regions. Its weights as a picture: every query attends
# only inside its own region, so the (N, N) matrix is zero (black) outside those blocks.

# %%
show(plot_window_attention(weights, window_id=3, heads=[0], name="the shifted float64 block"),
     "07_masked_attention.png")

# %% [markdown]
# ## Gradient check of the whole block
#
# `check_module` perturbs the input and every parameter along one random direction each and
# compares the change of L = Σ out·dout with the backward's prediction: two forward passes
# per array, whatever its size. House threshold for a composite block: 1e-6.

# %%
report = check_module(block, x, tol=1e-6)
print("directional check of the shifted block:")
print(report)

plain = SwinTransformerBlock(C, (H, W), nH, M, 0, 4.0, 0.0, g, np.float64)   # W-MSA block
report_plain = check_module(plain, g.standard_normal((1, H, W, C)), tol=1e-6)
print("W-MSA block:", "all ok" if report_plain.passed else report_plain)

odd_map = g.standard_normal((1, 6, 7, C))                  # padded to 8x8 inside the block
report_pad = check_module(block, odd_map, tol=1e-6)
print("6x7 map (padded):", "all ok" if report_pad.passed else report_pad)
h = 1e-6                                                   # the step of the central difference
rounding = {t.__name__: np.finfo(t).eps / h for t in (np.float64, np.float32)}
print("rounding error of a central difference with h = 1e-6, about eps / h:",
      {k: f"{v:.0e}" for k, v in rounding.items()})

# %% [markdown]
# Try the pieces yourself: `minswin exercise list` has the LayerNorm, softmax, GELU,
# attention, relative-bias and shift/partition backward passes, each checked this way.
#
# ## Questions
#
# * **Is the shortcut taken before or after LN1?** Before: `x + branch(LN1(x))`; the
#   attention output is rolled back before it is added.
# * **Does the −100 mask need a backward?** No: it is a constant added to the logits, and
#   the softmax probabilities in the cache already include it.
# * **Why float64 for the check?** With h = 1e-6 the central difference's rounding error,
#   about eps / h, is printed above: far below the 1e-6 gate in float64, the size of the
#   gradient itself in float32.
# * **Maps not divisible by M?** Pad after LN1, roll, mask on the padded grid, unroll, crop:
#   the 6×7 check above runs that path.

# %% [markdown]
# ## Checks

# %%
assert np.abs(out - out_module).max() < 1e-12
assert max(gaps.values()) < 1e-12
assert leak < 1e-30
assert report.passed and report_plain.passed and report_pad.passed
assert len(report.rows) == 1 + len(block.params)
assert rounding["float64"] < 1e-9 and rounding["float32"] > 0.1
print("tutorial 7: all checks passed")
