"""Fast twin of `minswin.ops.cosine_attention` (Swin V2): the same scaled cosine attention
with its middle (unit q and k, cosines, softmax, a @ v) on cache-sized blocks of windows on
every core (minswin.fast.parallel), written in place into preallocated outputs, and the two
projections on the fast linear. Bias and mask are added as one precomputed sum, as in
fast/attention.py.
"""
from ..backend import get_xp
from ..ops.attention import split_heads
from ..ops.cosine_attention import (
    NORMALIZE_EPS,
    CosineAttentionCache,
    NormalizeCache,
    check_attention_inputs,
    logit_scale_backward,
    logit_scale_forward,
)
from ..ops.qv_bias import qkv_bias_backward, qkv_bias_forward
from ..ops.softmax import SoftmaxCache
from .attention import add_bias_and_mask, bias_and_mask, window_blocks
from .linear import linear_backward, linear_forward
from .parallel import block_rows, for_row_blocks
from .softmax import softmax_backward_into, softmax_into


def _unit_rows_into(x, out, norm, xp):
    """out = x / max(|x|, eps) over the last axis, norm = max(|x|, eps): ops' normalize."""
    xp.sqrt((x * x).sum(axis=-1, keepdims=True), out=norm)
    xp.maximum(norm, NORMALIZE_EPS, out=norm)
    xp.divide(x, norm, out=out)


def _unit_rows_backward(g, unit, norm, xp):
    """ops' normalize_backward: (g - unit * sum(g * unit)) / |x|, or g / eps below eps."""
    radial = (g * unit).sum(axis=-1, keepdims=True)
    return xp.where(norm > NORMALIZE_EPS, (g - unit * radial) / norm, g / NORMALIZE_EPS)


def cosine_attention_forward(x, qkv_weight, q_bias, v_bias, logit_scale, proj_weight,
                             proj_bias, bias=None, mask=None, num_heads=1):
    """Fast twin of `ops.cosine_attention.cosine_attention_forward`: windows are independent,
    so the middle runs on blocks of windows shared among the threads."""
    xp = get_xp(x, qkv_weight, q_bias, v_bias, logit_scale, proj_weight, proj_bias, bias,
                mask)
    B_, N, C, nH = check_attention_inputs(x, qkv_weight, q_bias, v_bias, logit_scale,
                                          proj_weight, bias, mask, num_heads)
    hd = C // nH
    qkv_bias, bias_cache = qkv_bias_forward(q_bias, v_bias)    # (3C,)
    qkv, qkv_cache = linear_forward(x, qkv_weight, qkv_bias)   # (B_, N, 3C)
    q_in, k_in, v_in = split_heads(qkv, nH)                # (B_, nH, N, d) each, views
    tau, scale_cache = logit_scale_forward(logit_scale)    # (nH, 1, 1)
    bm = bias_and_mask(bias, mask, nH, N, x.dtype, xp)     # (nW or 1, nH, N, N)
    qn, kn, v = (xp.empty((B_, nH, N, hd), x.dtype) for _ in range(3))
    qnorm, knorm = (xp.empty((B_, nH, N, 1), x.dtype) for _ in range(2))
    cos, a = (xp.empty((B_, nH, N, N), x.dtype) for _ in range(2))
    merged = xp.empty((B_, N, nH, hd), x.dtype)

    def kernel(start, stop):                               # windows start:stop
        s = slice(start, stop)
        _unit_rows_into(q_in[s], qn[s], qnorm[s], xp)      # qn = q / |q|
        _unit_rows_into(k_in[s], kn[s], knorm[s], xp)      # kn = k / |k|
        v[s] = v_in[s]
        xp.matmul(qn[s], kn[s].transpose(0, 1, 3, 2), out=cos[s])   # (b, nH, N, N)
        scores = xp.multiply(cos[s], tau, out=a[s])        # cos * tau
        add_bias_and_mask(scores, bm, start)               # + bias (+ mask)
        probs = softmax_into(scores, out=scores)           # a, in place over the scores
        merged[s] = xp.matmul(probs, v[s]).transpose(0, 2, 1, 3)   # (b, N, nH, d)
    for_row_blocks(kernel, B_, window_blocks(B_, bm.shape[0], nH * N * N), xp)
    out, proj_cache = linear_forward(merged.reshape(B_, N, C), proj_weight, proj_bias)
    return out, CosineAttentionCache(bias_cache, qkv_cache, NormalizeCache(qn, qnorm),
                                     NormalizeCache(kn, knorm), v, cos,
                                     scale_cache, SoftmaxCache(a),
                                     proj_cache)


