"""Shared helpers of the figures: a fresh Figure, host copies, colours, grids and saving.

Every figure function builds its own `matplotlib.figure.Figure` (never pyplot's global state,
never `plt.show()`), so it works headless, in notebooks and in tests alike.
"""
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from ..backend import to_numpy

# The nine regions of a shifted map, one colour each (matplotlib's tab10 minus its grey)
REGION_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                  "#8c564b", "#e377c2", "#bcbd22", "#17becf")
REGION_CMAP = ListedColormap(REGION_COLOURS, name="regions")
# Mask pictures: light = the pair is attended (mask 0), dark = the pair is masked (-100)
MASK_CMAP = ListedColormap(["#f4f1e8", "#3b1f47"], name="mask")
SAVE_FORMATS = ("png", "svg", "pdf")


def new_figure(width, height):
    """A blank Figure of (width, height) inches with constrained layout and an Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def suptitle(fig, text, fontsize=11):
    """The figure's title, wrapped at spaces to the figure's width so that no part of it is
    cut off at the sides (a title wider than the figure is clipped, not shrunk)."""
    import textwrap
    width_pt = fig.get_figwidth() * 72
    chars = max(20, int(width_pt / (0.55 * fontsize)))     # a proportional font's average
    lines = [textwrap.fill(line, chars) for line in str(text).split("\n")]
    return fig.suptitle("\n".join(lines), fontsize=fontsize)


def host(x):
    """A NumPy copy of an array from either backend (figures draw on the host)."""
    return np.asarray(to_numpy(x))


def host_image(image, batch=0):
    """A NumPy copy of an image given as (H, W, C) or as a batch (B, H, W, C): (H, W, C),
    item `batch` of a batch."""
    image = host(image)
    return image[batch] if image.ndim == 4 else image


def shift_title(sh, sw):
    """S as the titles write it: one number when both axes shift alike, else the pair."""
    return sh if sh == sw else (sh, sw)


def cyclic_colours(n, cmap="tab20"):
    """A ListedColormap of n colours cycling through a qualitative palette (window ids)."""
    from matplotlib import colormaps
    base = colormaps[cmap].colors
    return ListedColormap([base[i % len(base)] for i in range(max(n, 1))])


def boundary_segments(ids):
    """Line segments between neighbouring cells with different ids, in imshow coordinates.

    ids (H, W) -> list of ((x0, y0), (x1, y1)); cell (r, c) spans [c-0.5, c+0.5] x [r-0.5, r+0.5].
    """
    ids = np.asarray(ids)
    H, W = ids.shape
    segs = []
    rr, cc = np.nonzero(ids[:, 1:] != ids[:, :-1])        # vertical edges
    segs += [((c + 0.5, r - 0.5), (c + 0.5, r + 0.5)) for r, c in zip(rr, cc)]
    rr, cc = np.nonzero(ids[1:, :] != ids[:-1, :])        # horizontal edges
    segs += [((c - 0.5, r + 0.5), (c + 0.5, r + 0.5)) for r, c in zip(rr, cc)]
    return segs


def draw_boundaries(ax, ids, color="black", lw=2.0, **kw):
    """Draw the outlines of the regions of an id map (windows, regions) on an imshow axes."""
    lc = LineCollection(boundary_segments(ids), colors=color, linewidths=lw, **kw)
    ax.add_collection(lc)
    return lc


def draw_cell_grid(ax, H, W, color="white", lw=0.5, alpha=0.6):
    """Thin lines between all cells of an H x W imshow (the tokens)."""
    ax.set_xticks(np.arange(-0.5, W, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, H, 1), minor=True)
    ax.grid(which="minor", color=color, linewidth=lw, alpha=alpha)
    ax.tick_params(which="minor", length=0)


def annotate_cells(ax, values, fmt="{}", fontsize=9, image=None, dy=0.0, fontweight="normal"):
    """Write fmt.format(v) of each value v of a 2-d array into its imshow cell (row r, col c).

    image: the AxesImage under the text; each text is then black or white, whichever reads
    better on its cell's colour (black without one). dy: move the text down by this fraction
    of a cell (negative: up), to fit two lines into a cell.
    """
    colours = None if image is None else image.get_array()      # what each cell shows
    for (r, c), v in np.ndenumerate(values):
        colour = "black" if image is None else \
            text_colour_on(image.cmap(image.norm(colours[r, c])))
        ax.text(c, r + dy, fmt.format(v), ha="center", va="center", fontsize=fontsize,
                color=colour, fontweight=fontweight)


def check_window_id(window_id, nW, where=""):
    """window_id as an int, one of the nW windows there are; `where` says what holds them, for
    the message (e.g. "the 8x8 map has 4 windows of 4x4")."""
    if isinstance(window_id, bool) or not isinstance(window_id, (int, np.integer)) \
            or not 0 <= window_id < nW:
        raise ValueError(f"window_id: expected 0 <= window_id < {nW}"
                         + (f" ({where})" if where else "") + f", got {window_id!r}")
    return int(window_id)


def check_heads(heads, nH, max_heads):
    """The head indices to draw: the first `max_heads` when heads is None, else `heads`, each
    checked against the nH heads there are."""
    heads = list(range(min(nH, max_heads))) if heads is None else [int(h) for h in heads]
    for h in heads:
        if not 0 <= h < nH:
            raise ValueError(f"heads: expected 0 <= head < {nH}, got {h}")
    return heads


def piece_centres(inside):
    """Centres of the connected rectangles of a boolean map (pieces of one window)."""
    H, W = inside.shape
    rows = np.nonzero(inside.any(1))[0]
    cols = np.nonzero(inside.any(0))[0]
    out = []
    for rs in runs(rows):
        for cs in runs(cols):
            if inside[rs[0], cs[0]]:
                out.append(((rs[0] + rs[-1]) / 2, (cs[0] + cs[-1]) / 2))
    return out


def runs(idx):
    """Split sorted integers into runs of consecutive values."""
    out, cur = [], [idx[0]]
    for i in idx[1:]:
        if i == cur[-1] + 1:
            cur.append(i)
        else:
            out.append(cur)
            cur = [i]
    out.append(cur)
    return out


def text_colour_on(rgba):
    """Black or white, whichever reads better on a background colour."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


