"""Multi-head self-attention inside windows (W-MSA; SW-MSA when given a shift mask).

Symbols: B_ = B*nW windows of the whole batch, N = M*M tokens per window, C width,
nH heads, d = C / nH head width, nW windows per image.

    q, k, v = split_heads(x @ Wqkv.T + bqkv)                each (B_, nH, N, d)
    s = (q * d^-0.5) @ k^T + bias  [+ mask per window]      (B_, nH, N, N)
    a = softmax(s)                                          (B_, nH, N, N)
    out = merge_heads(a @ v) @ Wproj.T + bproj             (B_, N, C)

merge_heads puts the heads side by side, (B_, nH, N, d) -> (B_, N, nH*d), channel h*d + lane;
split_heads is its inverse for each of q, k, v. The order is the official one: scale on q
before the product, then the relative position bias, then the -100 shift mask, then softmax
(docs/semantics.md, section 2). Windows are batch-major (section 1): window i of the batch is
window i % nW of its image, so it gets mask[i % nW].
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array, check_positive_int, check_shape
from .linear import linear_backward, linear_forward
from .softmax import softmax_backward, softmax_forward


class AttentionCache(NamedTuple):
    qkv: object        # LinearCache of the qkv projection (keeps x)
    q: object          # (B_, nH, N, d) already scaled
    k: object          # (B_, nH, N, d)
    v: object          # (B_, nH, N, d)
    attn: object       # SoftmaxCache: the probabilities (B_, nH, N, N)
    proj: object       # LinearCache of the output projection (keeps the merged heads)
    scale: float


def split_heads(qkv, num_heads):
    """(B_, N, 3C) -> q, k, v each (B_, nH, N, d): channel o is (o // C, (o % C) // d, o % d)."""
    B_, N, C3 = qkv.shape
    d = C3 // (3 * num_heads)
    t = qkv.reshape(B_, N, 3, num_heads, d)                # (B_, N, 3, nH, d)
    t = t.transpose(2, 0, 3, 1, 4)                         # (3, B_, nH, N, d)
    return t[0], t[1], t[2]


def join_heads(q, k, v):
    """The inverse of `split_heads`: q, k, v each (B_, nH, N, d) -> (B_, N, 3C)."""
    xp = get_xp(q, k, v)
    B_, nH, N, d = q.shape
    t = xp.stack([q, k, v])                                # (3, B_, nH, N, d)
    return t.transpose(1, 3, 0, 2, 4).reshape(B_, N, 3 * nH * d)


def merge_heads(o):
    """(B_, nH, N, d) -> (B_, N, nH*d): the heads side by side, channel h*d + lane."""
    B_, nH, N, d = o.shape
    return o.transpose(0, 2, 1, 3).reshape(B_, N, nH * d)


def unmerge_heads(o, num_heads):
    """The inverse of `merge_heads`: (B_, N, C) -> (B_, nH, N, d)."""
    B_, N, C = o.shape
    return o.reshape(B_, N, num_heads, C // num_heads).transpose(0, 2, 1, 3)


def add_mask(s, mask):
    """s (B_, nH, N, N) + mask (nW, N, N): window i of the batch gets mask[i % nW]."""
    B_, nH, N, _ = s.shape
    nW = mask.shape[0]
    per_image = s.reshape(B_ // nW, nW, nH, N, N)          # (B, nW, nH, N, N)
    return (per_image + mask[:, None]).reshape(B_, nH, N, N)   # same mask for every head


def check_attention_inputs(x, qkv_weight, qkv_bias, proj_weight, proj_bias, bias, mask,
                           num_heads):
    """The argument checks of `window_attention_forward`, shared with its fast twin."""
    get_xp(x, qkv_weight, qkv_bias, proj_weight, proj_bias, bias, mask)
    check_array("x", x, ndim=3)
    B_, N, C = x.shape
    nH = check_positive_int("num_heads", num_heads)
    if C % nH:
        raise ValueError(f"num_heads: expected a divisor of the width C={C}, got {nH}")
    check_shape("qkv_weight", qkv_weight, (3 * C, C), dtype=x.dtype)
    check_shape("proj_weight", proj_weight, (C, C), dtype=x.dtype)
    if bias is not None:
        check_shape("bias", bias, (nH, N, N), dtype=x.dtype)
    if mask is not None:
        check_array("mask", mask, ndim=3, dtype=x.dtype)
        if mask.shape[1:] != (N, N) or B_ % mask.shape[0]:
            raise ValueError(f"mask: expected (nW, {N}, {N}) with nW dividing the {B_} windows,"
                             f" got {tuple(mask.shape)}")


def window_attention_forward(x, qkv_weight, qkv_bias, proj_weight, proj_bias,
                             bias=None, mask=None, num_heads=1):
    """Args:
        x (B_, N, C) tokens of every window; qkv_weight (3C, C), qkv_bias (3C,);
        proj_weight (C, C), proj_bias (C,); bias (nH, N, N) relative position bias or None;
        mask (nW, N, N) of 0 / -100 or None (non-shifted blocks); num_heads nH dividing C.
    Returns out (B_, N, C). Cache: both linear caches, scaled q, k, v and the probabilities.
    """
    check_attention_inputs(x, qkv_weight, qkv_bias, proj_weight, proj_bias, bias, mask,
                           num_heads)
    scale = (x.shape[-1] // num_heads) ** -0.5             # d^-0.5
    qkv, qkv_cache = linear_forward(x, qkv_weight, qkv_bias)   # (B_, N, 3C)
    q, k, v = split_heads(qkv, num_heads)                  # (B_, nH, N, d) each
    q = q * scale
    s = q @ k.swapaxes(-1, -2)                             # (B_, nH, N, N) scores
    if bias is not None:
        s = s + bias                                       # (nH, N, N): every window alike
    if mask is not None:
        s = add_mask(s, mask)                              # (nW, N, N): per window
    a, attn_cache = softmax_forward(s)                     # (B_, nH, N, N) probabilities
    o = a @ v                                              # (B_, nH, N, d)
    out, proj_cache = linear_forward(merge_heads(o), proj_weight, proj_bias)   # (B_, N, C)
    return out, AttentionCache(qkv_cache, q, k, v, attn_cache, proj_cache, scale)


def window_attention_backward(dout, cache):
    """Returns (dx, dqkv_weight, dqkv_bias, dproj_weight, dproj_bias, dbias).

    dbias is summed over all windows of the batch, (nH, N, N); the mask has no gradient.
    """
    get_xp(dout, cache.q)
    q, k, v, a = cache.q, cache.k, cache.v, cache.attn.out
    nH = q.shape[1]
    # forward: out = linear_forward(merge_heads(o), proj_weight, proj_bias)
    do, dproj_w, dproj_b = linear_backward(dout, cache.proj)   # (B_, N, C)
    do = unmerge_heads(do, nH)                             # (B_, nH, N, d)
    # forward: o = a @ v
    da = do @ v.swapaxes(-1, -2)                           # (B_, nH, N, N)
    dv = a.swapaxes(-1, -2) @ do                           # (B_, nH, N, d)
    # forward: a = softmax(s)
    ds = softmax_backward(da, cache.attn)                  # (B_, nH, N, N)
    # forward: s = s + bias   (the same bias in every window; the mask is a constant)
    dbias = ds.sum(axis=0)                                 # (nH, N, N)
    # forward: s = q @ k^T, after q = q * scale
    dq = ds @ k * cache.scale                              # (B_, nH, N, d)
    dk = ds.swapaxes(-1, -2) @ q                           # (B_, nH, N, d)
    # forward: q, k, v = split_heads(qkv)
    dqkv = join_heads(dq, dk, dv)                          # (B_, N, 3C)
    # forward: qkv = linear_forward(x, qkv_weight, qkv_bias)
    dx, dqkv_w, dqkv_b = linear_backward(dqkv, cache.qkv)
    return dx, dqkv_w, dqkv_b, dproj_w, dproj_b, dbias
