"""Figure 4: the relative position index, built up step by step, and its (N, N) heat map.

Every number comes from `relative_coordinates` and `relative_position_index`:
rel[:, i, j] = position of query i minus position of key j; shift both offsets by M-1 to make
them 0..2M-2; multiply the row offset by 2M-1; add. Each (dr, dc) lands on its own table row.
"""
import numpy as np
from matplotlib.patches import Rectangle

from ..checks import check_positive_int
from ..ops.masks import relative_coordinates, relative_position_index
from ._common import annotate_cells, new_figure, token_ticks

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


def plot_relative_position_index(window=7):
    """The (N, N) index as a heat map with a colour bar naming the bias-table row.

    axes[0]'s first image is `relative_position_index(window)`.
    """
    M = check_positive_int("window", window)
    N, T = M * M, (2 * M - 1) ** 2
    index = relative_position_index(M)                     # (N, N)
    fig = new_figure(8.6, 7.6)
    ax = fig.add_subplot()
    im = ax.imshow(index, cmap="viridis", vmin=0, vmax=T - 1, interpolation="nearest")
    token_ticks(ax, N, M)
    ax.set_xlabel(f"key token j (ticks every {M} tokens = one window row)" if N > 20 else
                  "key token j")
    ax.set_ylabel("query token i")
    if N <= 16:
        annotate_cells(ax, index, fontsize=8, image=im)
    bar = fig.colorbar(im, ax=ax, shrink=0.85)
    bar.set_label(f"row of the relative_position_bias_table read for the pair (0..{T - 1})")
    centre = int(index[0, 0])
    ax.set_title(f"relative_position_index({M}): {N}x{N}, values 0..{int(index.max())}\n"
                 f"diagonal = {centre} (no offset); index[0, {N - 1}] = {int(index[0, N - 1])},"
                 f" index[{N - 1}, 0] = {int(index[N - 1, 0])}", fontsize=11)
    return fig
