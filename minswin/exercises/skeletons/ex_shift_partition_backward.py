"""Exercise: the backward pass of "pad, cyclic shift, window partition".

Symbols: B batch, H, W map size, C width, M window side, N = M*M, S = (sh, sw) shift,
Hp, Wp the map padded to multiples of M, nW = (Hp/M) * (Wp/M).

The forward (to_windows_forward in minswin/ops/window.py), the det/torchvision order:

    xpad   = zero-pad x at the bottom/right to (Hp, Wp)        (B, Hp, Wp, C)
    xs     = np.roll(xpad, shift=(-sh, -sw), axis=(1, 2))      (B, Hp, Wp, C) up and left
    win    = window_partition(xs, M)                           (B*nW, M, M, C)
    tokens = win.reshape(B*nW, N, C)                           (B*nW, N, C)

window_partition(x, M) = x.reshape(B, Hp/M, M, Wp/M, M, C).transpose(0, 1, 3, 2, 4, 5)
                          .reshape(-1, M, M, C)

The cache (a WindowsCache) holds only sizes:
    cache.hw          (H, W) before padding
    cache.padded_hw   (Hp, Wp)
    cache.window      M
    cache.shift       (sh, sw)

Return dx (B, H, W, C). Every step only moves numbers around, so the backward moves them back.
You may use minswin.ops.window.window_reverse(win, M, Hp, Wp) or write the reshape yourself.
"""
import numpy as np  # noqa: F401

from minswin.ops.window import window_reverse  # noqa: F401  (B*nW, M, M, C) -> (B, Hp, Wp, C)


def to_windows_backward(dtokens, cache):
    M, (Hp, Wp), (H, W), (sh, sw) = cache.window, cache.padded_hw, cache.hw, cache.shift
    # YOUR CODE HERE: undo the reshape, the partition, the roll and the padding, in that order
    raise NotImplementedError(
        f"to_windows_backward: from dtokens {tuple(dtokens.shape)} = (B*nW, N, C) compute dx "
        f"(B, {H}, {W}, C); here M={M}, padded map {(Hp, Wp)}, shift {(sh, sw)}")


# Check it:  minswin exercise check shift_partition_backward ex_shift_partition_backward.py
#       or:  python ex_shift_partition_backward.py
# Expected: a permutation's gradient is exact: relative errors of about 1e-10 or smaller
# against central differences (gate 1e-7) and 0 against minswin's backward (gate 1e-9).
if __name__ == "__main__":
    from minswin.exercises import check_file
    raise SystemExit(check_file("shift_partition_backward", __file__))
