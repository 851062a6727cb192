"""Windows: pad, cyclic shift, partition and their inverses (pure data movement).

Symbols (as in the paper and the official code):
    B  batch          H, W  map height/width       C  channels
    M  window side    N = M*M tokens per window    nW = (H/M)*(W/M) windows per image
    S  shift (sh, sw) in tokens, 0 <= S < M

Each op here is a permutation or a zero-pad, so its backward is the inverse permutation or a
crop: no arithmetic, and the gradient check is exact to round-off.
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array, check_positive_int


def as_pair(name, v):
    """An int or a pair of ints -> (vh, vw)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name}: expected an int or a pair (h, w), got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


# ---------------------------------------------------------------------------- padding

def pad_amount(size, multiple):
    """How many zeros to add at the end so that size becomes a multiple of `multiple`."""
    return (-size) % multiple


def pad_forward(x, multiple):
    """Zero-pad a (B, H, W, C) map at the bottom/right to multiples of `multiple` (det/tv)."""
    xp = get_xp(x)
    check_array("x", x, ndim=4)
    B, H, W, C = x.shape
    ph, pw = pad_amount(H, multiple), pad_amount(W, multiple)
    if ph == 0 and pw == 0:
        return x, (H, W)
    out = xp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)))   # (B, Hp, Wp, C)
    return out, (H, W)


def pad_backward(dout, cache):
    """forward: out = pad(x)  ->  dx = dout[:, :H, :W] (the padded zeros had no inputs)"""
    H, W = cache
    return dout[:, :H, :W]


# ---------------------------------------------------------------------------- shift

def cyclic_shift(x, shift):
    """Roll a (B, H, W, C) map up/left by shift=(sh, sw): out[r, c] = x[(r+sh) % H, (c+sw) % W].

    This is ``torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))`` of the official code: the top
    `sh` rows wrap round to the bottom and the left `sw` columns to the right.
    """
    xp = get_xp(x)
    sh, sw = as_pair("shift", shift)
    if sh == 0 and sw == 0:
        return x
    return xp.roll(x, shift=(-sh, -sw), axis=(1, 2))      # (B, H, W, C)


def reverse_cyclic_shift(x, shift):
    """The inverse roll, down/right by (sh, sw); also the backward of `cyclic_shift`."""
    xp = get_xp(x)
    sh, sw = as_pair("shift", shift)
    if sh == 0 and sw == 0:
        return x
    return xp.roll(x, shift=(sh, sw), axis=(1, 2))        # (B, H, W, C)


# ---------------------------------------------------------------------------- partition

def window_partition(x, window):
    """Cut a (B, H, W, C) map into windows: (B*nW, M, M, C), batch-major then row-major.

    Window id = b*nWh*nWw + wr*nWw + wc; inside a window, token n = r*M + c. H and W must be
    multiples of M (pad first; see `pad_forward`).
    """
    get_xp(x)
    check_array("x", x, ndim=4)
    M = check_positive_int("window", window)
    B, H, W, C = x.shape
    if H % M or W % M:
        raise ValueError(f"window_partition: map size (H, W) = ({H}, {W}) is not a multiple of "
                         f"window={M}; pad it first (minswin pads bottom/right with zeros)")
    x = x.reshape(B, H // M, M, W // M, M, C)              # (B, nWh, M, nWw, M, C)
    x = x.transpose(0, 1, 3, 2, 4, 5)                      # (B, nWh, nWw, M, M, C)
    return x.reshape(-1, M, M, C)                          # (B*nW, M, M, C)


def window_reverse(windows, window, H, W):
    """Put (B*nW, M, M, C) windows back into a (B, H, W, C) map: the inverse of partition."""
    get_xp(windows)
    check_array("windows", windows, ndim=4)
    M = check_positive_int("window", window)
    if windows.shape[1:3] != (M, M):
        raise ValueError(f"windows: expected shape (B*nW, {M}, {M}, C), got "
                         f"{tuple(windows.shape)}")
    if H % M or W % M:
        raise ValueError(f"window_reverse: (H, W) = ({H}, {W}) is not a multiple of window={M}")
    nW = (H // M) * (W // M)
    if windows.shape[0] % nW:
        raise ValueError(f"windows: {windows.shape[0]} windows is not a multiple of the "
                         f"{nW} windows of a ({H}, {W}) map")
    B, C = windows.shape[0] // nW, windows.shape[-1]
    x = windows.reshape(B, H // M, W // M, M, M, C)        # (B, nWh, nWw, M, M, C)
    x = x.transpose(0, 1, 3, 2, 4, 5)                      # (B, nWh, M, nWw, M, C)
    return x.reshape(B, H, W, C)                           # (B, H, W, C)


# ---------------------------------------------------------------------------- all together

class WindowsCache(NamedTuple):
    hw: tuple          # (H, W) before padding, to crop back
    padded_hw: tuple   # (Hp, Wp) after padding
    window: int
    shift: tuple       # (sh, sw) actually used


def to_windows_forward(x, window, shift):
    """LN1-output map -> tokens of (shifted) windows, the det/tv order: pad, roll, partition.

    x (B, H, W, C) -> (B*nW, N, C). The cache holds only sizes: the op is a permutation.
    """
    M = check_positive_int("window", window)
    xpad, hw = pad_forward(x, M)                           # (B, Hp, Wp, C)
    Hp, Wp = xpad.shape[1:3]
    xs = cyclic_shift(xpad, shift)                         # (B, Hp, Wp, C)
    win = window_partition(xs, M)                          # (B*nW, M, M, C)
    tokens = win.reshape(win.shape[0], M * M, win.shape[-1])   # (B*nW, N, C)
    return tokens, WindowsCache(hw, (Hp, Wp), M, as_pair("shift", shift))


def from_windows(tokens, cache):
    """Tokens of windows -> map: partition^-1, roll back, crop. (B*nW, N, C) -> (B, H, W, C)

    This is both the forward of the way back and the backward of `to_windows_forward`.
    """
    M, (Hp, Wp), (H, W) = cache.window, cache.padded_hw, cache.hw
    win = tokens.reshape(tokens.shape[0], M, M, tokens.shape[-1])   # (B*nW, M, M, C)
    xs = window_reverse(win, M, Hp, Wp)                    # (B, Hp, Wp, C)
    xpad = reverse_cyclic_shift(xs, cache.shift)           # (B, Hp, Wp, C)
    return xpad[:, :H, :W]                                 # (B, H, W, C)


def to_windows_backward(dtokens, cache):
    """forward: pad -> roll(-S) -> partition  ->  backward: un-partition -> roll(+S) -> crop"""
    return from_windows(dtokens, cache)


def from_windows_backward(dx, cache):
    """The backward of `from_windows` is the forward way in: pad, roll, partition."""
    tokens, _ = to_windows_forward(dx, cache.window, cache.shift)   # (B*nW, N, C)
    return tokens
