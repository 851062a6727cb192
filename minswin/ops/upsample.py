"""Nearest-neighbour upsampling of a feature map, the step a feature pyramid climbs with.

Symbols: B batch, h, w the coarse map, f the integer factor, H, W the fine map (H <= h*f,
W <= w*f), C channels.

    out[b, r, c, :] = x[b, r // f, c // f, :]          for r < H, c < W

Each coarse cell is copied into an f x f block, and the blocks are cropped to (H, W) (a map of
odd size was padded before it was halved, so the coarse map can cover a little more than the
fine one). Nothing is learned and nothing is mixed: the backward is the forward read the other
way round, each coarse cell collecting the sum of the gradients of the cells it was copied to.
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array, check_positive_int


class UpsampleCache(NamedTuple):
    in_shape: tuple    # (B, h, w, C): the shape dx must have
    factor: int        # f


def upsample_size(h, w, factor, size):
    """The (H, W) of the output: `size` if given (checked), else (h*f, w*f)."""
    if size is None:
        return h * factor, w * factor
    H, W = (check_positive_int(f"size[{i}]", s) for i, s in enumerate(size))
    if not (h * factor - factor < H <= h * factor and w * factor - factor < W <= w * factor):
        raise ValueError(f"size: expected (H, W) covered by the {h}x{w} map upsampled by "
                         f"{factor} (H in {h * factor - factor + 1}..{h * factor}, W in "
                         f"{w * factor - factor + 1}..{w * factor}), got {tuple(size)}")
    return H, W


def upsample_forward(x, factor, size=None):
    """x (B, h, w, C) -> out (B, H, W, C), each cell repeated f times down and across, then
    cropped to size=(H, W) (default (h*f, w*f)). The cache holds only shapes."""
    xp = get_xp(x)
    check_array("x", x, ndim=4)
    f = check_positive_int("factor", factor)
    B, h, w, C = x.shape
    H, W = upsample_size(h, w, f, size)
    out = xp.repeat(xp.repeat(x, f, axis=1), f, axis=2)   # (B, h*f, w*f, C) f x f blocks
    return out[:, :H, :W], UpsampleCache(x.shape, f)       # (B, H, W, C) cropped


def upsample_backward(dout, cache):
    """dout (B, H, W, C) -> dx (B, h, w, C).

    forward: out = crop(repeat(x))
      the crop dropped cells: their gradient is 0, so pad dout with zeros back to (h*f, w*f);
      each x[b, i, j] was copied to the f x f block (i*f .. i*f+f-1, j*f .. j*f+f-1), so its
      gradient is the sum of dout over that block.
    """
    xp = get_xp(dout)
    B, h, w, C = cache.in_shape
    f = cache.factor
    H, W = dout.shape[1:3]
    full = xp.zeros((B, h * f, w * f, C), dtype=dout.dtype)   # (B, h*f, w*f, C)
    full[:, :H, :W] = dout                                    # undo the crop
    return full.reshape(B, h, f, w, f, C).sum(axis=(2, 4))    # (B, h, w, C) sum each block


def upsample_slow(x, factor, size=None):
    """The same output one cell at a time, straight from the definition (for the tests)."""
    xp = get_xp(x)
    B, h, w, C = x.shape
    H, W = upsample_size(h, w, factor, size)
    out = xp.zeros((B, H, W, C), dtype=x.dtype)
    for r in range(H):
        for c in range(W):
            out[:, r, c] = x[:, r // factor, c // factor]
    return out
