"""Figure 4: the relative position index, built up step by step, and its (N, N) heat map.

Every number comes from `relative_coordinates` and `relative_position_index`:
rel[:, i, j] = position of query i minus position of key j; shift both offsets by M-1 to make
them 0..2M-2; multiply the row offset by 2M-1; add. Each (dr, dc) lands on its own table row.
"""
import numpy as np
from matplotlib.patches import Rectangle

from ..checks import check_positive_int
from ..ops.masks import relative_coordinates, relative_position_index
from ._common import annotate_cells, new_figure, text_colour_on

_WALK_MAX = 3      # beyond 3x3 windows (81 numbers a panel) the walk-through is unreadable


def index_steps(window):
    """The arrays of the walk-through for an M x M window, as a list of (title, array).

    The last array is `relative_position_index(M)`; the others are the intermediate steps.
    """
    M = check_positive_int("window", window)
    rel = relative_coordinates(M)                          # (2, N, N)
    dr, dc = rel[0], rel[1]                                # (N, N) each
    sr, sc = dr + (M - 1), dc + (M - 1)                    # (N, N) each, 0..2M-2
    row_part = sr * (2 * M - 1)                            # (N, N)
    index = relative_position_index(M)                     # (N, N)
    return [("relative row  dr = r_i - r_j", dr),
            ("relative column  dc = c_i - c_j", dc),
            (f"dr + (M-1) = dr + {M - 1}", sr),
            (f"dc + (M-1) = dc + {M - 1}", sc),
            (f"(dr + {M - 1}) x (2M-1) = x {2 * M - 1}", row_part),
            ("index = row part + (dc + M-1)", index)]


def _matrix(ax, a, title, cmap="coolwarm", fontsize=10):
    """An (N, N) step of the walk-through, coloured and numbered."""
    N = a.shape[0]
    m = max(1, np.abs(a).max())
    vmin, vmax = (-m, m) if a.min() < 0 else (0, a.max())
    im = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    annotate_cells(ax, a, fontsize=fontsize, image=im)
    ax.set_xticks(range(N))
    ax.set_yticks(range(N))
    ax.tick_params(labelsize=8)
    ax.set_xlabel("key j", fontsize=8)
    ax.set_ylabel("query i", fontsize=8)
    ax.set_title(title, fontsize=10)
    return im


