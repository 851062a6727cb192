"""Scaled cosine attention inside windows (Swin V2), plain: the maths as written.

Symbols: B_ = B*nW windows of the whole batch, N = M*M tokens per window, C width,
nH heads, d = C / nH head width, nW windows per image.

    q, k, v = split(x @ Wqkv.T + [q_bias, 0, v_bias])      each (B_, nH, N, d)
    qn = q / max(|q|, eps);  kn = k / max(|k|, eps)        unit rows (F.normalize, eps 1e-12)
    tau = exp(min(logit_scale, log 100))                   (nH, 1, 1) a temperature per head
    s = (qn @ kn^T) * tau + bias  [+ mask per window]      (B_, nH, N, N)
    a = softmax(s)                                         (B_, nH, N, N)
    out = merge_heads(a @ v) @ Wproj.T + bproj             (B_, N, C)

What changes from v1 (docs/semantics.md, section 6): the scores are cosines in [-1, 1] times a
learned temperature, not dot products times d^-0.5, so one large activation can no longer
push a softmax to one-hot; there is no d^-0.5; `logit_scale` is clamped at log 100 before the exp,
so above the clamp it gets no gradient at all; the bias comes from the continuous position
bias network (ops/continuous_bias.py), bounded in (0, 16). Bias, mask and softmax as in v1.
"""
import math
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_shape
from .attention import (
    add_mask,
    check_attention_inputs as check_window_attention_inputs,
    join_heads,
    merge_heads,
    split_heads,
    unmerge_heads,
)
from .linear import linear_backward, linear_forward
from .qv_bias import qkv_bias_backward, qkv_bias_forward
from .softmax import softmax_backward, softmax_forward

NORMALIZE_EPS = 1e-12          # torch.nn.functional.normalize's default eps
LOGIT_SCALE_MAX = math.log(100.0)   # official: clamp(logit_scale, max=log(1 / 0.01))


# ---------------------------------------------------------------------------- unit rows

class NormalizeCache(NamedTuple):
    out: object        # (..., d) the unit rows
    norm: object       # (..., 1) max(|x|, eps), the divisor


def normalize_forward(x, eps=NORMALIZE_EPS):
    """out = x / max(|x|, eps) over the last axis (torch.nn.functional.normalize)."""
    xp = get_xp(x)
    norm = xp.maximum(xp.sqrt((x * x).sum(axis=-1, keepdims=True)), eps)   # (..., 1)
    out = x / norm                                         # (..., d)
    return out, NormalizeCache(out, norm)


def normalize_backward(dout, cache, eps=NORMALIZE_EPS):
    """forward: out = x / |x|  ->  dx = (dout - out * sum(dout * out)) / |x|

    The unit vector does not change along x, so the part of dout along out is removed.
    Where |x| < eps the divisor is the constant eps and dx = dout / eps.
    """
    xp = get_xp(dout)
    out, norm = cache.out, cache.norm
    radial = (dout * out).sum(axis=-1, keepdims=True)      # (..., 1)
    return xp.where(norm > eps, (dout - out * radial) / norm, dout / eps)


# ---------------------------------------------------------------------------- temperature

class LogitScaleCache(NamedTuple):
    tau: object        # (nH, 1, 1) exp(min(logit_scale, log 100))
    below: object      # (nH, 1, 1) bool: logit_scale <= log 100, where the clamp lets through


def logit_scale_forward(logit_scale):
    """tau = exp(min(logit_scale, log 100)): the temperature of each head, at most 100."""
    xp = get_xp(logit_scale)
    tau = xp.exp(xp.minimum(logit_scale, LOGIT_SCALE_MAX))   # (nH, 1, 1)
    return tau, LogitScaleCache(tau, logit_scale <= LOGIT_SCALE_MAX)


def logit_scale_backward(dtau, cache):
    """forward: tau = exp(min(ls, log 100))  ->  dls = dtau * tau where ls <= log 100, else 0

    Above the clamp tau is the constant 100: the gradient is exactly zero (torch's clamp
    passes the gradient at the boundary itself, and so does this).
    """
    return dtau * cache.tau * cache.below


