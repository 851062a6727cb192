"""Figure 1: how consecutive blocks cut a feature map into windows.

Block l (W-MSA) uses a regular grid of M x M windows; block l+1 (SW-MSA) uses the grid moved
by S = M // 2, which the model realises by rolling the map and reusing the regular grid.
Each token is coloured by the window it is attended in (`geometry.window_ids`, computed with
the model's roll and partition), so a window split across the corners shows one colour.
"""
import numpy as np

from ..checks import check_positive_int
from ..ops.masks import check_window_shift
from ._common import (
    cyclic_colours,
    draw_boundaries,
    draw_cell_grid,
    host_image,
    new_figure,
    piece_centres,
    shift_title,
    suptitle,
)
from .geometry import pieces, square_grid, window_ids


def _draw_windows(ax, ids, image, patch, annotate, M):
    H, W = ids.shape
    nW = int(ids.max()) + 1
    cmap = cyclic_colours(nW)
    split = [w for w in range(nW) if len(piece_centres(ids == w)) > 1]
    if image is not None:
        ax.imshow(image, extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="bilinear")
        # windows whole on the map get a light tint; windows the shift split into pieces
        # that the roll joins again get a strong one, so the pieces of one window pair up
        ax.imshow(ids, cmap=cmap, vmin=-0.5, vmax=nW - 0.5, interpolation="nearest",
                  alpha=np.where(np.isin(ids, split), 0.6, 0.15))
    else:
        ax.imshow(ids, cmap=cmap, vmin=-0.5, vmax=nW - 0.5, interpolation="nearest")
        if max(H, W) <= 32:
            draw_cell_grid(ax, H, W)
    draw_boundaries(ax, ids, color="black" if image is None else "white",
                    lw=2.2 if max(H, W) <= 16 else 1.4)
    if annotate or (image is not None and split):
        for w in (range(nW) if annotate else split):
            for r0, c0 in piece_centres(ids == w):
                ax.text(c0, r0, str(w), ha="center", va="center",
                        fontsize=10 if annotate else 7.5,
                        fontweight="bold", color="black",
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7))
    ax.set_xlim(-0.5, W - 0.5)
    ax.set_ylim(H - 0.5, -0.5)
    unit = f"token = {patch}x{patch}-pixel patch" if image is not None else "token"
    ax.set_xlabel(f"column ({unit})")
    ax.set_ylabel("row")
    if max(H, W) > 16:
        ax.set_xticks(np.arange(0, W, M))
        ax.set_yticks(np.arange(0, H, M))


def plot_window_partition(size=8, window=4, shift=None, image=None, patch=None):
    """Regular windows (block l, W-MSA) beside shifted windows (block l+1, SW-MSA).

    Args: size: the map side in tokens (ignored when `image` is given); window: M;
    shift: S (default M // 2); image: optional (H, W, 3) array in [0, 1] drawn underneath,
    whose tokens are `patch` x `patch` pixels (default 4, as in Swin).
    Returns the Figure; axes[0] / axes[1] hold the (H, W) window-id maps as their first image.
    """
    if image is not None:
        image = host_image(image)
        patch = 4 if patch is None else check_positive_int("patch", patch)
        H, W = image.shape[0] // patch, image.shape[1] // patch
        M = check_positive_int("window", window)
        if H % M or W % M:
            raise ValueError(f"window: expected a window that divides the image's {H}x{W} "
                             f"tokens ({patch}x{patch} pixels each), got {M}")
        M, (sh, sw) = check_window_shift(H, W, M, M // 2 if shift is None else shift)
    else:
        H, W, M, (sh, sw) = square_grid(size, window, shift)
    S = shift_title(sh, sw)
    regular, shifted = window_ids(H, W, M, 0), window_ids(H, W, M, S)
    nW = int(regular.max()) + 1
    annotate = nW <= 16
    fig = new_figure(10, 6.2)
    axes = fig.subplots(1, 2)
    for ax, ids in zip(axes, (regular, shifted)):
        _draw_windows(ax, ids, image, patch, annotate, M)
    axes[0].set_title(f"block l (W-MSA): {nW} windows of {M}x{M} tokens\n"
                      f"attention stays inside each window")
    axes[1].set_title(f"block l+1 (SW-MSA): grid moved by S={S}\n"
                      f"{pieces(H, W, M, S)} pieces, still {nW} windows after the cyclic shift"
                      + ("\nstrong colour + number: pieces of one window"
                         if image is not None else ""))
    what = "image" if image is not None else "map"
    suptitle(fig, f"Window partition of the {H}x{W}-token {what}, M={M}: "
                  "colour = the window a token is attended in", fontsize=12)
    return fig
