"""Figure 5: the relative position bias, a learned (2M-1) x (2M-1) table per head, gathered
into the (N, N) bias that is added to every window's attention logits.

Row k of `relative_position_bias_table` belongs to the offset (dr, dc) with
k = (dr + M-1)(2M-1) + (dc + M-1), so the column of one head, reshaped to (2M-1, 2M-1), is a
picture of "how much a query likes a key dr rows and dc columns away". The (N, N) bias is
that table read through `relative_position_index` (`relative_bias_forward`, the model's op).
"""
import numpy as np

from ..ops.masks import relative_position_index
from ..ops.relative_bias import relative_bias_forward
from ._common import check_heads, host, new_figure, suptitle, token_ticks


def table_window(table):
    """The window side M of a ((2M-1)^2, nH) table; a clear error for any other shape."""
    t = host(table)
    if t.ndim != 2:
        raise ValueError(f"table: expected a ((2M-1)^2, heads) array, got shape {t.shape}")
    side = int(round(np.sqrt(t.shape[0])))
    if side * side != t.shape[0] or side % 2 == 0:
        raise ValueError(f"table: {t.shape[0]} rows is not (2M-1)^2 for any window M")
    return (side + 1) // 2


def gathered_bias(table):
    """(nH, N, N) bias from a (T, nH) table, through the model's own gather."""
    t = host(table)
    M = table_window(t)
    bias, _ = relative_bias_forward(t, relative_position_index(M))   # (nH, N, N)
    return bias


def plot_relative_position_bias(table, heads=None, name="relative_position_bias_table",
                                max_heads=4):
    """Each chosen head's table as a (2M-1)x(2M-1) image next to its gathered (N, N) bias.

    Args: table: ((2M-1)^2, nH) from any backend; heads: head indices (default the first
    `max_heads`); name: what the table is (e.g. its checkpoint key), used in the title.
    Row r of the figure is head heads[r]: axes 2r shows the table image, axes 2r+1 the bias.
    """
    t = host(table)
    M = table_window(t)
    nH, N, side = t.shape[1], M * M, 2 * M - 1
    heads = check_heads(heads, nH, max_heads)
    bias = gathered_bias(t)                                # (nH, N, N)
    fig = new_figure(10.5, 4.3 * len(heads) + 1.5)
    axes = fig.subplots(len(heads), 2, squeeze=False)
    offsets = np.arange(-(M - 1), M)
    step = 1 if M <= 7 else 2
    for row, h in enumerate(heads):
        grid = t[:, h].reshape(side, side)                 # [dr + M-1, dc + M-1]
        m = max(np.abs(grid).max(), 1e-12)
        ax = axes[row, 0]
        im = ax.imshow(grid, cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        ax.set_xticks(np.arange(0, side, step), offsets[::step])
        ax.set_yticks(np.arange(0, side, step), offsets[::step])
        ax.set_xlabel("column offset dc = c_query - c_key")
        ax.set_ylabel("row offset dr")
        ax.set_title(f"head {h}: table[:, {h}] as {side}x{side}\n(centre = same token)",
                     fontsize=10)
        ax = axes[row, 1]
        ax.imshow(bias[h], cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        token_ticks(ax, N, M)
        ax.set_xlabel("key token j")
        ax.set_ylabel("query token i")
        ax.set_title(f"head {h}: bias[i, j] = table[index[i, j], {h}]\n{N}x{N}, added to "
                     "every window's logits", fontsize=10)
        bar = fig.colorbar(im, ax=axes[row].tolist(), shrink=0.9)
        bar.set_label("bias added to the logit\nq.k / sqrt(d)")
    suptitle(fig, f"Relative position bias: {name} {t.shape}, M={M}")
    return fig
