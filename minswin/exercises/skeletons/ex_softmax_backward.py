"""Exercise: the backward pass of softmax over the last axis.

The forward (minswin/ops/softmax.py):

    e = exp(s - s.max(-1, keepdims=True))                     (..., K) max removed for safety
    p = e / e.sum(-1, keepdims=True)                          (..., K)

In attention, s holds the logits of one query against the K keys of its window, and some
entries may carry the -100 shift mask; that does not change the backward.

Shapes: s, p and dout are (..., K).
The cache (a SoftmaxCache) holds only
    cache.out    (..., K)   the probabilities p
(the Jacobian of a softmax can be written with p alone).

Return ds, shaped like s.
"""
import numpy as np  # noqa: F401


def softmax_backward(dout, cache):
    p = cache.out
    # YOUR CODE HERE: dp_j/ds_i = p_j (delta_ij - p_i); apply that Jacobian to dout
    raise NotImplementedError(
        "softmax_backward: compute ds (..., K) from dout (..., K) and the probabilities "
        "cache.out (..., K); the sums run over the last axis")


# Check it:  minswin exercise check softmax_backward ex_softmax_backward.py
#       or:  python ex_softmax_backward.py
# Expected: each relative error <= 1e-7 against central differences (a right answer gives
# 1e-9 to 1e-12) and <= 1e-9 against minswin's backward; above 1e-4 means a bug.
if __name__ == "__main__":
    from minswin.exercises import check_file
    raise SystemExit(check_file("softmax_backward", __file__))
