"""Patch partition + linear embedding: a 4x4 stride-4 convolution done as reshape + matmul.

Symbols: B batch, H, W image size, p patch side (4), Cin = 3, C embed width,
h = ceil(H/p), w = ceil(W/p) patch grid.

Each non-overlapping p x p x 3 patch is flattened in the conv weight's (c_in, kh, kw) order
into a 48-vector and multiplied by the weight seen as (C, 48). Images whose size is not a
multiple of p are zero-padded at the bottom/right first (the det backbone does the same).
The LayerNorm that follows (`patch_embed.norm`) is a separate op.
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array, check_positive_int, check_shape
from .linear import linear_backward, linear_forward
from .window import pad_backward, pad_forward


class PatchEmbedCache(NamedTuple):
    pad: tuple          # (H, W) before padding
    grid: tuple         # (h, w) patch grid
    patch: int
    linear: object      # LinearCache of the (B, h, w, 48) @ (48, C) product


def patchify(x, patch):
    """(B, Hp, Wp, Cin) -> (B, h, w, Cin*p*p), each patch in (c_in, kh, kw) order."""
    B, Hp, Wp, Cin = x.shape
    p = patch
    x = x.reshape(B, Hp // p, p, Wp // p, p, Cin)          # (B, h, p, w, p, Cin)
    x = x.transpose(0, 1, 3, 5, 2, 4)                      # (B, h, w, Cin, p, p)
    return x.reshape(B, Hp // p, Wp // p, Cin * p * p)     # (B, h, w, Cin*p*p)


def unpatchify(patches, patch, Cin):
    """Inverse of `patchify`: (B, h, w, Cin*p*p) -> (B, h*p, w*p, Cin)."""
    B, h, w, _ = patches.shape
    p = patch
    x = patches.reshape(B, h, w, Cin, p, p)                # (B, h, w, Cin, p, p)
    x = x.transpose(0, 1, 4, 2, 5, 3)                      # (B, h, p, w, p, Cin)
    return x.reshape(B, h * p, w * p, Cin)                 # (B, Hp, Wp, Cin)


def check_patch_embed_inputs(x, weight, bias, patch):
    """The argument checks of `patch_embed_forward`, shared with its fast twin."""
    get_xp(x, weight, bias)
    p = check_positive_int("patch", patch)
    check_array("x", x, ndim=4)
    check_array("weight", weight, ndim=4, dtype=x.dtype)
    C = weight.shape[0]
    check_shape("weight", weight, (C, x.shape[-1], p, p), dtype=x.dtype)
    check_shape("bias", bias, (C,), dtype=x.dtype)


def patch_embed_forward(x, weight, bias, patch=4):
    """out[b, i, j] = weight.reshape(C, -1) @ patch(b, i, j) + bias.

    Args: x (B, H, W, Cin) image, channels last; weight (C, Cin, p, p) in the conv layout of
    `patch_embed.proj.weight`; bias (C,).
    Returns (B, h, w, C). Cache: sizes and the linear cache (which keeps the patches).
    """
    check_patch_embed_inputs(x, weight, bias, patch)
    C, Cin, p, _ = weight.shape
    xpad, hw = pad_forward(x, p)                           # (B, Hp, Wp, Cin)
    patches = patchify(xpad, p)                            # (B, h, w, Cin*p*p)
    w2 = weight.reshape(C, Cin * p * p)                    # (C, Cin*p*p)
    out, lin = linear_forward(patches, w2, bias)           # (B, h, w, C)
    return out, PatchEmbedCache(hw, patches.shape[1:3], p, lin)


def patch_embed_backward(dout, cache):
    """Returns (dx, dweight, dbias).

    forward: out = patches @ W2.T + b      -> linear backward
    forward: patches = patchify(pad(x))    -> unpatchify, then crop the padding
    """
    dpatches, dw2, dbias = linear_backward(dout, cache.linear)
    p = cache.patch
    Cin = dpatches.shape[-1] // (p * p)
    dxpad = unpatchify(dpatches, p, Cin)                   # (B, Hp, Wp, Cin)
    dx = pad_backward(dxpad, cache.pad)                    # (B, H, W, Cin)
    dweight = dw2.reshape(dw2.shape[0], Cin, p, p)         # (C, Cin, p, p)
    return dx, dweight, dbias
