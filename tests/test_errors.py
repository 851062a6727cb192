"""Bad input to the ops: every message names the argument, what was expected and what came."""
import numpy as np
import pytest

import minswin
from minswin.ops.attention import window_attention_forward
from minswin.ops.layernorm import layernorm_forward
from minswin.ops.linear import linear_forward
from minswin.ops.patch_embed import patch_embed_forward
from minswin.ops.patch_merging import patch_merging_forward

R = np.random.default_rng(0)


def z(*shape, dtype=np.float64):
    return np.zeros(shape, dtype)


def attention(x, C=8, heads=2, mask=None, bias=None):
    return window_attention_forward(x, z(3 * C, C), z(3 * C), z(C, C), z(C), bias, mask, heads)


CASES = [
    (lambda: linear_forward(z(2, 5), z(4, 6)), ValueError,
     r"x: expected last axis of size 6 \(w is \(4, 6\)\), got shape \(2, 5\)"),
    (lambda: linear_forward(z(2, 6), z(4, 6), z(5)), ValueError,
     r"b: expected shape \(4,\), got \(5,\)"),
    (lambda: linear_forward(z(2, 6), z(4, 6, dtype=np.float32)), TypeError,
     r"w: expected dtype float64 like the other operands, got float32"),
    (lambda: linear_forward(z(2, 6, dtype=np.int64), z(4, 6)), TypeError,
     r"x: expected dtype float32 or float64, got int64"),
    (lambda: layernorm_forward(z(3, 8, dtype=np.float16), z(8), z(8)), TypeError,
     r"x: expected dtype float32 or float64, got float16"),
    (lambda: layernorm_forward(z(3, 8), z(7), z(8)), ValueError,
     r"gamma: expected shape \(8,\), got \(7,\)"),
    (lambda: attention(z(4, 4, 8), heads=3), ValueError,
     r"num_heads: expected a divisor of the width C=8, got 3"),
    (lambda: attention(z(4, 8)), ValueError,
     r"x: expected a 3-d array, got shape \(4, 8\) \(2-d\)"),
    (lambda: attention(z(6, 4, 8), mask=z(4, 4, 4)), ValueError,
     r"mask: expected \(nW, 4, 4\) with nW dividing the 6 windows, got \(4, 4, 4\)"),
    (lambda: attention(z(4, 4, 8), bias=z(2, 9, 9)), ValueError,
     r"bias: expected shape \(2, 4, 4\), got \(2, 9, 9\)"),
    (lambda: patch_embed_forward(z(1, 8, 8, 1), z(5, 3, 4, 4), z(5)), ValueError,
     r"weight: expected shape \(5, 1, 4, 4\), got \(5, 3, 4, 4\)"),
    (lambda: patch_embed_forward(z(8, 8, 3), z(5, 3, 4, 4), z(5)), ValueError,
     r"x: expected a 4-d array, got shape \(8, 8, 3\)"),
    (lambda: patch_merging_forward(z(1, 4, 4, 3), z(12), z(12), z(6, 8)), ValueError,
     r"reduction_weight: expected shape \(6, 12\), got \(6, 8\)"),
    (lambda: minswin.window_partition(z(1, 10, 14, 2), 7), ValueError,
     r"map size \(H, W\) = \(10, 14\) is not a multiple of window=7"),
    (lambda: minswin.window_reverse(z(3, 7, 7, 2), 7, 14, 14), ValueError,
     r"windows: 3 windows is not a multiple of the 4 windows of a \(14, 14\) map"),
    (lambda: minswin.relative_position_index(0), ValueError,
     r"window: expected a positive integer, got 0"),
]


@pytest.mark.parametrize("call,err,msg", CASES, ids=[c[2][:30] for c in CASES])
def test_bad_input_messages(call, err, msg):
    with pytest.raises(err, match=msg):
        call()
