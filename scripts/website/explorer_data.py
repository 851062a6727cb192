"""The numbers of the window-and-mask explorer, computed by minswin and written as data.

The explorer page (templates/explorer.html.j2, static/explorer.js) only displays and selects:
every number it shows is in these files. For each setting a learner can choose (map size,
window M, shift S) a Swin block is built for that map, exactly as a model builds one
(`minswin.model.SwinTransformerBlock`), and asked what it does on it: which window and shift it
really uses (the official rule shrinks a window that covers the map and turns the shift off),
how far it pads, and then minswin's own ops give

    the roll          ops.window.cyclic_shift of a map of token ids
    the windows       ops.window.window_partition of the rolled token ids (window w, slot n)
    the regions       ops.masks.region_labels (label = 3*row_band + col_band, the official order)
    the mask          ops.masks.attention_mask, stored once per distinct (N, N) window mask
    the index         ops.masks.relative_position_index of the window used
    the bias          the shipped swin_digits' relative_position_bias() per block (window 4)

Token t is a position of the padded map before the roll, t = r*Wp + c; "after" positions
are positions of the rolled map, p = r'*Wp + c'. All arrays are flat, row-major.
"""
import json

import numpy as np

from minswin.model import SwinTransformerBlock
from minswin.ops.masks import attention_mask, region_labels, relative_position_index
from minswin.ops.window import cyclic_shift, window_partition
from minswin.viz._common import REGION_COLOURS

# (H, W, what it is): the maps a learner meets
MAPS = (
    (8, 8, "the explainer's example; swin_digits stage 1"),
    (4, 4, "the smallest shifted map; swin_digits stage 2"),
    (56, 56, "Swin-T stage 1 at 224"),
    (28, 28, "Swin-T stage 2"),
    (14, 14, "Swin-T stage 3"),
    (7, 7, "Swin-T stage 4"),
    (50, 65, "Swin-T stage 1 of a 200x260 image: padded"),
    (7, 10, "odd sizes: padded"),
    (5, 5, "odd: padded"),
    (3, 5, "smaller than most windows"),
)
WINDOWS = (2, 4, 7)                       # 7: Swin-T; 4: swin_digits and the explainer
DEFAULT = (8, 8, 4, 2)                    # the explainer's 8x8 map, M = 4, S = 2
BIAS_MODEL = "swin_digits"


def case_key(H, W, window, shift):
    return f"{H}x{W}-w{window}-s{shift}"


def block_decision(H, W, window, shift):
    """What a Swin block built for an (H, W) map with this window and shift does on it.

    Returns (M, (sh, sw), (Hp, Wp)): the window it uses, its shift per axis, the padded size.
    Asked of a real block (one head, width 1: the decision does not depend on either).
    """
    block = SwinTransformerBlock(1, (H, W), 1, window, shift, 1.0, 0.0,
                                 np.random.default_rng(0), np.float64)
    (Hp, Wp), (sh, sw) = block.window_shift_for(H, W)
    return block.window_size, (sh, sw), (Hp, Wp)


def explain(H, W, window, shift, M, sh, sw, Hp, Wp):
    """Sentences saying what the block does with these settings and why (shown on the page)."""
    said = []
    if M != window:
        said.append(f"The {window}x{window} window would cover the whole {H}x{W} map "
                    f"(min(H, W) = {min(H, W)} <= {window}), so the block shrinks it to "
                    f"{M}x{M} and turns the shift off: Swin's official rule.")
    if (Hp, Wp) != (H, W):
        said.append(f"{H}x{W} is not a multiple of the window: the map is padded at the "
                    f"bottom and right with zero tokens to {Hp}x{Wp}. Padding tokens are not "
                    f"masked: they are keys like any other, and are cropped away after "
                    f"attention.")
    if (sh, sw) == (0, 0):
        said.append("No shift: the windows sit on the grid, nothing is rolled and no mask is "
                    "added (W-MSA). Every token attends to all the tokens of its window.")
    else:
        said.append(f"The map is rolled up by {sh} and left by {sw} tokens (cyclic shift), then "
                    f"cut into windows. Tokens of a window that were not neighbours before the "
                    f"roll carry different region numbers, and the mask (-100) stops them "
                    f"attending to each other (SW-MSA).")
    return said


def _partition_ids(ids, M):
    """(Hp, Wp) integer ids -> (nW, N), through minswin's window_partition (which takes
    float maps: ids up to 2^53 are exact in float64)."""
    win = window_partition(ids[None, :, :, None].astype(np.float64), M)   # (nW, M, M, 1)
    return win.reshape(win.shape[0], M * M).astype(np.int64)


