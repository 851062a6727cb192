"""Exercise: the backward pass of Swin V2's scaled cosine attention.

Symbols: B_ windows of the batch, N = M*M tokens, C width, nH heads, d = C / nH.

The forward (minswin/ops/cosine_attention.py; try not to look until you are done):

    qkv = x @ Wqkv.T + [q_bias, 0, v_bias]                    (B_, N, 3C) no k bias
    q, k, v = split_heads(qkv)                                each (B_, nH, N, d)
    qn = q / |q|;  kn = k / |k|                               unit rows over d
    tau = exp(min(logit_scale, log 100))                      (nH, 1, 1)
    cos = qn @ kn^T                                           (B_, nH, N, N)
    s = cos * tau + bias  [+ mask]                            (B_, nH, N, N)
    a = softmax(s);  o = a @ v                                (B_, nH, N, d)
    out = merge_heads(o) @ Wproj.T + bproj                    (B_, N, C)

The cache (a CosineAttentionCache) holds
    cache.qkv_bias           QVBiasCache (width C)
    cache.qkv, cache.proj    LinearCaches: use minswin.ops.linear.linear_backward
    cache.qn, cache.kn       NormalizeCaches: .out the unit rows, .norm the |q|, |k| (..., 1)
    cache.v                  (B_, nH, N, d)
    cache.cos                (B_, nH, N, N)
    cache.scale              .tau (nH, 1, 1), .below (nH, 1, 1) bool: logit_scale <= log 100
    cache.attn.out           (B_, nH, N, N) the probabilities

Return (dx, dqkv_weight, dq_bias, dv_bias, dlogit_scale, dproj_weight, dproj_bias, dbias),
dbias summed over the windows, (nH, N, N).
"""
import numpy as np  # noqa: F401

from minswin.ops.linear import linear_backward  # noqa: F401


def cosine_attention_backward(dout, cache):
    B_, nH, N, d = cache.v.shape
    # YOUR CODE HERE
    # 1. the output projection, merge_heads, o = a @ v and the softmax (as in v1)
    # 2. s = cos * tau + bias: dbias, dtau, then dlogit_scale (mind the clamp), dcos
    # 3. cos = qn @ kn^T, then the unit vectors back to q and k
    # 4. dqkv (B_, N, 3C), the qkv linear, and the thirds of its bias
    raise NotImplementedError(
        "cosine_attention_backward: compute the eight gradients from dout (B_, N, C) and the "
        f"cache (B_={B_}, nH={nH}, N={N}, d={d})")


# Check it:  minswin exercise check cosine_attention_backward ex_cosine_attention_backward.py
#       or:  python ex_cosine_attention_backward.py
# Expected: each relative error <= 1e-7 against central differences (a right answer gives
# 1e-9 to 1e-12) and <= 1e-9 against minswin's backward; above 1e-4 means a bug.
if __name__ == "__main__":
    from minswin.exercises import check_file
    raise SystemExit(check_file("cosine_attention_backward", __file__))
