"""Swin V2 checkpoints: timm's and torchvision's names, and the V2 buffers.

Official and timm V2 name the attention's parameters alike (`attn.logit_scale`, `attn.q_bias`,
`attn.v_bias`, `attn.cpb_mlp.{0,2}.*`); timm moves the merging and the head as in v1, and
torchvision uses its `features.*` layout (checkpoint.py's key maps do both; its
load_state_dict then calls `v2_state_to_official` for a V2 model). What is V2's own:

* torchvision has an ordinary `qkv.bias` (3C,) whose middle (k) third its forward zeroes on
  every call; it is split here into `q_bias` and `v_bias`, and a non-zero k third is refused
  (a file like that was not written by torchvision's V2, or was edited);
* the buffer `relative_coords_table` (1, 2M-1, 2M-1, 2), the network's input, is compared with
  minswin's own and dropped. The references build it in float32, minswin in float64, so it is
  accepted within float32 round-off (1e-6);
* `relative_position_index` and `attn_mask` are v1's buffers, checked by checkpoint.py.
"""
import re

import numpy as np

from .backend import to_numpy

COORDS_ATOL = 1e-6    # float32 round-off of values in [-1.1, 1.1]
_COORDS = re.compile(r"layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_coords_table$")


def v2_state_to_official(model, state, fmt, problems, resize_windows=False, log=print):
    """state with official key names (checkpoint.to_official_keys has run; fmt is the format
    it came in) -> q_bias/v_bias from torchvision's qkv.bias, coordinate tables checked and
    dropped. What is wrong is appended to `problems` (checkpoint.load_state_dict reports it
    with the rest and loads nothing then).

    A V2 checkpoint made for another window loads as it is: no parameter depends on the
    window. Only its buffers describe the old window; with resize_windows=True they are
    dropped (minswin computes its own), without it the load is refused and says so.
    """
    state = {k: to_numpy(v) for k, v in state.items()}
    if resize_windows:
        state = _drop_other_window_buffers(model, state, log)
    if fmt == "torchvision":
        state = _split_qkv_bias(state, problems)
    for key in [k for k in state if k.endswith("relative_coords_table")]:
        _check_coords(model, key, state.pop(key), problems)
    return state


def _split_qkv_bias(state, problems):
    out = {}
    for key, value in state.items():
        if not key.endswith(".attn.qkv.bias"):
            out[key] = value
            continue
        C = value.size // 3
        if value.ndim != 1 or value.size != 3 * C:
            problems.append(f"{key!r}: expected a (3C,) bias, got {tuple(value.shape)}")
            continue
        k_third = np.abs(value[C:2 * C]).max() if C else 0.0
        if k_third != 0:
            problems.append(f"{key!r}: the k third (entries {C}..{2 * C - 1}) must be zero in a "
                            f"Swin V2 checkpoint (torchvision zeroes it), but max |k bias| = "
                            f"{k_third:.3g}")          # q and v still split: not missing
        prefix = key[:-len("qkv.bias")]
        out[prefix + "q_bias"] = value[:C]
        out[prefix + "v_bias"] = value[2 * C:]
    return out


def _check_coords(model, key, value, problems):
    m = _COORDS.match(key)
    if not m:
        problems.append(f"unexpected buffer {key!r} {tuple(value.shape)}")
        return
    i, j = int(m.group(1)), int(m.group(2))
    if i >= len(model.layers) or j >= len(model.layers[i].blocks):
        problems.append(f"unexpected buffer {key!r}: the model has no such block")
        return
    ours = model.layers[i].blocks[j].attn.coords           # (2M-1, 2M-1, 2) float64
    stored = tuple(value.shape)
    if stored == (1, *ours.shape):
        value = value[0]                                   # the references' leading 1
    if value.shape != ours.shape:
        problems.append(f"buffer {key!r} {stored} does not fit the model's window: expected "
                        f"{(1, *ours.shape)}")
    elif not np.allclose(value.astype(np.float64), ours, rtol=0, atol=COORDS_ATOL):
        gap = float(np.abs(value.astype(np.float64) - ours).max())
        problems.append(f"buffer {key!r} differs from the coordinates minswin computes (max "
                        f"|difference| {gap:.3g} > {COORDS_ATOL:g}): another window or "
                        "pretrained_window_size?")


_BUFFER = re.compile(r"layers\.(\d+)\.blocks\.(\d+)\."
                     r"(attn\.relative_coords_table|attn\.relative_position_index|attn_mask)$")


def _drop_other_window_buffers(model, state, log):
    """Drop the buffers whose shape is not the one minswin's block would have."""
    dropped = []
    for key in list(state):
        m = _BUFFER.match(key)
        if not m:
            continue
        i, j = int(m.group(1)), int(m.group(2))
        if i >= len(model.layers) or j >= len(model.layers[i].blocks):
            continue                                       # reported as unexpected later
        blk = model.layers[i].blocks[j]
        N = blk.window_size ** 2
        (Hp, Wp), _ = blk.window_shift_for(*blk.input_resolution)
        fits = {"attn.relative_coords_table": [(1, *blk.attn.coords.shape)],
                "attn.relative_position_index": [(N, N), (N * N,)],
                "attn_mask": [((Hp // blk.window_size) * (Wp // blk.window_size), N, N)]}
        if tuple(state[key].shape) not in fits[m.group(3)]:
            dropped.append(f"{key!r} {tuple(state[key].shape)}")
            del state[key]
    if dropped:
        log(f"dropped {len(dropped)} buffer(s) made for another window (V2 resizes nothing: "
            "cpb_mlp is evaluated on this model's coordinates):\n  " + "\n  ".join(dropped))
    return state
