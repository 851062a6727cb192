"""Fast twin of `minswin.ops.patch_embed`: the same patchify + product, with the fast linear
(one 2-D GEMM over all patches instead of a stack of small ones)."""
from ..ops.patch_embed import PatchEmbedCache, check_patch_embed_inputs, patchify, unpatchify
from ..ops.window import pad_backward, pad_forward
from .linear import linear_backward, linear_forward


def patch_embed_forward(x, weight, bias, patch=4):
    """Fast twin of `ops.patch_embed.patch_embed_forward`: the fast linear."""
    check_patch_embed_inputs(x, weight, bias, patch)
    C, Cin, p, _ = weight.shape
    xpad, hw = pad_forward(x, p)                           # (B, Hp, Wp, Cin)
    patches = patchify(xpad, p)                            # (B, h, w, Cin*p*p)
    w2 = weight.reshape(C, Cin * p * p)                    # (C, Cin*p*p)
    out, lin = linear_forward(patches, w2, bias)           # (B, h, w, C)
    return out, PatchEmbedCache(hw, patches.shape[1:3], p, lin)


def patch_embed_backward(dout, cache):
    """Fast twin of `ops.patch_embed.patch_embed_backward`: the fast linear."""
    dpatches, dw2, dbias = linear_backward(dout, cache.linear)
    p = cache.patch
    Cin = dpatches.shape[-1] // (p * p)
    dxpad = unpatchify(dpatches, p, Cin)                   # (B, Hp, Wp, Cin)
    dx = pad_backward(dxpad, cache.pad)                    # (B, H, W, Cin)
    dweight = dw2.reshape(dw2.shape[0], Cin, p, p)         # (C, Cin, p, p)
    return dx, dweight, dbias
