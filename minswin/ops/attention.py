"""Multi-head self-attention inside windows (W-MSA; SW-MSA when given a shift mask).

Symbols: B_ = B*nW windows of the whole batch, N = M*M tokens per window, C width,
nH heads, d = C / nH head width, nW windows per image.

    q, k, v = split(x @ Wqkv.T + bqkv)                       each (B_, nH, N, d)
    s = (q * d^-0.5) @ k^T + bias  [+ mask per window]      (B_, nH, N, N)
    a = softmax(s)                                          (B_, nH, N, N)
    out = merge_heads(a @ v) @ Wproj.T + bproj             (B_, N, C)

merge_heads puts the heads side by side, (B_, nH, N, d) -> (B_, N, nH*d), channel h*d + lane;
split_heads is its inverse for each of q, k, v. The order is the official one: scale on q
before the product, then the relative position bias and the -100 shift mask (added as one
precomputed sum, `bias_and_mask`), then softmax (SPEC 7).
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array, check_positive_int, check_shape
from ..parallel import block_rows, for_row_blocks
from .linear import linear_backward, linear_forward
from .softmax import SoftmaxCache, softmax_backward, softmax_forward


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


def bias_and_mask(bias, mask, nH, N, dtype, xp):
    """The one array added to the scores: (nW, nH, N, N), or (1, nH, N, N) without a mask.

    Adding bias + mask once is the same as adding bias, then the mask: masked entries get
    about -100 either way and softmax sends them to exp(-100) ~ 4e-44.
    """
    b = xp.zeros((1, nH, N, N), dtype) if bias is None else bias[None]   # (1, nH, N, N)
    return b if mask is None else b + mask[:, None]        # (nW, nH, N, N)


def window_blocks(B_, nW, per_window):
    """Windows per block for the parallel kernels: about BLOCK_ELEMENTS scores, and aligned so
    that a block is either whole images (a multiple of nW) or a divisor of nW inside one image;
    then the block's rows of `bias_and_mask` are one slice or one broadcast."""
    b = block_rows(per_window)
    if b >= nW:
        return min(B_, nW * (b // nW))
    return max(d for d in range(1, b + 1) if nW % d == 0)


def add_bias_and_mask(s, bm, start):
    """s (b, nH, N, N), the scores of windows start..start+b-1, += their rows of `bm`.

    bm is bias_and_mask (nW, nH, N, N). Window i of the batch uses row i % nW: windows are
    batch-major (SPEC 2), the batch axis is (B, nW). Blocks from `window_blocks` are whole
    images or lie inside one image, so their rows are one broadcast or one slice.
    """
    nW, b = bm.shape[0], s.shape[0]
    if nW == 1:
        s += bm                                            # no mask: one bias for all windows
    elif b >= nW:
        s5 = s.reshape(b // nW, *bm.shape)                 # (images, nW, nH, N, N), a view
        s5 += bm
    else:
        s += bm[start % nW: start % nW + b]                # windows of one image
    return s


def window_attention_forward(x, qkv_weight, qkv_bias, proj_weight, proj_bias,
                             bias=None, mask=None, num_heads=1):
    """Args:
        x (B_, N, C) tokens of every window; qkv_weight (3C, C), qkv_bias (3C,);
        proj_weight (C, C), proj_bias (C,); bias (nH, N, N) relative position bias or None;
        mask (nW, N, N) of 0 / -100 or None (non-shifted blocks); num_heads nH dividing C.
    Returns out (B_, N, C). Cache: both linear caches, scaled q, k, v and the probabilities.

    Windows are independent: the middle of the attention (scores, softmax, a @ v) runs on
    blocks of windows on every core (minswin.parallel), the same maths block by block.
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
    d = C // nH
    scale = d ** -0.5

    qkv, qkv_cache = linear_forward(x, qkv_weight, qkv_bias)   # (B_, N, 3C)
    qs, ks, vs = split_heads(qkv, nH)                      # (B_, nH, N, d) each, views
    bm = bias_and_mask(bias, mask, nH, N, x.dtype, xp)     # (nW or 1, nH, N, N)
    # outputs the kernel fills: contiguous q, k, v (faster matmuls, and qkv can be freed),
    # the probabilities, and merge_heads(a @ v)
    q, k, v = (xp.empty((B_, nH, N, d), x.dtype) for _ in range(3))
    a = xp.empty((B_, nH, N, N), x.dtype)
    merged = xp.empty((B_, N, nH, d), x.dtype)

    def kernel(s, e):                                      # windows s:e
        qb = xp.multiply(qs[s:e], scale, out=q[s:e])       # q * d^-0.5
        kb, vb = k[s:e], v[s:e]
        kb[...] = ks[s:e]
        vb[...] = vs[s:e]
        sb = xp.matmul(qb, kb.transpose(0, 1, 3, 2), out=a[s:e])   # (b, nH, N, N)
        add_bias_and_mask(sb, bm, s)                       # + bias (+ mask)
        softmax_forward(sb, out=sb)                        # a, in place
        merged[s:e] = xp.matmul(sb, vb).transpose(0, 2, 1, 3)      # merge_heads: (b, N, nH, d)
    for_row_blocks(kernel, B_, window_blocks(B_, bm.shape[0], nH * N * N), xp)
    out, proj_cache = linear_forward(merged.reshape(B_, N, C), proj_weight, proj_bias)
    return out, AttentionCache(qkv_cache, q, k, v, SoftmaxCache(a), proj_cache, scale)


def window_attention_backward(dout, cache):
    """Returns (dx, dqkv_weight, dqkv_bias, dproj_weight, dproj_bias, dbias).

    dbias is summed over all windows of the batch, (nH, N, N); the mask has no gradient.
    The middle runs on blocks of windows like the forward; dbias adds the blocks' sums in order.
    """
    xp = get_xp(dout, cache.q)
    q, k, v, a = cache.q, cache.k, cache.v, cache.attn.out
    B_, nH, N, d = q.shape
    # forward: out = merge_heads(o) @ Wproj.T + bproj
    do, dproj_w, dproj_b = linear_backward(dout, cache.proj)   # (B_, N, C)
    do = do.reshape(B_, N, nH, d).transpose(0, 2, 1, 3)    # (B_, nH, N, d) a view
    dqkv = xp.empty((B_, N, 3, nH, d), q.dtype)            # split_heads' layout
    dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)             # (B_, nH, N, d) views of it

    def kernel(s, e):                                      # windows s:e
        dob = xp.ascontiguousarray(do[s:e])                # (b, nH, N, d)
        ab = a[s:e]
        # forward: o = a @ v  ->  da = do @ v^T, dv = a^T @ do
        da = xp.matmul(dob, v[s:e].transpose(0, 1, 3, 2))  # (b, nH, N, N)
        dv[s:e] = xp.matmul(ab.transpose(0, 1, 3, 2), dob)
        # forward: a = softmax(s)
        ds = softmax_backward(da, SoftmaxCache(ab), out=da)   # (b, nH, N, N)
        # forward: s = (q * scale) @ k^T + bias (+ mask)
        xp.multiply(xp.matmul(ds, k[s:e]), cache.scale, out=dq[s:e])
        dk[s:e] = xp.matmul(ds.transpose(0, 1, 3, 2), q[s:e])
        return ds.sum(axis=0)                              # this block's part of dbias
    parts = for_row_blocks(kernel, B_, block_rows(nH * N * N), xp)
    dbias = sum(parts[1:], parts[0])                       # (nH, N, N) summed over windows
    # forward: qkv = x @ Wqkv.T + bqkv
    dx, dqkv_w, dqkv_b = linear_backward(dqkv.reshape(B_, N, 3 * nH * d), cache.qkv)
    return dx, dqkv_w, dqkv_b, dproj_w, dproj_b, dbias
