"""Fast twin of `minswin.ops.attention`: the same window attention with its middle (scores,
softmax, a @ v) on cache-sized blocks of windows on every core (minswin.fast.parallel),
written in place into preallocated outputs.

k and v are stored in the layout timed fastest on this machine for the products that read
them (minswin.fast.tuning, `attention_kv`): C order, or as transposed views of (d, N) arrays.

The bias and the mask are added as one precomputed sum, `bias_and_mask`: masked entries get
about -100 either way, and softmax sends them to exp(-100) ~ 4e-44.
"""
from ..backend import get_xp
from ..ops.attention import AttentionCache, check_attention_inputs, split_heads
from ..ops.softmax import SoftmaxCache
from .linear import linear_backward, linear_forward
from .parallel import block_rows, for_row_blocks
from .softmax import softmax_backward_into, softmax_into
from .tuning import kv_layout, stored


def bias_and_mask(bias, mask, nH, N, dtype, xp):
    """The one array added to the scores: (nW, nH, N, N), or (1, nH, N, N) without a mask."""
    b = xp.zeros((1, nH, N, N), dtype) if bias is None else bias[None]   # (1, nH, N, N)
    return b if mask is None else b + mask[:, None]        # (nW, nH, N, N)


def window_blocks(B_, nW, per_window):
    """Windows per block: about block_elements() scores, and aligned so that a block is either
    whole images (a multiple of nW) or a divisor of nW inside one image; then the block's rows
    of `bias_and_mask` are one broadcast or one slice."""
    b = block_rows(per_window)
    if b >= nW:
        return min(B_, nW * (b // nW))
    return max(n for n in range(1, b + 1) if nW % n == 0)


def add_bias_and_mask(scores, bm, start):
    """scores (b, nH, N, N), of windows start..start+b-1, += their rows of `bm` (in place).

    bm is bias_and_mask (nW, nH, N, N). Window i of the batch uses row i % nW: windows are
    batch-major (docs/semantics.md, section 1). Blocks from `window_blocks` are whole images or
    lie inside one image, so their rows are one broadcast or one slice.
    """
    nW, b = bm.shape[0], scores.shape[0]
    if nW == 1:
        scores += bm                                       # no mask: one bias for all windows
    elif b >= nW:
        per_image = scores.reshape(b // nW, *bm.shape)     # (images, nW, nH, N, N), a view
        per_image += bm
    else:
        scores += bm[start % nW: start % nW + b]           # windows of one image
    return scores


def window_attention_forward(x, qkv_weight, qkv_bias, proj_weight, proj_bias,
                             bias=None, mask=None, num_heads=1):
    """Fast twin of `ops.attention.window_attention_forward`: windows are independent, so the
    middle runs on blocks of windows shared among the threads, the same maths block by block.
    """
    xp = get_xp(x, qkv_weight, qkv_bias, proj_weight, proj_bias, bias, mask)
    check_attention_inputs(x, qkv_weight, qkv_bias, proj_weight, proj_bias, bias, mask,
                           num_heads)
    B_, N, C = x.shape
    nH = num_heads
    hd = C // nH                                           # head width d
    scale = hd ** -0.5

    qkv, qkv_cache = linear_forward(x, qkv_weight, qkv_bias)   # (B_, N, 3C)
    q_in, k_in, v_in = split_heads(qkv, nH)                # (B_, nH, N, d) each, views
    bm = bias_and_mask(bias, mask, nH, N, x.dtype, xp)     # (nW or 1, nH, N, N)
    block = window_blocks(B_, bm.shape[0], nH * N * N)   # windows per block
    # outputs the kernel fills: q, k, v of their own (faster matmuls, and qkv can be freed;
    # k and v in the layout timed fastest here), the probabilities, and merge_heads(a @ v)
    layout = kv_layout(block, nH, N, hd, x.dtype, xp)      # "rows" or "columns"
    q = xp.empty((B_, nH, N, hd), x.dtype)
    k, v = (stored(layout, (B_, nH, N, hd), x.dtype, xp) for _ in range(2))
    a = xp.empty((B_, nH, N, N), x.dtype)
    merged = xp.empty((B_, N, nH, hd), x.dtype)

    def kernel(start, stop):                               # windows start:stop
        qb = xp.multiply(q_in[start:stop], scale, out=q[start:stop])   # q * d^-0.5
        kb, vb = k[start:stop], v[start:stop]
        kb[...] = k_in[start:stop]
        vb[...] = v_in[start:stop]
        scores = xp.matmul(qb, kb.transpose(0, 1, 3, 2), out=a[start:stop])   # (b, nH, N, N)
        add_bias_and_mask(scores, bm, start)               # + bias (+ mask)
        probs = softmax_into(scores, out=scores)           # a, in place over the scores
        merged[start:stop] = xp.matmul(probs, vb).transpose(0, 2, 1, 3)   # (b, N, nH, d)
    for_row_blocks(kernel, B_, block, xp)
    out, proj_cache = linear_forward(merged.reshape(B_, N, C), proj_weight, proj_bias)
    return out, AttentionCache(qkv_cache, q, k, v, SoftmaxCache(a), proj_cache, scale)


def window_attention_backward(dout, cache):
    """Fast twin of `ops.attention.window_attention_backward`: the middle on blocks of windows
    like the forward; dbias adds the blocks' sums in block order."""
    xp = get_xp(dout, cache.q)
    q, k, v, a = cache.q, cache.k, cache.v, cache.attn.out
    B_, nH, N, hd = q.shape
    # forward: out = merge_heads(o) @ Wproj.T + bproj
    do, dproj_w, dproj_b = linear_backward(dout, cache.proj)   # (B_, N, C)
    do = do.reshape(B_, N, nH, hd).transpose(0, 2, 1, 3)   # (B_, nH, N, d) a view
    dqkv = xp.empty((B_, N, 3, nH, hd), q.dtype)           # split_heads' layout
    dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)             # (B_, nH, N, d) views of it

    def kernel(start, stop):                               # windows start:stop
        dob = xp.ascontiguousarray(do[start:stop])         # (b, nH, N, d)
        ab = a[start:stop]
        # forward: o = a @ v  ->  da = do @ v^T, dv = a^T @ do
        da = xp.matmul(dob, v[start:stop].transpose(0, 1, 3, 2))   # (b, nH, N, N)
        dv[start:stop] = xp.matmul(ab.transpose(0, 1, 3, 2), dob)
        # forward: a = softmax(s)
        ds = softmax_backward_into(da, ab, out=da)         # (b, nH, N, N), over da
        # forward: s = (q * scale) @ k^T + bias (+ mask)
        xp.multiply(xp.matmul(ds, k[start:stop]), cache.scale, out=dq[start:stop])
        dk[start:stop] = xp.matmul(ds.transpose(0, 1, 3, 2), q[start:stop])
        return ds.sum(axis=0)                              # this block's part of dbias
    parts = for_row_blocks(kernel, B_, block_rows(nH * N * N), xp)
    dbias = sum(parts[1:], parts[0])                       # (nH, N, N) summed over windows
    # forward: qkv = x @ Wqkv.T + bqkv
    dx, dqkv_w, dqkv_b = linear_backward(dqkv.reshape(B_, N, 3 * nH * hd), cache.qkv)
    return dx, dqkv_w, dqkv_b, dproj_w, dproj_b, dbias