def explorer_case(H, W, window, shift):
    """Everything the page shows for one setting, as JSON-able lists."""
    M, (sh, sw), (Hp, Wp) = block_decision(H, W, window, shift)
    nWh, nWw = Hp // M, Wp // M
    token = np.arange(Hp * Wp).reshape(1, Hp, Wp, 1)                 # token id t = r*Wp + c
    at_after = cyclic_shift(token, (sh, sw))[0, :, :, 0]             # (Hp, Wp) token at p
    after_of = np.empty(Hp * Wp, dtype=np.int64)
    after_of[at_after.ravel()] = np.arange(Hp * Wp)                  # p of token t
    window_tokens = _partition_ids(at_after, M)                      # (nW, N) token ids t
    cells = _partition_ids(np.arange(Hp * Wp).reshape(Hp, Wp), M)    # (nW, N) positions p
    window_of = np.empty(Hp * Wp, dtype=np.int64)
    slot_of = np.empty(Hp * Wp, dtype=np.int64)
    window_of[cells] = np.arange(nWh * nWw)[:, None]
    slot_of[cells] = np.arange(M * M)[None, :]
    labels = region_labels(Hp, Wp, M, (sh, sw))                      # (Hp, Wp) after the roll
    mask = attention_mask(Hp, Wp, M, (sh, sw))                       # (nW, N, N)
    distinct, which = np.unique(mask.reshape(mask.shape[0], -1), axis=0, return_inverse=True)
    rows, cols = np.divmod(np.arange(Hp * Wp), Wp)
    return {
        "key": case_key(H, W, window, shift),
        "asked": {"H": H, "W": W, "window": window, "shift": shift},
        "used": {"window": M, "shift": [sh, sw], "padded": [Hp, Wp],
                 "windows": [nWh, nWw], "tokens_per_window": M * M,
                 "regions": int(len(np.unique(labels))), "masked": bool((sh, sw) != (0, 0))},
        "why": explain(H, W, window, shift, M, sh, sw, Hp, Wp),
        "padding": ((rows >= H) | (cols >= W)).astype(int).tolist(),  # per token t
        "after_of": after_of.tolist(),                   # token t -> after-roll position p
        "token_at": at_after.ravel().tolist(),           # after-roll position p -> token t
        "window_of": window_of.tolist(),                 # p -> window w
        "slot_of": slot_of.tolist(),                     # p -> n = r*M + c inside window w
        "region_of": labels.ravel().tolist(),            # p -> region label
        "window_tokens": window_tokens.tolist(),         # w -> its N tokens t, in slot order
        "masks": distinct.reshape(-1, M * M, M * M).tolist(),   # distinct (N, N) masks
        "window_mask": np.ravel(which).tolist(),         # w -> which of `masks` it adds
        "index": relative_position_index(M).tolist(),    # (N, N)
    }


def trained_bias(name=BIAS_MODEL):
    """The gathered (nH, N, N) relative position bias of every block of a shipped model."""
    import minswin
    model = minswin.pretrained(name)
    blocks = []
    for i, layer in enumerate(model.layers):
        for j, block in enumerate(layer.blocks):
            bias, _ = block.attn.relative_position_bias()              # (nH, N, N)
            kind = "shifted windows, SW-MSA" if block.shift_size else "windows, W-MSA"
            blocks.append({"name": f"layers.{i}.blocks.{j}",
                           "label": f"layers.{i}.blocks.{j} ({kind}, "
                                    f"{bias.shape[0]} heads)",
                           "window": block.window_size,
                           "bias": np.asarray(bias, dtype=np.float64).tolist()})
    return {"model": name, "blocks": blocks}


def all_settings():
    """Every (H, W, window, shift) the explorer offers: each map, window and shift 0..M-1."""
    return [(H, W, M, S) for H, W, _ in MAPS for M in WINDOWS for S in range(M)]


def index_data():
    """What the page needs to build its menus: maps, windows, case files, colours."""
    return {
        "maps": [{"H": H, "W": W, "label": f"{H}x{W}: {what}"} for H, W, what in MAPS],
        "windows": list(WINDOWS),
        "default": dict(zip(("H", "W", "window", "shift"), DEFAULT)),
        "files": {case_key(*s): f"data/{case_key(*s)}.js" for s in all_settings()},
        "region_colours": list(REGION_COLOURS),
        "bias_file": f"data/{BIAS_MODEL}_bias.js",
    }


def as_script(variable, key, data):
    """A JS file that files `data` under window[variable][key]: a <script> loads it from the
    file system too, where a fetch() of JSON would be refused."""
    body = json.dumps(data, separators=(",", ":"))
    return (f"(window.{variable} = window.{variable} || {{}})[{json.dumps(key)}] = "
            f"{body};\n")
