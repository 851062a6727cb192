"""Exercise: the backward pass of window multi-head attention (W-MSA / SW-MSA).

Symbols: B_ = windows in the batch (B * nW), N = M*M tokens per window, C width, nH heads,
d = C // nH head width.

The forward (minswin/ops/attention.py), in the official order:

    qkv = x @ Wqkv.T + bqkv                                   (B_, N, 3C)
    q, k, v = split_heads(qkv)                                (B_, nH, N, d) each
    q = q * scale                                             scale = d ** -0.5
    s = q @ k^T + bias                                        (B_, nH, N, N) bias (nH, N, N)
    s = s + mask (per window, when shifted)                   mask (nW, N, N) of 0 / -100
    a = softmax(s)                                            (B_, nH, N, N)
    o = a @ v                                                 (B_, nH, N, d)
    out = merge_heads(o) @ Wproj.T + bproj                    (B_, N, C)

split_heads: qkv.reshape(B_, N, 3, nH, d).transpose(2, 0, 3, 1, 4) -> (3, B_, nH, N, d)
merge_heads: o.transpose(0, 2, 1, 3).reshape(B_, N, C)

The cache (an AttentionCache) holds
    cache.qkv       LinearCache of the qkv projection (use linear_backward on it)
    cache.q         (B_, nH, N, d)  q ALREADY multiplied by scale
    cache.k         (B_, nH, N, d)
    cache.v         (B_, nH, N, d)
    cache.attn      SoftmaxCache: cache.attn.out are the probabilities a (B_, nH, N, N)
    cache.proj      LinearCache of the output projection
    cache.scale     the float d ** -0.5
The mask is a constant: it has no gradient, and a already includes its effect.

Return (dx, dqkv_weight, dqkv_bias, dproj_weight, dproj_bias, dbias), shaped like
(x (B_, N, C), Wqkv (3C, C), bqkv (3C,), Wproj (C, C), bproj (C,), bias (nH, N, N)).
You may use linear_backward and softmax_backward (or your own softmax exercise).
"""
import numpy as np  # noqa: F401

from minswin.ops.linear import linear_backward  # noqa: F401  (dx, dw, db) = f(dout, cache)
from minswin.ops.softmax import softmax_backward  # noqa: F401  ds = f(da, cache.attn)


def window_attention_backward(dout, cache):
    q, k, v, a = cache.q, cache.k, cache.v, cache.attn.out
    B_, nH, N, d = q.shape
    # YOUR CODE HERE, in reverse order of the forward:
    # 1. output projection      -> do (B_, N, C), dproj_weight, dproj_bias
    # 2. merge_heads            -> do (B_, nH, N, d)
    # 3. o = a @ v              -> da, dv
    # 4. a = softmax(s)         -> ds
    # 5. s = q @ k^T + bias     -> dbias (summed over windows), dq (remember the scale), dk
    # 6. split_heads            -> dqkv (B_, N, 3C)
    # 7. qkv projection         -> dx, dqkv_weight, dqkv_bias
    raise NotImplementedError(
        "window_attention_backward: from dout (B_, N, C) compute dx (B_, N, C), dqkv_weight "
        "(3C, C), dqkv_bias (3C,), dproj_weight (C, C), dproj_bias (C,) and dbias (nH, N, N); "
        f"here q is {tuple(q.shape)} = (B_, nH, N, d)")


# Check it:  minswin exercise check window_attention_backward ex_window_attention_backward.py
#       or:  python ex_window_attention_backward.py
# Expected: each relative error <= 1e-7 against central differences (a right answer gives
# 1e-9 to 1e-11) and <= 1e-9 against minswin's backward; above 1e-4 means a bug.
if __name__ == "__main__":
    from minswin.exercises import check_file
    raise SystemExit(check_file("window_attention_backward", __file__))
