"""Loading v1 weights made for another window: resize each relative position bias table.

A v1 checkpoint trained with window 7 has ((2*7-1)^2, nH) = (169, nH) tables; a model with
window 12 wants (529, nH). The official fine-tuning code (`utils.load_pretrained`) resizes each
table bicubically (minswin.resize_relative_bias_table) and drops the stored
`relative_position_index` and `attn_mask` buffers, which describe the old window; minswin
computes its own for the new one. Doing that silently would hide a real change of model, so
`load_state_dict` asks for it: `resize_windows=True`.

Swin V2 needs none of this: its bias is a network of the offset (ops/continuous_bias.py),
evaluated on the new window's coordinates.
"""
import re

import numpy as np

from .backend import to_numpy
from .checks import escape_name
from .ops.resize import resize_relative_bias_table, table_window

_TABLE = re.compile(r"(layers\.\d+\.blocks\.\d+)\.attn\.relative_position_bias_table$")


def resize_window_tables(model, state, resize_windows=False, log=print):
    """state (official names) -> state with every table resized to `model`'s window.

    A table whose shape differs from the model's only by its window is resized when
    resize_windows is True (one line per table through `log`), and the index and mask
    buffers of its block are dropped; otherwise a ValueError names the first such table, both
    shapes and the flag. Other shape problems are left for load_state_dict to report.
    """
    state = dict(state)
    resized = []
    for key in list(state):
        m = _TABLE.match(key)
        if not m or key not in model.params:
            continue
        ours = tuple(model.params[key].shape)
        value = to_numpy(state[key])
        if value.shape == ours or value.ndim != 2 or value.shape[1] != ours[1]:
            continue
        try:
            M_old = table_window(value, key)
        except ValueError:
            continue                                       # not a window's table: reported later
        M_new = table_window(model.params[key], key)
        if not resize_windows:
            raise ValueError(
                f"state: {key!r} has shape {tuple(value.shape)} in the checkpoint (window "
                f"{M_old}) but {ours} in the model (window {M_new}). To resize every table "
                "bicubically, as the official fine-tuning does, load with "
                "load_state_dict(state, resize_windows=True); the model is unchanged")
        state[key] = resize_relative_bias_table(value.astype(np.float64), M_new)
        for buf in ("attn.relative_position_index", "attn_mask"):
            state.pop(f"{m.group(1)}.{buf}", None)         # the old window's: rebuilt
        resized.append(f"{escape_name(key)}: {tuple(value.shape)} -> {ours} (window {M_old} "
                       f"-> {M_new})")
    if resized:
        log(f"resized {len(resized)} relative position bias table(s) bicubically:\n  "
            + "\n  ".join(resized))
    return state