# ---------------------------------------------------------------------------- attention

class CosineAttentionCache(NamedTuple):
    qkv_bias: object   # QVBiasCache
    qkv: object        # LinearCache of the qkv projection (keeps x)
    qn: object         # NormalizeCache of q (unit rows, norms)
    kn: object         # NormalizeCache of k
    v: object          # (B_, nH, N, d)
    cos: object        # (B_, nH, N, N) qn @ kn^T, the cosines
    scale: object      # LogitScaleCache
    attn: object       # SoftmaxCache: the probabilities (B_, nH, N, N)
    proj: object       # LinearCache of the output projection (keeps the merged heads)


def check_attention_inputs(x, qkv_weight, q_bias, v_bias, logit_scale, proj_weight, bias,
                           mask, num_heads):
    """v1's checks (x, num_heads, qkv_weight, proj_weight, bias, mask: ops/attention.py) and
    V2's own operands, with messages that name each; returns (B_, N, C, nH)."""
    check_window_attention_inputs(x, qkv_weight, None, proj_weight, None, bias, mask,
                                  num_heads)
    B_, N, C = x.shape
    nH = num_heads
    check_shape("q_bias", q_bias, (C,), dtype=x.dtype)
    check_shape("v_bias", v_bias, (C,), dtype=x.dtype)
    check_shape("logit_scale", logit_scale, (nH, 1, 1), dtype=x.dtype)
    return B_, N, C, nH


def cosine_attention_forward(x, qkv_weight, q_bias, v_bias, logit_scale, proj_weight,
                             proj_bias, bias=None, mask=None, num_heads=1):
    """Args:
        x (B_, N, C) tokens of every window; qkv_weight (3C, C); q_bias, v_bias (C,);
        logit_scale (nH, 1, 1); proj_weight (C, C), proj_bias (C,); bias (nH, N, N) the
        continuous position bias or None; mask (nW, N, N) of 0 / -100 or None;
        num_heads nH dividing C.
    Returns out (B_, N, C). Cache: the linear caches, unit q and k with their norms, v, the
    cosines (for the temperature's gradient), tau, the probabilities.
    """
    get_xp(x, qkv_weight, q_bias, v_bias, logit_scale, proj_weight, proj_bias, bias, mask)
    B_, N, C, nH = check_attention_inputs(x, qkv_weight, q_bias, v_bias, logit_scale,
                                          proj_weight, bias, mask, num_heads)
    qkv_bias, bias_cache = qkv_bias_forward(q_bias, v_bias)    # (3C,) = [q_bias, 0, v_bias]
    qkv, qkv_cache = linear_forward(x, qkv_weight, qkv_bias)   # (B_, N, 3C)
    q, k, v = split_heads(qkv, nH)                         # (B_, nH, N, d) each
    qn, qn_cache = normalize_forward(q)                    # (B_, nH, N, d) unit rows
    kn, kn_cache = normalize_forward(k)                    # (B_, nH, N, d)
    cos = qn @ kn.transpose(0, 1, 3, 2)                    # (B_, nH, N, N) in [-1, 1]
    tau, scale_cache = logit_scale_forward(logit_scale)    # (nH, 1, 1)
    s = cos * tau                                          # (B_, nH, N, N)
    if bias is not None:
        s = s + bias                                       # (nH, N, N) broadcast over windows
    if mask is not None:
        s = add_mask(s, mask)                              # -100 across shifted regions
    a, attn_cache = softmax_forward(s)                     # (B_, nH, N, N)
    o = a @ v                                              # (B_, nH, N, d)
    out, proj_cache = linear_forward(merge_heads(o), proj_weight, proj_bias)   # (B_, N, C)
    return out, CosineAttentionCache(bias_cache, qkv_cache, qn_cache, kn_cache, v, cos,
                                     scale_cache, attn_cache, proj_cache)


