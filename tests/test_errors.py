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


@pytest.mark.parametrize("override, msg", [
    (dict(num_heads=(0, 6, 12, 24)), r"num_heads\[0\]: expected a positive integer, got 0"),
    (dict(embed_dim="96"), r"embed_dim: expected a positive integer, got '96'"),
    (dict(window_size=True), r"window_size: expected a positive integer, got True"),
    (dict(depths=3), r"depths: expected a non-empty tuple of positive integers"),
    (dict(mlp_ratio=-1), r"mlp_ratio: expected a positive number, got -1"),
    (dict(drop_path_rate=2.0), r"drop_path_rate: expected a number in \[0, 1\), got 2.0"),
    (dict(num_heads=(5, 6, 12, 24)), r"num_heads: stage 0 has width 96, which 5 heads"),
])
def test_bad_config_messages(override, msg):
    with pytest.raises(ValueError, match=msg):
        minswin.get_config("swin_t", **override)


def test_gradient_of_the_wrong_shape_is_refused():
    model = minswin.create_model("swin_micro", num_classes=3)
    with pytest.raises(ValueError, match=r"head.bias: expected a gradient of shape \(3,\), "
                                         r"got \(2, 3\)"):
        model.accumulate("head.bias", np.zeros((2, 3), np.float32))


def test_gradcheck_refuses_what_it_cannot_check():
    from minswin.gradcheck import check_op
    from minswin.ops.linear import linear_backward
    x, w = R.standard_normal((3, 4)), R.standard_normal((2, 4))
    with pytest.raises(TypeError, match="x: gradient checks need float64, got int64"):
        check_op(linear_forward, linear_backward, dict(x=np.ones((3, 4), np.int64), w=w))
    with pytest.raises(ValueError, match=r"backward: expected 2 gradients, one per input "
                                         r"\('x', 'w'\), got 3"):
        check_op(linear_forward, linear_backward, dict(x=x, w=w))
    with pytest.raises(ValueError, match=r"wrt: expected names among the inputs"):
        check_op(linear_forward, lambda d, c: linear_backward(d, c)[:2], dict(x=x, w=w),
                 wrt=["b"])


@pytest.mark.parametrize("size", [225, 0, 200.0])
def test_flops_refuse_sizes_the_official_count_does_not_describe(size):
    with pytest.raises(ValueError, match=r"img_size: expected a positive multiple of "
                                         r"patch_size \* 2\^\(stages - 1\) = 32"):
        minswin.flops.model_flops(minswin.get_config("swin_t"), size)
