"""What the pictures need to know about windows, computed with minswin's own ops.

Symbols: H, W map size in tokens; M window side; N = M*M; nW windows; S = (sh, sw) shift.

The arrays here are built by pushing index maps through the very functions the model uses
(`cyclic_shift`, `window_partition`, `window_reverse`, `region_labels`), so a picture of them
shows what the network does, not a redrawing of the idea.
"""
import numpy as np

from ..checks import check_positive_int
from ..ops.masks import check_window_shift, region_labels, window_labels
from ..ops.window import cyclic_shift, reverse_cyclic_shift, window_partition, window_reverse


def square_grid(size, window, shift=None):
    """(H, W, M, (sh, sw)) for a size x size map: the arguments every map figure takes,
    checked with named messages. shift None is the usual M // 2."""
    H = W = check_positive_int("size", size)
    M = check_positive_int("window", window)
    if H % M:
        raise ValueError(f"size: expected a multiple of window={M}, got {H} (use "
                         f"{H + (-H) % M}, or a window that divides {H})")
    M, S = check_window_shift(H, W, M, M // 2 if shift is None else shift)
    return H, W, M, S


def window_ids(H, W, window, shift=0):
    """Which window each token of the map is attended in, on the un-rolled map: (H, W) ints.

    Window w of the rolled frame is filled with w and the roll is undone, so with a shift the
    pieces of one window show up where the roll took them from (e.g. the four corners).
    """
    M, S = check_window_shift(H, W, window, shift)
    nW = (H // M) * (W // M)
    wins = np.broadcast_to(np.arange(nW, dtype=np.float64)[:, None, None, None],
                           (nW, M, M, 1))                  # (nW, M, M, 1)
    rolled = window_reverse(np.ascontiguousarray(wins), M, H, W)   # (1, H, W, 1)
    return reverse_cyclic_shift(rolled, S)[0, :, :, 0].astype(np.int64)   # (H, W)


def central_window(H, W, window):
    """The id of a window at the centre of an H x W map (row-major; up and left of the centre
    when a count is even). Unless the map is one window, its tokens do not wrap round the
    edges after the roll, so it shows attention between neighbours on the image."""
    M, _ = check_window_shift(H, W, window, 0)
    nWh, nWw = H // M, W // M
    return ((nWh - 1) // 2) * nWw + (nWw - 1) // 2


def token_positions(H, W, window, shift=0):
    """(row, col) on the un-rolled map of token n of window w: (nW, N, 2) ints."""
    M, S = check_window_shift(H, W, window, shift)
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    coords = np.stack([rows, cols], -1)[None].astype(np.float64)   # (1, H, W, 2)
    wins = window_partition(cyclic_shift(coords, S), M)   # (nW, M, M, 2)
    return wins.reshape(-1, M * M, 2).astype(np.int64)    # (nW, N, 2)


def unrolled_region_labels(H, W, window, shift):
    """`region_labels` (given on the rolled frame) carried back to the un-rolled map: (H, W).

    The one numbering of the regions is `region_labels`'s: 3*row_band + col_band of the
    rolled frame, as the official code counts them. This is the same numbers drawn where the
    regions lie before the roll, so a picture of either frame names a region alike."""
    M, S = check_window_shift(H, W, window, shift)
    lab = region_labels(H, W, M, S)[None, :, :, None]      # (1, H, W, 1) rolled frame
    return reverse_cyclic_shift(lab, S)[0, :, :, 0]        # (H, W)


def first_seen(values):
    """The distinct values of an array, as ints, in order of first appearance (row-major)."""
    return list(dict.fromkeys(int(v) for v in np.ravel(values)))


def regions_in_windows(H, W, window, shift):
    """For each window, its `region_labels` numbers in order of first token: list of lists."""
    lab = window_labels(H, W, window, shift)               # (nW, N)
    return [first_seen(row) for row in lab]


def pieces(H, W, window, shift):
    """How many (window, region) pieces the shifted partition cuts the map into."""
    lab = window_labels(H, W, window, shift)               # (nW, N)
    return sum(len(np.unique(row)) for row in lab)