def cosine_attention_backward(dout, cache):
    """Returns (dx, dqkv_weight, dq_bias, dv_bias, dlogit_scale, dproj_weight, dproj_bias,
    dbias); dbias is summed over all windows of the batch, (nH, N, N)."""
    get_xp(dout, cache.v)
    v, a = cache.v, cache.attn.out
    nH = v.shape[1]
    # forward: out = linear_forward(merge_heads(o), proj_weight, proj_bias)
    do, dproj_w, dproj_b = linear_backward(dout, cache.proj)   # (B_, N, C)
    do = unmerge_heads(do, nH)                             # (B_, nH, N, d)
    # forward: o = a @ v  ->  da = do @ v^T, dv = a^T @ do
    da = do @ v.transpose(0, 1, 3, 2)                      # (B_, nH, N, N)
    dv = a.transpose(0, 1, 3, 2) @ do                      # (B_, nH, N, d)
    # forward: a = softmax(s)
    ds = softmax_backward(da, cache.attn)                  # (B_, nH, N, N)
    # forward: s = cos * tau + bias (+ mask): the mask is a constant
    dbias = ds.sum(axis=0)                                 # (nH, N, N)
    dtau = (ds * cache.cos).sum(axis=(0, 2, 3))[:, None, None]   # (nH, 1, 1)
    dcos = ds * cache.scale.tau                            # (B_, nH, N, N)
    dlogit_scale = logit_scale_backward(dtau, cache.scale)   # (nH, 1, 1)
    # forward: cos = qn @ kn^T  ->  dqn = dcos @ kn, dkn = dcos^T @ qn
    dqn = dcos @ cache.kn.out                              # (B_, nH, N, d)
    dkn = dcos.transpose(0, 1, 3, 2) @ cache.qn.out        # (B_, nH, N, d)
    # forward: qn = normalize(q), kn = normalize(k)
    dq = normalize_backward(dqn, cache.qn)
    dk = normalize_backward(dkn, cache.kn)
    # forward: q, k, v = split_heads(qkv)
    dqkv = join_heads(dq, dk, dv)                          # (B_, N, 3C)
    # forward: qkv = x @ Wqkv.T + [q_bias, 0, v_bias]
    dx, dqkv_w, dqkv_b = linear_backward(dqkv, cache.qkv)
    dq_bias, dv_bias = qkv_bias_backward(dqkv_b, cache.qkv_bias)
    return dx, dqkv_w, dq_bias, dv_bias, dlogit_scale, dproj_w, dproj_b, dbias


# ---------------------------------------------------------------------------- the slow twin

def cosine_attention_slow(x, qkv_weight, q_bias, v_bias, logit_scale, proj_weight, proj_bias,
                          bias=None, mask=None, num_heads=1):
    """The same attention one window, one head and one query at a time, with the cosine
    written as a dot product over two norms: the obviously correct version to test against.
    NumPy only, small sizes only."""
    import numpy as np
    B_, N, C = x.shape
    nH = num_heads
    d = C // nH
    tau = np.exp(np.minimum(logit_scale.reshape(nH), LOGIT_SCALE_MAX))
    out = np.zeros_like(x)
    for w in range(B_):
        merged = np.zeros((N, C), x.dtype)
        for h in range(nH):
            lanes = slice(h * d, (h + 1) * d)
            q = x[w] @ qkv_weight[lanes].T + q_bias[lanes]                   # (N, d)
            k = x[w] @ qkv_weight[C:2 * C][lanes].T                          # no k bias
            v = x[w] @ qkv_weight[2 * C:][lanes].T + v_bias[lanes]
            for i in range(N):
                s = np.empty(N)
                for j in range(N):
                    cos = q[i] @ k[j] / (max(np.linalg.norm(q[i]), NORMALIZE_EPS)
                                         * max(np.linalg.norm(k[j]), NORMALIZE_EPS))
                    s[j] = cos * tau[h]
                    if bias is not None:
                        s[j] += bias[h, i, j]
                    if mask is not None:
                        s[j] += mask[w % mask.shape[0], i, j]
                p = np.exp(s - s.max())
                merged[i, lanes] = (p / p.sum()) @ v
        out[w] = merged @ proj_weight.T + proj_bias
    return out
