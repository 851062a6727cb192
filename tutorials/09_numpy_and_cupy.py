# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 9. One code path, two array libraries: NumPy and CuPy
#
# CuPy copies NumPy's interface on the GPU, so the same line of maths runs on either if it
# is written as `xp.exp(...)` with `xp` the right module. Every minswin op starts with
# `xp = get_xp(*inputs)`: **the arrays decide** where an op runs. The *default* backend
# (`minswin.use(...)` or the environment variable `MINSWIN_BACKEND`) only decides where new
# arrays are created — a fresh model's parameters, cached masks.
#
# This tutorial runs on NumPy alone; the GPU part runs only where CuPy finds a GPU. (The test
# suite also runs that part without a GPU, on a strict CPU stand-in for CuPy:
# `MINSWIN_CUPY_STANDIN=1 pytest -m gpu`.)

# %%
import numpy as np
from matplotlib.figure import Figure

import minswin
from minswin.backend import cupy_available, default_xp, get_xp, index_add, to_numpy
from minswin.viz import show

g = minswin.backend.rng(0)

# %% [markdown]
# The default backend comes from `MINSWIN_BACKEND` when it is set. This tutorial compares the
# two libraries, so it says which one each part uses: the CPU part starts with
# `minswin.use("numpy")`, whatever the environment chose.

# %%
print("default backend from the environment:", default_xp().__name__)
minswin.use("numpy")

# %% [markdown]
# ## The arrays decide

# %%
a = g.standard_normal((3, 4))
print("get_xp(numpy array) is numpy:", get_xp(a) is np)
print("get_xp(None, 3.0, array) ignores non-arrays:", get_xp(None, 3.0, a) is np)
print("with no arrays, the default backend:", get_xp().__name__)
print("default backend now:", default_xp().__name__)

# %% [markdown]
# `to_backend(x, "numpy" | "cupy" | module)` moves an array; `to_numpy` always returns a host
# copy (for printing, plotting, saving). A wrong name is refused with the list of choices:

# %%
same = minswin.to_backend(a, "numpy")
print("numpy -> numpy keeps the values:", np.array_equal(same, a))
try:
    minswin.to_backend(a, "jax")
except ValueError as err:
    refused = str(err)
print("refused:", refused)

# %% [markdown]
# ## What differs between the two libraries
#
# Almost nothing, and it lives in `minswin/backend.py` only:
#
# * `erf` (for the exact GELU) comes from `scipy.special` or `cupyx.scipy.special`;
# * the one scatter-add (the relative-bias backward, tutorial 6) is `xp.add.at`, which both
#   libraries have (CuPy ≥ 12.1), wrapped as `index_add`;
# * DropPath's random masks are drawn where the activations are (`random_uniform`): on a GPU
#   the model's NumPy generator only seeds the draw, so no mask is copied from the host;
# * moving data is explicit: mixing a NumPy and a CuPy array in one op is an error, never a
#   silent copy.

# %%
target = np.zeros(3)
index_add(target, np.array([0, 2, 2, 2]), np.array([1.0, 1.0, 1.0, 1.0]))
print("index_add accumulates repeats:", target)

# %% [markdown]
# ## A model on the CPU

# %%
cpu_model = minswin.create_model("swin_micro", num_classes=10, dtype="float64", seed=0)
x = g.standard_normal((2, 32, 32, 3))
cpu_logits = cpu_model.forward(x)
print("parameters live in", get_xp(cpu_model.params["head.weight"]).__name__,
      "; logits", cpu_logits.shape)

# %% [markdown]
# Two backends never agree bit for bit: their kernels add in different orders. What such a
# difference looks like is easiest to see with one backend and two precisions. The same
# model (same seed) in float32 against float64, every logit: the gaps sit near float32's
# rounding step (its eps, printed below, times the value).
#
# What to expect on a GPU, and why: CuPy computes in the same IEEE float32 and float64 as
# NumPy, so only the order of additions differs (and the library functions, e.g. `erf`, by a
# unit or two in the last place). A GPU run should therefore differ from the CPU by a few eps
# of its precision times the depth of the sums: near float32's eps in float32, near float64's
# in float64. **This has not been measured here: nothing in minswin has run on a GPU yet.**
# `make gpu-check` measures both gaps on the first machine with one, and the cell after the
# figure prints them when this notebook runs on a GPU.