def token_ticks(ax, N, M, axis="both"):
    """Token-index ticks for an (N, N) picture: all of them when N is small, else every M.

    With every M-th tick the picture also gets faint lines at the window rows (token i = r*M+c,
    so indices r*M .. r*M+M-1 are one row of the window).
    """
    ticks = np.arange(N) if N <= 20 else np.arange(0, N, M)
    if axis in ("both", "x"):
        ax.set_xticks(ticks)
        ax.tick_params(axis="x", labelsize=7 if N <= 20 else 8)
    if axis in ("both", "y"):
        ax.set_yticks(ticks)
        ax.tick_params(axis="y", labelsize=7 if N <= 20 else 8)
    if N > 20:
        for t in np.arange(M, N, M) - 0.5:
            ax.axhline(t, color="grey", lw=0.4, alpha=0.5)
            ax.axvline(t, color="grey", lw=0.4, alpha=0.5)


def check_format(path, formats=SAVE_FORMATS):
    """The file format from a path's extension, one of `formats`; a clear ValueError for
    anything else."""
    ext = os.path.splitext(str(path))[1].lower().lstrip(".")
    if ext not in formats:
        got = "." + ext if ext else "no extension"
        raise ValueError(f"{path}: expected a file name ending in "
                         f"{', '.join('.' + f for f in formats)}, got {got}")
    return ext


def check_writable(path):
    """Raise a one-line OSError unless `path` can be created or overwritten."""
    path = os.path.abspath(str(path))
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        above = parent
        while above and not os.path.exists(above):         # the nearest part that exists
            above = os.path.dirname(above)
        if os.path.exists(above) and not os.path.isdir(above):
            raise OSError(f"cannot write {path}: {above} is a file, not a directory")
        raise OSError(f"cannot write {path}: directory {parent} does not exist")
    if os.path.isdir(path):
        raise OSError(f"cannot write {path}: it is a directory")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise OSError(f"cannot write {path}: permission denied")
    return path


def save_figure(fig, path, dpi=130):
    """Write a Figure to PNG, SVG or PDF, chosen by the extension. Returns the path."""
    fmt = check_format(path)
    check_writable(path)
    from ..atomic import write_atomically
    write_atomically(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi))
    return str(path)
