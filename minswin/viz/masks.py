"""Figure 3: region labels and the shift attention mask.

After the roll, a window can hold tokens that were far apart on the map (different regions).
`attention_mask` gives each window an (N, N) additive mask: 0 where query i and key j carry
the same region label, -100 where they do not, so softmax gives those pairs ~0 weight.
The pictures show `attention_mask(...)[w] != 0` itself: dark = masked pair.
"""
import numpy as np
from matplotlib.patches import Patch, Rectangle

from ..ops.masks import MASK_VALUE, attention_mask, forward_window_shift, region_labels
from ._common import (
    MASK_CMAP,
    REGION_CMAP,
    annotate_cells,
    check_window_id,
    draw_boundaries,
    draw_cell_grid,
    new_figure,
    shift_title,
    token_ticks,
)
from .geometry import square_grid, window_ids


def _mask_legend(fig):
    """Legend under the figure: what light and dark cells of a mask picture mean."""
    handles = [Patch(facecolor=MASK_CMAP(0), edgecolor="grey", label="0: same region, attended"),
               Patch(facecolor=MASK_CMAP(1), label=f"{MASK_VALUE:g}: different regions, masked")]
    return fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=10,
                      frameon=False)


def _unused_shift_note(fig, H, W, M):
    """A warning on the figure when the window covers the whole map: Swin then switches the
    shift off (ops.masks.forward_window_shift), so no block would ever use this mask."""
    _, used = forward_window_shift(H, W, M, M // 2 or 1)
    if used != (0, 0):
        return None
    return fig.text(0.5, 0.5, f"Not used by Swin: a {M}x{M} window covers the whole {H}x{W} map,"
                    f"\nso the model switches the shift off (no roll, no mask).\nShown: what "
                    f"the mask formula would give with this shift.", ha="center", va="center",
                    fontsize=13, color="#b00020", fontweight="bold", zorder=10,
                    bbox=dict(boxstyle="round,pad=0.5", fc="white", ec="#b00020", lw=2,
                              alpha=0.92))


def plot_window_mask(size=8, window=4, shift=None, window_id=1):
    """One window's mask next to the rolled region map and the window's own tokens.

    Args: size: map side in tokens (already a multiple of M); window: M; shift: S (default
    M // 2); window_id: which window (row-major over the rolled map).
    Panels: the rolled region map with the window outlined; the window's tokens with their
    index and region; the (N, N) mask. axes[2]'s first image is `mask[window_id] != 0`.
    """
    H, W, M, (sh, sw) = square_grid(size, window, shift)
    S = shift_title(sh, sw)
    mask = attention_mask(H, W, M, (sh, sw))               # (nW, N, N)
    nW, N = mask.shape[0], M * M
    w = check_window_id(window_id, nW, f"the {H}x{W} map has {nW} windows of {M}x{M}")
    nice = region_labels(H, W, M, (sh, sw))                # (H, W) region of each token, rolled
    nWw = W // M
    wr, wc = divmod(w, nWw)
    tokens = nice[wr * M:(wr + 1) * M, wc * M:(wc + 1) * M]   # (M, M)
    masked = mask[w] != 0                                  # (N, N) bool

    fig = new_figure(15, 6.2)
    axes = fig.subplots(1, 3)
    ax = axes[0]
    ax.imshow(nice, cmap=REGION_CMAP, vmin=-0.5, vmax=8.5, interpolation="nearest")
    draw_boundaries(ax, window_ids(H, W, M, 0), color="black", lw=1.5 if H > 16 else 2.5)
    ax.add_patch(Rectangle((wc * M - 0.5, wr * M - 0.5), M, M, fill=False, ec="yellow",
                           lw=3.5))
    if H <= 16:
        draw_cell_grid(ax, H, W)
    for k in np.unique(nice):
        rr, cc = np.nonzero(nice == k)
        ax.text(cc.mean(), rr.mean(), str(k), ha="center", va="center",
                fontsize=13 if H <= 16 else 9, color="white", fontweight="bold")
    ax.set_title(f"rolled {H}x{W} map, regions as region_labels numbers them\n"
                 f"(3 x row band + column band); window {w} outlined in yellow", fontsize=10)
    ax = axes[1]
    im = ax.imshow(tokens, cmap=REGION_CMAP, vmin=-0.5, vmax=8.5, interpolation="nearest")
    draw_cell_grid(ax, M, M, color="white", lw=1.5, alpha=1)
    if M <= 8:
        annotate_cells(ax, np.arange(N).reshape(M, M), fontsize=12, image=im, dy=-0.12,
                       fontweight="bold")                  # token index i = r*M + c
        annotate_cells(ax, tokens, "region {}", fontsize=7, image=im, dy=0.25)
    ax.set_xticks(range(M))
    ax.set_yticks(range(M))
    present = " and ".join(str(k) for k in sorted(np.unique(tokens)))
    ax.set_title(f"window {w}: its {N} tokens (index i = r*{M}+c)\nregions {present}",
                 fontsize=10)
    ax = axes[2]
    ax.imshow(masked, cmap=MASK_CMAP, vmin=0, vmax=1, interpolation="nearest")
    token_ticks(ax, N, M)
    if N <= 20:
        draw_cell_grid(ax, N, N, color="grey", lw=0.4, alpha=0.5)
    ax.set_xlabel("key token j")
    ax.set_ylabel("query token i")
    ax.set_title(f"attention_mask(...)[{w}], {N}x{N}: {int(masked.sum())} of {N * N} pairs "
                 f"masked", fontsize=10)
    _mask_legend(fig)
    fig.suptitle(f"Shift mask of one window: map {H}x{W}, M={M}, S={S}; a query only sees keys "
                 "of its own region", fontsize=12)
    _unused_shift_note(fig, H, W, M)
    return fig


def plot_stage_masks(size=56, window=7, shift=None):
    """The masks of all windows of a stage, laid out like the windows on the map.

    Windows with any masked pair are framed in red. axes[w]'s first image is
    `attention_mask(...)[w] != 0`.
    """
    H, W, M, (sh, sw) = square_grid(size, window, shift)
    S = shift_title(sh, sw)
    mask = attention_mask(H, W, M, (sh, sw)) != 0          # (nW, N, N)
    nWh, nWw = H // M, W // M
    with_mask = np.nonzero(mask.any(axis=(1, 2)))[0]
    side = min(12.0, max(7.5, 1.1 * nWw + 1.5))
    fig = new_figure(side, side * nWh / nWw + 1.2)
    axes = fig.subplots(nWh, nWw, squeeze=False, gridspec_kw={"wspace": 0.02, "hspace": 0.02})
    for w, ax in enumerate(axes.ravel()):
        ax.imshow(mask[w], cmap=MASK_CMAP, vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        red = mask[w].any()
        for spine in ax.spines.values():
            spine.set_edgecolor("red" if red else "lightgrey")
            spine.set_linewidth(2.0 if red else 0.6)
        # the window number on an opaque label, readable on any mask pattern
        ax.text(0.05, 0.95, str(w), transform=ax.transAxes, ha="left", va="top",
                fontsize=9 if nWw > 4 else 11, color="black" if red else "dimgrey",
                fontweight="bold" if red else "normal",
                bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="red" if red else "none",
                          lw=1.0, alpha=1.0))
    ids = ", ".join(map(str, with_mask)) if len(with_mask) <= 16 else \
        ", ".join(map(str, with_mask[:8])) + ", ..."
    fig.suptitle(f"Shift masks of all {len(mask)} windows ({H}x{W} map, M={M}, S={S}),\n"
                 f"each {M * M}x{M * M}, dark = masked pair\n{len(with_mask)} windows have "
                 f"masked pairs (red): {ids}", fontsize=11)
    _unused_shift_note(fig, H, W, M)
    return fig
