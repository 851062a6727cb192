"""The switch between the two tiers, and the one place the layers ask which one to run.

* the plain tier, minswin.ops: the maths as it reads, forward and backward side by side;
* the fast tier, minswin.fast: the same functions (names, signatures, caches) in cache-sized
  blocks on every core, in place (minswin/fast/__init__.py says what makes them faster).

    minswin.use_fast(False)        # every layer now runs the plain tier
    MINSWIN_FAST=0 python ...      # the same from the shell (1: the fast tier)

Default: fast on NumPy, where it pays; plain on CuPy, where CuPy's own kernels already use
the whole device (no GPU has measured the fast tier there). `use_fast` wins over the
environment, the environment over the default. Both tiers make the same caches, so a
backward may run on the other tier than its forward.
"""
import os
from types import SimpleNamespace

import numpy as np

from .backend import get_xp
from .fast import (
    attention as fast_attention,
    cosine_attention as fast_cosine_attention,
    gelu as fast_gelu,
    layernorm as fast_layernorm,
    linear as fast_linear,
    mlp as fast_mlp,
    patch_merging as fast_patch_merging,
    residual as fast_residual,
    softmax as fast_softmax,
)
from .ops import (
    attention,
    cosine_attention,
    gelu,
    layernorm,
    linear,
    mlp,
    patch_embed,
    patch_merging,
    residual,
    softmax,
)

ENV = "MINSWIN_FAST"

# what a tier provides: the ops the layers call through it
FUNCTIONS = ("add", "linear_forward", "linear_backward", "layernorm_forward",
             "layernorm_backward", "gelu_forward", "gelu_backward", "softmax_forward",
             "softmax_backward", "mlp_forward", "mlp_backward", "window_attention_forward",
             "window_attention_backward", "patch_embed_forward", "patch_embed_backward",
             "patch_merging_forward", "patch_merging_backward",
             "cosine_attention_forward", "cosine_attention_backward")   # Swin V2

# ops whose fast tier is the plain op itself: no twin paid. The patch embedding is one matrix
# product in both tiers (measured, Swin-T batch 8 forward+backward: 10.2 ms plain, 10.0 ms with
# a blocked bias add, of a 1.6 s step)
NO_FAST_TWIN = ("patch_embed_forward", "patch_embed_backward")


def _tier(name, modules):
    found = {f: getattr(m, f) for m in modules for f in FUNCTIONS if hasattr(m, f)}
    missing = set(FUNCTIONS) - set(found)
    assert not missing, f"the {name} tier lacks {sorted(missing)}"
    return SimpleNamespace(name=name, **found)


PLAIN = _tier("plain", (residual, linear, layernorm, gelu, softmax, mlp, attention,
                        patch_embed, patch_merging, cosine_attention))
FAST = _tier("fast", (fast_residual, fast_linear, fast_layernorm, fast_gelu, fast_softmax,
                      fast_mlp, fast_attention, patch_embed, fast_patch_merging,
                      fast_cosine_attention))

_setting = None          # use_fast's last word: True, False, or None (environment, default)


def use_fast(enabled):
    """Run the layers on the fast tier (True), the plain tier (False), or as the environment
    and the backend decide (None, the default). Returns the previous setting, to restore it:

        previous = minswin.use_fast(False)
        ...
        minswin.use_fast(previous)
    """
    global _setting
    if enabled is not None and not isinstance(enabled, (bool, np.bool_)):
        raise TypeError(f"enabled: expected True, False or None, got {enabled!r}")
    previous, _setting = _setting, None if enabled is None else bool(enabled)
    return previous


def fast_enabled(xp=np):
    """Whether the layers run the fast tier on backend xp now."""
    if _setting is not None:
        return _setting
    value = os.environ.get(ENV, "").strip()
    if value in ("0", "1"):
        return value == "1"
    if value:
        raise ValueError(f"{ENV}: expected 0 (plain tier) or 1 (fast tier), got {value!r}")
    return xp is np


def tier(*arrays):
    """The tier the layers run on these arrays: PLAIN or FAST (a namespace of FUNCTIONS)."""
    return FAST if fast_enabled(get_xp(*arrays)) else PLAIN