def cosine_attention_backward(dout, cache):
    """Fast twin of `ops.cosine_attention.cosine_attention_backward`: the middle on blocks of
    windows; dbias and dtau add the blocks' sums in block order."""
    xp = get_xp(dout, cache.v)
    v, a, cos, tau = cache.v, cache.attn.out, cache.cos, cache.scale.tau
    qn, qnorm, kn, knorm = cache.qn.out, cache.qn.norm, cache.kn.out, cache.kn.norm
    B_, nH, N, hd = v.shape
    # forward: out = merge_heads(o) @ Wproj.T + bproj
    do, dproj_w, dproj_b = linear_backward(dout, cache.proj)   # (B_, N, C)
    do = do.reshape(B_, N, nH, hd).transpose(0, 2, 1, 3)   # (B_, nH, N, d) a view
    dqkv = xp.empty((B_, N, 3, nH, hd), v.dtype)           # split_heads' layout
    dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)             # (B_, nH, N, d) views of it

    def kernel(start, stop):                               # windows start:stop
        s = slice(start, stop)
        dob = xp.ascontiguousarray(do[s])                  # (b, nH, N, d)
        # forward: o = a @ v  ->  da = do @ v^T, dv = a^T @ do
        da = xp.matmul(dob, v[s].transpose(0, 1, 3, 2))    # (b, nH, N, N)
        dv[s] = xp.matmul(a[s].transpose(0, 1, 3, 2), dob)
        # forward: a = softmax(s)
        ds = softmax_backward_into(da, a[s], out=da)       # (b, nH, N, N), over da
        # forward: s = cos * tau + bias (+ mask)
        dbias = ds.sum(axis=0)                             # this block's part of dbias
        dtau = (ds * cos[s]).sum(axis=(0, 2, 3))           # (nH,) this block's part of dtau
        dcos = xp.multiply(ds, tau, out=ds)                # (b, nH, N, N), over ds
        # forward: cos = qn @ kn^T, then the unit vectors
        dq[s] = _unit_rows_backward(xp.matmul(dcos, kn[s]), qn[s], qnorm[s], xp)
        dk[s] = _unit_rows_backward(xp.matmul(dcos.transpose(0, 1, 3, 2), qn[s]), kn[s],
                                    knorm[s], xp)
        return dbias, dtau
    parts = for_row_blocks(kernel, B_, block_rows(nH * N * N), xp)
    dbias = sum((p[0] for p in parts[1:]), parts[0][0])    # (nH, N, N) summed over windows
    dtau = sum((p[1] for p in parts[1:]), parts[0][1])     # (nH,)
    dlogit_scale = logit_scale_backward(dtau[:, None, None], cache.scale)   # (nH, 1, 1)
    # forward: qkv = x @ Wqkv.T + [q_bias, 0, v_bias]
    dx, dqkv_w, dqkv_b = linear_backward(dqkv.reshape(B_, N, 3 * nH * hd), cache.qkv)
    dq_bias, dv_bias = qkv_bias_backward(dqkv_b, cache.qkv_bias)
    return dx, dqkv_w, dq_bias, dv_bias, dlogit_scale, dproj_w, dproj_b, dbias
