"""Figure 7: patch merging, a 2x2 neighbourhood turned into channels.

A one-channel 4x4 map holding 1..16 goes through `merge_2x2`, the function the model calls:
the four strided sub-grids x0 = x[0::2, 0::2], x1 = x[1::2, 0::2], x2 = x[0::2, 1::2],
x3 = x[1::2, 1::2] are concatenated on channels (note x1 is the ODD ROW: inside each 2x2 cell
the order is top-left, bottom-left, top-right, bottom-right). Then LayerNorm(4C) and a
Linear(4C -> 2C) (`patch_merging_forward`, seeded random weights) halve H and W and double C.
"""
import numpy as np

from ..backend import rng
from ..checks import check_positive_int
from ..ops.patch_merging import merge_2x2, patch_merging_forward
from ._common import REGION_CMAP, annotate_cells, draw_cell_grid, new_figure, suptitle

SLICES = ("x[0::2, 0::2]", "x[1::2, 0::2]", "x[0::2, 1::2]", "x[1::2, 1::2]")


def merging_arrays(size=4, seed=0):
    """The arrays of the figure: input (size, size), which sub-grid each pixel goes to,
    the merged (size/2, size/2, 4) map and the (size/2, size/2, 2) output of the module."""
    n = check_positive_int("size", size)
    if n % 2:
        raise ValueError(f"size: expected an even map side for the picture, got {n}")
    x = np.arange(1, n * n + 1, dtype=np.float64).reshape(1, n, n, 1)   # (1, n, n, 1)
    merged = merge_2x2(x)                                  # (1, n/2, n/2, 4)
    owner = np.zeros((n, n), dtype=np.int64)               # which channel block holds x[r, c]
    for k in range(4):
        for v in merged[0, :, :, k].ravel():
            owner[np.nonzero(x[0, :, :, 0] == v)] = k
    g = rng(seed)
    gamma = 1 + 0.1 * g.standard_normal(4)                 # LayerNorm(4C) affine, C = 1
    beta = 0.1 * g.standard_normal(4)
    w_red = 0.5 * g.standard_normal((2, 4))                # reduction: Linear(4C -> 2C)
    out, _ = patch_merging_forward(x, gamma, beta, w_red)  # (1, n/2, n/2, 2)
    return {"x": x[0, :, :, 0], "owner": owner, "merged": merged[0], "out": out[0]}


def _grid(ax, values, colours, fmt="{:g}", fontsize=12, title=None):
    im = ax.imshow(colours, cmap=REGION_CMAP, vmin=-0.5, vmax=8.5, interpolation="nearest")
    annotate_cells(ax, values, fmt, fontsize, image=im, fontweight="bold")
    draw_cell_grid(ax, *values.shape, color="white", lw=2, alpha=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    return im


def _merged_cells(ax, merged, fontsize):
    """The (h, h, 4) concat as h x h cells of 4 stripes: cell (i, j) is the 4-vector
    merged[i, j] = [x0, x1, x2, x3] at that position, each stripe coloured by its sub-grid."""
    h = merged.shape[0]
    flat = merged.reshape(h, 4 * h)                        # row i: cell j at columns 4j..4j+3
    colours = np.tile(np.arange(4), h)[None].repeat(h, 0)  # (h, 4h) sub-grid of each stripe
    _grid(ax, flat, colours, fontsize=fontsize)
    for j in range(1, h):                                  # thick lines between the cells
        ax.axvline(4 * j - 0.5, color="black", lw=4)
    for i in range(1, h):
        ax.axhline(i - 0.5, color="black", lw=4)
    first = ", ".join(f"{v:g}" for v in merged[0, 0])
    ax.set_title(f"merge_2x2(x): a {h}x{h} map whose cells are 4-vectors [x0, x1, x2, x3] "
                 f"(top-left cell: {first})", fontsize=10)


def plot_patch_merging(size=4, seed=0):
    """Patch merging of a size x size one-channel map (default 4x4, values 1..16).

    Axes (mosaic names): "in" the map coloured by sub-grid; "x0".."x3" the strided slices;
    "m" the output of `merge_2x2`, each cell drawn as its 4-vector (its first image holds
    merged[i, j, k] at row i, column 4j + k); "o0", "o1" the module's 2 channels.
    """
    a = merging_arrays(size, seed)
    n = a["x"].shape[0]
    fig = new_figure(14, 8.2)
    axd = fig.subplot_mosaic([["in", "in", "x0", "x1", "x2", "x3"],
                              ["in", "in", "m", "m", "m", "m"],
                              ["txt", "txt", "o0", "o1", ".", "."]])
    fs = 14 if n <= 4 else 8
    _grid(axd["in"], a["x"], a["owner"], fontsize=fs + 4,
          title=f"input x: {n}x{n}x1 (colour = the sub-grid each pixel goes to)")
    for k in range(4):
        sub = a["x"][[0, 1, 0, 1][k]::2, [0, 0, 1, 1][k]::2]
        _grid(axd[f"x{k}"], sub, np.full(sub.shape, k), fontsize=fs,
              title=f"x{k} = {SLICES[k]}")
    h = n // 2
    _merged_cells(axd["m"], a["merged"], fs)
    for k in range(2):
        o = a["out"][:, :, k]
        _grid(axd[f"o{k}"], o, np.full(o.shape, 4 + k), fmt="{:.2f}", fontsize=fs - 3,
              title=f"output channel {k}")
    note = ""
    if np.allclose(a["out"], a["out"][:1, :1]):
        note = (f"\n\n(every 2x2 cell of 1..{n * n} is the same\n pattern plus an offset; "
                "LayerNorm\n removes offsets, so here all\n output cells are equal)")
    axd["txt"].axis("off")
    axd["txt"].text(0.0, 0.5,
                    f"concat[x0, x1, x2, x3] on channels: {h}x{h}x4\n"
                    f"-> LayerNorm(4C) over each 4-vector\n"
                    f"-> Linear(4C -> 2C, no bias)\n"
                    f"= {h}x{h}x2: half the resolution,\n   twice the channels" + note,
                    fontsize=12, va="center", family="monospace")
    suptitle(fig, "Patch merging (`merge_2x2`, `patch_merging_forward`): each 2x2 cell becomes "
                  "one 4C vector, in the order top-left, bottom-left, top-right, bottom-right",
                  fontsize=12)
    return fig