# %%
f32_model = minswin.create_model("swin_micro", num_classes=10, dtype="float32", seed=0)
f32_logits = f32_model.forward(x.astype(np.float32)).astype(np.float64)
rel_gap = np.abs(f32_logits - cpu_logits) / np.abs(cpu_logits).max()     # (2, 10)
print(f"largest float32 vs float64 logit gap, relative to the largest logit: {rel_gap.max():.1e}")
print(f"eps: float32 {np.finfo(np.float32).eps:.1e}, float64 {np.finfo(np.float64).eps:.1e}")
fig = Figure(figsize=(7.5, 3.2), layout="constrained")
ax = fig.subplots()
for b in range(rel_gap.shape[0]):
    ax.semilogy(np.arange(10), np.maximum(rel_gap[b], 1e-18), "o-", label=f"image {b}")
ax.axhline(np.finfo(np.float32).eps, color="grey", ls="--", label="float32 eps (1.2e-7)")
ax.axhline(np.finfo(np.float64).eps, color="grey", ls=":", label="float64 eps (2.2e-16)")
ax.set(xlabel="class (logit index)", ylabel="|float32 - float64| / max |logit|",
       ylim=(1e-17, 1e-4), xticks=range(10),
       title="swin_micro, same weights: float32 logits vs float64 logits")
ax.legend(fontsize=8, ncol=3, loc="upper center")
show(fig, "09_float32_vs_float64.png")

# %% [markdown]
# ## The same model on a GPU, if there is one
#
# `minswin.use("cupy")` makes new models live on the GPU. Initial weights are drawn on the
# host from the same seeded generator, so the GPU model has exactly the CPU model's weights;
# the input is moved with `to_backend`. Without CuPy or a GPU, `use("cupy")` raises a
# `RuntimeError` that says why.

# %%
gpu = cupy_available()
print("CuPy with a GPU available:", gpu)
if gpu:
    minswin.use("cupy")
    try:
        gpu_model = minswin.create_model("swin_micro", num_classes=10, dtype="float64",
                                         seed=0)
        x_gpu = minswin.to_backend(x, "cupy")
        gpu_logits = gpu_model.forward(x_gpu)
        print("GPU logits live in", get_xp(gpu_logits).__name__)
        gpu_gap = float(np.abs(to_numpy(gpu_logits) - cpu_logits).max())
        dx_gpu = gpu_model.backward(minswin.to_backend(np.ones_like(cpu_logits), "cupy"))
        dx_cpu = cpu_model.backward(np.ones_like(cpu_logits))
        gpu_grad_gap = float(np.abs(to_numpy(dx_gpu) - dx_cpu).max())
        try:
            get_xp(x, x_gpu)                               # mixing backends is refused
            mixed = None
        except TypeError as err:
            mixed = str(err)
        print(f"CPU vs GPU: logits {gpu_gap:.1e}, input gradients {gpu_grad_gap:.1e}")
        print("mixing refused:", mixed)
    finally:
        minswin.use("numpy")
else:
    try:
        minswin.use("cupy")
    except RuntimeError as err:
        print("use('cupy') refused:", err)
    print("default backend is still", default_xp().__name__)

# %% [markdown]
# ## Questions
#
# * **Why not the Array API standard?** It has no `einsum` and no scatter-add with repeated
#   indices, both of which Swin's backward needs; minswin stays close to its subset.
# * **Why are masks built with NumPy even on a GPU?** They are constants of (map size, M,
#   shift), built once on the host and moved to the backend that asks for them.
# * **Why float64 on the GPU here?** To compare with the CPU to round-off; training would
#   use float32.

# %% [markdown]
# ## Checks

# %%
assert get_xp(a) is np and default_xp() is np
assert 0 < rel_gap.max() < 1e-5
assert "jax" in refused
assert target.tolist() == [1.0, 0.0, 3.0]
assert cpu_logits.shape == (2, 10) and np.all(np.isfinite(cpu_logits))
if gpu:
    assert gpu_gap < 1e-10 and gpu_grad_gap < 1e-10 and mixed is not None
print("tutorial 9: all checks passed")
