"""Bicubic resizing of a relative position bias table, for a model moved to another window.

Symbols: M old window, M2 new window, nH heads, S = 2M-1 offsets per axis.

A v1 table ((2M-1)^2, nH) is one (2M-1) x (2M-1) image per head: pixel [dr + M-1, dc + M-1]
is the bias for the offset (dr, dc). Fine-tuning at another window (224/M7 -> 384/M12) resizes
each image bicubically, as the official `utils.load_pretrained` does with
`F.interpolate(..., mode="bicubic")` (align_corners False) and timm with
`resize_rel_pos_bias_table`. Written by hand here, separable, one axis at a time:

    out[y] = sum_k w(src - k) * img[clamp(k, 0, S-1)],  src = (y + 0.5) * S / S2 - 0.5
    w(t) = (a+2)|t|^3 - (a+3)|t|^2 + 1          for |t| <= 1
         = a|t|^3 - 5a|t|^2 + 8a|t| - 4a        for 1 < |t| < 2,  0 beyond, a = -0.75

with k the four pixels floor(src)-1 .. floor(src)+2. That is Keys' cubic convolution with
torch's a = -0.75 (OpenCV's too; Keys used -0.5), and torch's border: indices outside the
image are clamped, so the edge pixel is repeated. Because align_corners is False, the pixel
centres of the two grids line up, not their edge pixels: the corners of the old table are not
copied to the corners of the new one.
"""
import math

import numpy as np

from ..backend import get_xp, to_backend, to_numpy
from ..checks import check_array, check_positive_int

CUBIC_A = -0.75   # torch's upsample_bicubic2d (and OpenCV's INTER_CUBIC)


def cubic_weight(t, a=CUBIC_A):
    """Keys' cubic convolution kernel at distance t (array): 1 at 0, 0 at +-1, +-2 and beyond."""
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1             # |t| <= 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a        # 1 < |t| < 2
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def bicubic_matrix(n_in, n_out):
    """(n_out, n_in): row y holds the weights that make output pixel y from the input pixels,
    torch's align_corners=False sampling, with out-of-range taps clamped to the edge pixel."""
    R = np.zeros((n_out, n_in))
    for y in range(n_out):
        src = (y + 0.5) * n_in / n_out - 0.5               # the output pixel's centre, in input
        k0 = math.floor(src)
        for k in range(k0 - 1, k0 + 3):                    # the 4 nearest input pixels
            R[y, min(max(k, 0), n_in - 1)] += cubic_weight(src - k)
    return R


def bicubic_resize(img, size):
    """(..., H, W) -> (..., H2, W2): F.interpolate(mode="bicubic", align_corners=False),
    computed as Rh @ img @ Rw^T. float64 on the host; returned on img's backend and dtype."""
    xp = get_xp(img)
    H2, W2 = size
    a = to_numpy(img).astype(np.float64)
    Rh = bicubic_matrix(a.shape[-2], H2)                   # (H2, H)
    Rw = bicubic_matrix(a.shape[-1], W2)                   # (W2, W)
    out = Rh @ a @ Rw.T                                    # (..., H2, W2)
    return to_backend(out.astype(img.dtype), xp)


def table_window(table, name="table"):
    """The window M of a ((2M-1)^2, nH) table, or a ValueError that says what came."""
    check_array(name, table, ndim=2)
    S = math.isqrt(table.shape[0])
    if S * S != table.shape[0] or S % 2 == 0:
        raise ValueError(f"{name}: expected ((2M-1)^2, nH) rows for some window M (9, 25, 49, "
                         f"...), got shape {tuple(table.shape)}")
    return (S + 1) // 2


def resize_relative_bias_table(table, new_window):
    """((2M-1)^2, nH) -> ((2M2-1)^2, nH): each head's (2M-1) x (2M-1) image resized bicubically
    to (2M2-1) x (2M2-1), as the official fine-tuning code does. Same window: a copy."""
    M = table_window(table)
    M2 = check_positive_int("new_window", new_window)
    S, S2, nH = 2 * M - 1, 2 * M2 - 1, table.shape[1]
    img = table.T.reshape(nH, S, S)                        # (nH, S, S) one image per head
    out = bicubic_resize(img, (S2, S2))                    # (nH, S2, S2)
    return get_xp(out).ascontiguousarray(out.reshape(nH, S2 * S2).T)   # (S2^2, nH)
