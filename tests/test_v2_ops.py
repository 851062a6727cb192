"""Swin V2's plain ops: central-difference checks (float64, input and every parameter), the
slow twins, the logit_scale clamp on both sides, and the bicubic table resize against torch.
"""
import math

import numpy as np
import pytest
from conftest import check_op_case

from minswin.backend import to_backend, to_numpy
from minswin.gradcheck import check_op, rel_error
from minswin.ops.continuous_bias import (
    continuous_bias_backward,
    continuous_bias_forward,
    continuous_bias_slow,
    log_spaced_coordinates,
)
from minswin.ops.cosine_attention import (
    LOGIT_SCALE_MAX,
    cosine_attention_backward,
    cosine_attention_forward,
    cosine_attention_slow,
    normalize_backward,
    normalize_forward,
)
from minswin.ops.masks import attention_mask, relative_position_index
from minswin.ops.patch_merging_v2 import patch_merging_v2_backward, patch_merging_v2_forward
from minswin.ops.qv_bias import qkv_bias_backward, qkv_bias_forward
from minswin.ops.resize import bicubic_matrix, cubic_weight, resize_relative_bias_table


def n(rng, *shape):
    return rng.standard_normal(shape)


def cosine_case(rng, H, W, M, shift, nH=2, C=8, B=2, logit=None):
    Hp, Wp = H + (-H) % M, W + (-W) % M
    nW, N = (Hp // M) * (Wp // M), M * M
    mask = attention_mask(Hp, Wp, M, shift) if shift else None
    ls = np.full((nH, 1, 1), math.log(10.0)) + 0.3 * n(rng, nH, 1, 1) if logit is None \
        else np.asarray(logit, dtype=np.float64).reshape(nH, 1, 1)
    inputs = dict(x=n(rng, B * nW, N, C), qkv_weight=n(rng, 3 * C, C), q_bias=n(rng, C),
                  v_bias=n(rng, C), logit_scale=ls, proj_weight=n(rng, C, C),
                  proj_bias=n(rng, C), bias=n(rng, nH, N, N))
    return inputs, dict(mask=mask, num_heads=nH)


def cpb_case(rng, M, nH=3, D=16, pretrained=0):
    coords = log_spaced_coordinates(M, pretrained)
    inputs = dict(coords=coords, fc1_weight=n(rng, D, 2), fc1_bias=n(rng, D),
                  fc2_weight=n(rng, nH, D) * 0.5)
    return inputs, dict(index=relative_position_index(M))


def normalize_fwd(x):
    return normalize_forward(x)


CASES = {
    "normalize": lambda r: (normalize_fwd, normalize_backward, dict(x=n(r, 3, 4, 5)), {}),
    "qkv_bias": lambda r: (qkv_bias_forward, qkv_bias_backward,
                           dict(q_bias=n(r, 6), v_bias=n(r, 6)), {}),
    "cosine_w_msa": lambda r: (cosine_attention_forward, cosine_attention_backward,
                               *cosine_case(r, 4, 4, 2, 0)),
    "cosine_sw_msa": lambda r: (cosine_attention_forward, cosine_attention_backward,
                                *cosine_case(r, 4, 6, 2, 1)),
    "cosine_sw_msa_padded": lambda r: (cosine_attention_forward, cosine_attention_backward,
                                       *cosine_case(r, 5, 7, 3, 1, nH=1, C=4, B=1)),
    "cosine_one_head_above_clamp": lambda r: (
        cosine_attention_forward, cosine_attention_backward,
        *cosine_case(r, 4, 4, 2, 0, logit=[1.0, LOGIT_SCALE_MAX + 0.5])),
    "cpb_M2": lambda r: (continuous_bias_forward, continuous_bias_backward, *cpb_case(r, 2)),
    "cpb_M3_pretrained_2": lambda r: (continuous_bias_forward, continuous_bias_backward,
                                      *cpb_case(r, 3, nH=2, pretrained=2)),
    "patch_merging_v2": lambda r: (patch_merging_v2_forward, patch_merging_v2_backward,
                                   dict(x=n(r, 2, 4, 6, 3), reduction_weight=n(r, 6, 12),
                                        norm_weight=n(r, 6), norm_bias=n(r, 6)), {}),
    "patch_merging_v2_odd": lambda r: (patch_merging_v2_forward, patch_merging_v2_backward,
                                       dict(x=n(r, 1, 5, 3, 3), reduction_weight=n(r, 6, 12),
                                            norm_weight=n(r, 6), norm_bias=n(r, 6)), {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_backward_matches_central_differences(case, xp):
    check_op_case(CASES[case], xp, case)


# ---------------------------------------------------------------------------- logit_scale clamp

@pytest.mark.parametrize("side", ["below", "above"])
def test_logit_scale_gradient_on_each_side_of_the_clamp(side):
    """Below log 100 the temperature is exp(logit_scale) and its gradient is tau * dtau; above,
    tau is the constant 100: the gradient is exactly zero and the output does not move."""
    rng = np.random.default_rng(2)
    value = LOGIT_SCALE_MAX - 0.2 if side == "below" else LOGIT_SCALE_MAX + 0.2
    inputs, static = cosine_case(rng, 4, 4, 2, 1, nH=2, logit=[value, value])
    out, cache = cosine_attention_forward(**inputs, **static)
    dout = rng.standard_normal(out.shape)
    dls = cosine_attention_backward(dout, cache)[4]
    moved = dict(inputs, logit_scale=inputs["logit_scale"] + 0.1)
    out2 = cosine_attention_forward(**moved, **static)[0]
    if side == "above":
        assert np.all(dls == 0)
        assert np.array_equal(out, out2)                   # clamped: tau stays 100
    else:
        assert np.all(np.abs(dls) > 1e-6)
        assert not np.allclose(out, out2)
    report = check_op(cosine_attention_forward, cosine_attention_backward, inputs,
                      static=static, wrt=["logit_scale"])
    assert report.passed, str(report)


def test_normalize_below_eps_divides_by_eps():
    x = np.zeros((1, 3))
    x[0, 0] = 1e-14
    out, cache = normalize_forward(x)
    assert np.allclose(out, x / 1e-12)
    assert np.allclose(normalize_backward(np.ones_like(x), cache), 1e12)


# ---------------------------------------------------------------------------- slow twins

@pytest.mark.parametrize("shape", [(4, 4, 2, 0), (4, 6, 2, 1), (6, 6, 3, 1)])
def test_cosine_attention_matches_slow_twin(shape):
    rng = np.random.default_rng(3)
    inputs, static = cosine_case(rng, *shape, nH=2, C=6,
                                 logit=[1.0, LOGIT_SCALE_MAX + 1.0])
    fast = cosine_attention_forward(**inputs, **static)[0]
    slow = cosine_attention_slow(**inputs, **static)
    assert rel_error(fast, slow) < 1e-13


def test_k_has_no_bias():
    """The middle third of the qkv bias is zero whatever q_bias and v_bias hold."""
    rng = np.random.default_rng(4)
    b, _ = qkv_bias_forward(rng.standard_normal(5), rng.standard_normal(5))
    assert b.shape == (15,) and np.all(b[5:10] == 0) and np.all(b[:5] != 0)


@pytest.mark.parametrize("M, pretrained", [(2, 0), (3, 0), (4, 3), (1, 0)])
def test_continuous_bias_matches_slow_twin(M, pretrained):
    rng = np.random.default_rng(5)
    inputs, static = cpb_case(rng, M, nH=3, pretrained=pretrained)
    fast = continuous_bias_forward(**inputs, **static)[0]
    slow = continuous_bias_slow(M, inputs["fc1_weight"], inputs["fc1_bias"],
                                inputs["fc2_weight"], pretrained)
    assert fast.shape == (3, M * M, M * M)
    assert rel_error(fast, slow) < 1e-13
    assert np.all((fast > 0) & (fast < 16))


def test_log_spaced_coordinates_values():
    """M = 8: offset 7 -> 7/7*8 = 8 -> log2(9)/3; offset 0 -> 0; sign kept."""
    c = log_spaced_coordinates(8)
    assert c.shape == (15, 15, 2)
    assert c[7, 7].tolist() == [0.0, 0.0]
    assert np.isclose(c[14, 7, 0], math.log2(9) / 3) and np.isclose(c[0, 7, 0], -math.log2(9) / 3)
    assert np.isclose(c[7, 8, 1], math.log2(1 + 8 / 7) / 3)
    # pretrained window 8 used at window 16: the old offsets keep their coordinates
    c16 = log_spaced_coordinates(16, pretrained_window=8)
    assert np.array_equal(c16[15 - 7:15 + 8, 15 - 7:15 + 8], c)
    with pytest.raises(ValueError, match="pretrained_window: expected a positive integer"):
        log_spaced_coordinates(8, pretrained_window=-1)


# ---------------------------------------------------------------------------- bicubic resize

def test_cubic_kernel_interpolates():
    t = np.array([0.0, 1.0, 2.0, 2.5, -1.0, -2.0])
    assert np.allclose(cubic_weight(t), [1, 0, 0, 0, 0, 0])
    # the four taps of any sub-pixel position sum to one
    for f in (0.1, 0.5, 0.9):
        assert np.isclose(cubic_weight(np.array([1 + f, f, 1 - f, 2 - f])).sum(), 1.0)


def test_same_window_is_identity():
    table = np.random.default_rng(6).standard_normal((169, 3))
    assert np.allclose(resize_relative_bias_table(table, 7), table, rtol=0, atol=1e-15)
    assert np.allclose(bicubic_matrix(5, 5), np.eye(5))


@pytest.mark.parametrize("M, M2", [(7, 12), (12, 7), (2, 3), (4, 2), (8, 16)])
def test_resize_matches_torch_interpolate(M, M2):
    torch = pytest.importorskip("torch", reason="torch is the test oracle (pip install .[test])")
    F = torch.nn.functional
    rng = np.random.default_rng(7)
    nH = 3
    table = rng.standard_normal(((2 * M - 1) ** 2, nH))
    ours = resize_relative_bias_table(table, M2)
    img = torch.from_numpy(table.T.reshape(1, nH, 2 * M - 1, 2 * M - 1).copy())
    ref = F.interpolate(img, size=(2 * M2 - 1, 2 * M2 - 1), mode="bicubic",
                        align_corners=False)
    ref = ref.reshape(nH, -1).T.numpy()
    assert ours.shape == ((2 * M2 - 1) ** 2, nH)
    assert rel_error(ours, ref) < 1e-14


def test_resize_keeps_dtype_and_backend(xp):
    table = to_backend(np.random.default_rng(8).standard_normal((9, 2)).astype(np.float32), xp)
    out = resize_relative_bias_table(table, 3)
    assert out.dtype == np.float32 and out.shape == (25, 2)
    assert type(out) is type(table)
    assert np.all(np.isfinite(to_numpy(out)))


def test_resize_refuses_a_table_that_is_not_square():
    with pytest.raises(ValueError, match=r"table: expected \(\(2M-1\)\^2, nH\).*\(10, 2\)"):
        resize_relative_bias_table(np.zeros((10, 2)), 3)
    with pytest.raises(ValueError, match="new_window: expected a positive integer"):
        resize_relative_bias_table(np.zeros((9, 2)), 0)