def plot_index_walkthrough(window=2):
    """The 2x2 (or 3x3) walk-through: coordinates, offsets per axis, +(M-1), x(2M-1), index.

    axes[0] shows the absolute coordinates; axes[1] the (dr, dc) pairs; axes[2..7] show the
    arrays of `index_steps(window)` in order, as their first image.
    """
    M = check_positive_int("window", window)
    if M > _WALK_MAX:
        raise ValueError(f"window: the walk-through is drawn for M <= {_WALK_MAX} (the "
                         f"numbers would not fit), got {M}; use plot_relative_position_index")
    N = M * M
    rel = relative_coordinates(M)                          # (2, N, N)
    steps = index_steps(M)
    fs = 11 if M == 2 else 7
    fig = new_figure(15, 8.4)
    axes = fig.subplots(2, 4).ravel()
    ax = axes[0]
    tokens = np.arange(N).reshape(M, M)
    ax.imshow(tokens, cmap="Pastel1", vmin=-0.5, vmax=8.5, interpolation="nearest")
    annotate_cells(ax, [[f"token {r * M + c}\n({r}, {c})" for c in range(M)] for r in range(M)],
                   fontsize=12)
    ax.set_xticks(range(M))
    ax.set_yticks(range(M))
    ax.set_xlabel("column c")
    ax.set_ylabel("row r")
    ax.set_title(f"1. absolute (row, col) of the {N} tokens\nof a {M}x{M} window, "
                 "token n = r*M + c", fontsize=10)
    ax = axes[1]
    pairs = np.empty((N, N), dtype=object)
    for i in range(N):
        for j in range(N):
            pairs[i, j] = f"({rel[0, i, j]},{rel[1, i, j]})"
    ax.imshow(np.add.outer(np.arange(N) // M, np.zeros(N, int)) % 2, cmap="Greys",
              vmin=0, vmax=6, interpolation="nearest")
    annotate_cells(ax, pairs, fontsize=fs)
    for q in range(N):                                     # one M x M block per query row
        ax.add_patch(Rectangle((-0.5, q - 0.5), N, 1, fill=False, ec="grey", lw=0.5))
    ax.set_xticks(range(N))
    ax.set_yticks(range(N))
    ax.tick_params(labelsize=8)
    ax.set_xlabel("key j", fontsize=8)
    ax.set_ylabel("query i", fontsize=8)
    ax.set_title("2. query minus key, (dr, dc):\neach row is one query's M x M "
                 "offsets, flattened", fontsize=10)
    for k, (title, a) in enumerate(steps):
        cmap = "coolwarm" if k < 2 else "viridis"
        _matrix(axes[k + 2], a, f"{k + 3}. {title}", cmap=cmap, fontsize=fs + 1)
    T = (2 * M - 1) ** 2
    fig.suptitle(f"Relative position index of a {M}x{M} window, step by step: {N}x{N} pairs "
                 f"-> rows 0..{T - 1} of the ((2M-1)^2 = {T}, heads) bias table", fontsize=12)
    return fig


def _offset_colours(M):
    """A colour per table row 0..(2M-1)^2-1: row k = (dr+M-1)(2M-1) + (dc+M-1) gets the colour
    of its column offset dc on a diverging scale (white at dc = 0), so that an image of the
    index shows the offsets rather than a smooth 0..168 ramp."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap
    S = 2 * M - 1
    diverging = colormaps["RdBu_r"]
    return ListedColormap([diverging((k % S) / max(S - 1, 1)) for k in range(S * S)])


def _index_panel(ax, index, M, cmap, rows, cols, numbers):
    """index[rows, cols] drawn in offset colours, block lines every M, optionally the values."""
    T = (2 * M - 1) ** 2
    part = index[rows, cols]
    im = ax.imshow(part, cmap=cmap, vmin=-0.5, vmax=T - 0.5, interpolation="nearest",
                   extent=(cols.start - 0.5, cols.stop - 0.5, rows.stop - 0.5, rows.start - 0.5))
    for t in range(0, index.shape[0] + 1, M):              # one block per pair of window rows
        if rows.start <= t <= rows.stop:
            ax.axhline(t - 0.5, color="black", lw=1.2)
        if cols.start <= t <= cols.stop:
            ax.axvline(t - 0.5, color="black", lw=1.2)
    if numbers:
        for (r, c), v in np.ndenumerate(part):
            ax.text(cols.start + c, rows.start + r, str(v), ha="center", va="center",
                    fontsize=7 if v < 100 else 6.5, color=text_colour_on(cmap((v + 0.5) / T)),
                    fontweight="bold" if r + rows.start == c + cols.start else "normal")
    return im


def plot_relative_position_index(window=7):
    """The (N, N) index, coloured by its column offset and cut into M x M blocks.

    index[i, j] = (dr + M-1)(2M-1) + (dc + M-1): the row offset dr picks the block (one per
    pair of window rows, written in it), the column offset dc the colour inside it (white at
    dc = 0, so the diagonal of the matrix, offset (0, 0), is the white line through the
    diagonal blocks). For M > 4 a second panel zooms on the top-left 2M x 2M corner with the
    values written in. axes[0]'s first image is `relative_position_index(window)`.
    """
    M = check_positive_int("window", window)
    N, S, T = M * M, 2 * M - 1, (2 * M - 1) ** 2
    index = relative_position_index(M)                     # (N, N)
    cmap = _offset_colours(M)
    zoom = M > 4
    fig = new_figure(15.5 if zoom else 8.6, 8.2 if zoom else 7.6)
    axes = fig.subplots(1, 2 if zoom else 1, squeeze=False)[0]
    ax = axes[0]
    _index_panel(ax, index, M, cmap, slice(0, N), slice(0, N), numbers=N <= 16)
    ax.set_xticks(np.arange(0, N, M) if N > 16 else np.arange(N))
    ax.set_yticks(np.arange(0, N, M) if N > 16 else np.arange(N))
    ax.tick_params(labelsize=8)
    ax.set_xlabel(f"key token j = {M}·row + column" if N > 16 else "key token j")
    ax.set_ylabel("query token i")
    if N > 16:                                             # the row offset of each block
        for bi in range(M):
            for bj in range(M):
                ax.text(bj * M + (M - 1) / 2, bi * M + (M - 1) / 2, f"dr={bi - bj:+d}",
                        ha="center", va="center", fontsize=8, color="black",
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none",
                                  alpha=0.75))
    centre = int(index[0, 0])
    ax.set_title(f"relative_position_index({M}): {N}x{N}, table rows 0..{T - 1}\n"
                 f"row dr + {M - 1} of the {S}x{S} offsets = block, column dc = colour; "
                 f"diagonal = {centre} (offset (0, 0))", fontsize=10)
    if zoom:
        z = axes[1]
        _index_panel(z, index, M, cmap, slice(0, 2 * M), slice(0, 2 * M), numbers=True)
        z.set_xticks(np.arange(2 * M))
        z.set_yticks(np.arange(2 * M))
        z.tick_params(labelsize=8)
        z.set_xlabel("key token j")
        z.set_ylabel("query token i")
        z.set_title(f"zoom: tokens 0..{2 * M - 1} (two window rows), values written in\n"
                    f"the block of dr = 0 holds {centre - M + 1}..{centre + M - 1}, its "
                    f"diagonal {centre}; dr = +1 adds {S}, dr = -1 subtracts {S}", fontsize=10)
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm
    dc = np.arange(-(M - 1), M)
    mappable = ScalarMappable(BoundaryNorm(np.arange(-(M - 1) - 0.5, M), S),
                              colormaps["RdBu_r"].resampled(S))
    bar = fig.colorbar(mappable, ax=list(axes), shrink=0.8, ticks=dc)
    bar.set_label(f"column offset dc = c_i - c_j: colour of the bias_table row "
                  f"(dr+{M - 1})·{S} + (dc+{M - 1})")
    return fig
