"""Multi-head self-attention inside windows (W-MSA; SW-MSA when given a shift mask).

Symbols: B_ = B*nW windows of the whole batch, N = M*M tokens per window, C width,
nH heads, d = C / nH head width, nW windows per image.

    q, k, v = split(x @ Wqkv.T + bqkv)                       each (B_, nH, N, d)
    s = (q * d^-0.5) @ k^T + bias  [+ mask per window]      (B_, nH, N, N)
    a = softmax(s)                                          (B_, nH, N, N)
    out = merge_heads(a @ v) @ Wproj.T + bproj             (B_, N, C)

The order is the official one: scale on q before the product, then the relative position
bias, then the -100 shift mask, then softmax (SPEC 7).
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


def merge_heads(o):
    """(B_, nH, N, d) -> (B_, N, nH*d), channel h*d + lane."""
    B_, nH, N, d = o.shape
    return o.transpose(0, 2, 1, 3).reshape(B_, N, nH * d)  # (B_, N, C)


def add_window_mask(s, mask):
    """s (B_, nH, N, N) += mask (nW, N, N): window w of every image gets mask w (in place).

    This relies on windows being batch-major (SPEC 2): the B_ axis is (B, nW).
    """
    nW, N, _ = mask.shape
    B_, nH = s.shape[:2]
    s5 = s.reshape(B_ // nW, nW, nH, N, N)                # a view of s
    s5 += mask[None, :, None]                              # broadcast over images and heads
    return s


def window_attention_forward(x, qkv_weight, qkv_bias, proj_weight, proj_bias,
                             bias=None, mask=None, num_heads=1):
    """Args:
        x (B_, N, C) tokens of every window; qkv_weight (3C, C), qkv_bias (3C,);
        proj_weight (C, C), proj_bias (C,); bias (nH, N, N) relative position bias or None;
        mask (nW, N, N) of 0 / -100 or None (non-shifted blocks); num_heads nH dividing C.
    Returns out (B_, N, C). Cache: both linear caches, scaled q, k, v and the probabilities.
    """
    xp = get_xp(x, qkv_weight, qkv_bias, proj_weight, proj_bias, bias, mask)
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
    scale = (C // nH) ** -0.5

    qkv, qkv_cache = linear_forward(x, qkv_weight, qkv_bias)   # (B_, N, 3C)
    q, k, v = split_heads(qkv, nH)                         # (B_, nH, N, d) each
    q = q * scale                                          # (B_, nH, N, d)
    k = xp.ascontiguousarray(k)                            # contiguous copies: faster
    v = xp.ascontiguousarray(v)                            # matmuls, and qkv can be freed
    s = xp.matmul(q, k.transpose(0, 1, 3, 2))              # (B_, nH, N, N)
    if bias is not None:
        s += bias                                          # broadcast over windows
    if mask is not None:
        s = add_window_mask(s, mask)                       # (B_, nH, N, N)
    a, attn_cache = softmax_forward(s)                     # (B_, nH, N, N)
    o = xp.matmul(a, v)                                    # (B_, nH, N, d)
    out, proj_cache = linear_forward(merge_heads(o), proj_weight, proj_bias)   # (B_, N, C)
    return out, AttentionCache(qkv_cache, q, k, v, attn_cache, proj_cache, scale)


def window_attention_backward(dout, cache):
    """Returns (dx, dqkv_weight, dqkv_bias, dproj_weight, dproj_bias, dbias).

    dbias is summed over all windows of the batch, (nH, N, N); the mask has no gradient.
    """
    xp = get_xp(dout, cache.q)
    q, k, v, a = cache.q, cache.k, cache.v, cache.attn.out
    B_, nH, N, d = q.shape
    # forward: out = merge_heads(o) @ Wproj.T + bproj
    do, dproj_w, dproj_b = linear_backward(dout, cache.proj)   # (B_, N, C)
    do = do.reshape(B_, N, nH, d).transpose(0, 2, 1, 3)    # (B_, nH, N, d)
    # forward: o = a @ v  ->  da = do @ v^T, dv = a^T @ do
    da = xp.matmul(do, v.transpose(0, 1, 3, 2))            # (B_, nH, N, N)
    dv = xp.matmul(a.transpose(0, 1, 3, 2), do)            # (B_, nH, N, d)
    # forward: a = softmax(s)
    ds = softmax_backward(da, cache.attn)                  # (B_, nH, N, N)
    # forward: s = q @ k^T + bias (+ mask)  ->  dbias = sum over windows of ds
    dbias = ds.sum(axis=0)                                 # (nH, N, N)
    dq = xp.matmul(ds, k) * cache.scale                    # (B_, nH, N, d) through q*scale
    dk = xp.matmul(ds.transpose(0, 1, 3, 2), q)            # (B_, nH, N, d)
    # forward: q, k, v = split_heads(qkv)  ->  stack and undo the permutation
    dqkv = xp.stack([dq, dk, dv])                          # (3, B_, nH, N, d)
    dqkv = dqkv.transpose(1, 3, 0, 2, 4).reshape(B_, N, 3 * nH * d)   # (B_, N, 3C)
    # forward: qkv = x @ Wqkv.T + bqkv
    dx, dqkv_w, dqkv_b = linear_backward(dqkv, cache.qkv)  # (B_, N, C)
    return dx, dqkv_w, dqkv_b, dproj_w, dproj_b, dbias
