"""Every backward against central differences, float64, input and every parameter.

Gate: relative error <= 1e-7 per op (house table; expect 1e-9 .. 1e-12). These check the
plain tier, minswin.ops; tests/test_twins.py checks the fast tier against it (and runs its
own gradient check with tiny blocks on two threads).
"""
import numpy as np
import pytest
from conftest import check_op_case

from minswin.gradcheck import check_op
from minswin.ops.attention import window_attention_backward, window_attention_forward
from minswin.ops.droppath import droppath_backward, droppath_forward
from minswin.ops.gelu import gelu_backward, gelu_forward
from minswin.ops.layernorm import layernorm_backward, layernorm_forward
from minswin.ops.linear import linear_backward, linear_forward
from minswin.ops.masks import attention_mask, relative_position_index
from minswin.ops.mlp import mlp_backward, mlp_forward
from minswin.ops.patch_embed import patch_embed_backward, patch_embed_forward
from minswin.ops.patch_merging import patch_merging_backward, patch_merging_forward
from minswin.ops.relative_bias import relative_bias_backward, relative_bias_forward
from minswin.ops.softmax import softmax_backward, softmax_forward
from minswin.ops.window import (
    from_windows,
    from_windows_backward,
    to_windows_backward,
    to_windows_forward,
)


def n(rng, *shape):
    return rng.standard_normal(shape)


def attention_case(rng, H, W, M, shift, nH=2, C=8, B=2):
    """Inputs for window attention on a (B, H, W) map: windows, random weights, bias, mask."""
    Hp, Wp = H + (-H) % M, W + (-W) % M
    nW, N = (Hp // M) * (Wp // M), M * M
    mask = attention_mask(Hp, Wp, M, shift) if shift else None
    inputs = dict(x=n(rng, B * nW, N, C), qkv_weight=n(rng, 3 * C, C), qkv_bias=n(rng, 3 * C),
                  proj_weight=n(rng, C, C), proj_bias=n(rng, C), bias=n(rng, nH, N, N))
    return inputs, dict(mask=mask, num_heads=nH)


def linear_nobias_fwd(x, w):
    return linear_forward(x, w)


def linear_nobias_bwd(dout, cache):
    return linear_backward(dout, cache)[:2]


def droppath_fwd(x):
    return droppath_forward(x, 0.5, True, np.random.default_rng(3))   # same mask every call


def to_windows_fwd(x, window, shift):
    return to_windows_forward(x, window, shift)


def from_windows_fwd(tokens, cache):
    return from_windows(tokens, cache), cache


CASES = {
    "linear": lambda r: (linear_forward, linear_backward,
                         dict(x=n(r, 2, 3, 5), w=n(r, 4, 5), b=n(r, 4)), {}),
    "linear_no_bias": lambda r: (linear_nobias_fwd, linear_nobias_bwd,
                                 dict(x=n(r, 6, 5), w=n(r, 4, 5)), {}),
    "layernorm": lambda r: (layernorm_forward, layernorm_backward,
                            dict(x=n(r, 2, 3, 8) * 3 + 1, gamma=n(r, 8), beta=n(r, 8)), {}),
    "gelu": lambda r: (gelu_forward, gelu_backward, dict(x=n(r, 3, 7) * 2), {}),
    "softmax": lambda r: (softmax_forward, softmax_backward, dict(s=n(r, 2, 3, 6) * 2), {}),
    "patch_embed": lambda r: (patch_embed_forward, patch_embed_backward,
                              dict(x=n(r, 2, 8, 12, 3), weight=n(r, 5, 3, 4, 4), bias=n(r, 5)),
                              dict(patch=4)),
    "patch_embed_padded": lambda r: (patch_embed_forward, patch_embed_backward,
                                     dict(x=n(r, 1, 9, 6, 3), weight=n(r, 5, 3, 4, 4),
                                          bias=n(r, 5)), dict(patch=4)),
    "patch_merging": lambda r: (patch_merging_forward, patch_merging_backward,
                                dict(x=n(r, 2, 4, 6, 3), norm_weight=n(r, 12),
                                     norm_bias=n(r, 12), reduction_weight=n(r, 6, 12)), {}),
    "patch_merging_odd": lambda r: (patch_merging_forward, patch_merging_backward,
                                    dict(x=n(r, 1, 5, 3, 3), norm_weight=n(r, 12),
                                         norm_bias=n(r, 12), reduction_weight=n(r, 6, 12)),
                                    {}),
    "relative_bias": lambda r: (relative_bias_forward, relative_bias_backward,
                                dict(table=n(r, 9, 2)), dict(index=relative_position_index(2))),
    "relative_bias_M3": lambda r: (relative_bias_forward, relative_bias_backward,
                                   dict(table=n(r, 25, 3)),
                                   dict(index=relative_position_index(3))),
    "attention_w_msa": lambda r: (window_attention_forward, window_attention_backward,
                                  *attention_case(r, 4, 4, 2, 0)),
    "attention_sw_msa": lambda r: (window_attention_forward, window_attention_backward,
                                   *attention_case(r, 4, 6, 2, 1)),
    "attention_sw_msa_padded": lambda r: (window_attention_forward, window_attention_backward,
                                          *attention_case(r, 5, 7, 3, 1, nH=1, C=4, B=1)),
    "mlp": lambda r: (mlp_forward, mlp_backward,
                      dict(x=n(r, 2, 3, 4), fc1_weight=n(r, 8, 4), fc1_bias=n(r, 8),
                           fc2_weight=n(r, 4, 8), fc2_bias=n(r, 4)), {}),
    "droppath_train": lambda r: (droppath_fwd, droppath_backward, dict(x=n(r, 6, 2, 3)), {}),
    "to_windows_shift_pad": lambda r: (to_windows_fwd, to_windows_backward,
                                       dict(x=n(r, 2, 5, 7, 3)), dict(window=3, shift=(1, 1))),
    "to_windows_plain": lambda r: (to_windows_fwd, to_windows_backward,
                                   dict(x=n(r, 1, 4, 4, 2)), dict(window=2, shift=0)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_backward_matches_central_differences(case, xp):
    check_op_case(CASES[case], xp, case)


def test_from_windows_backward_is_exact(rng):
    x = rng.standard_normal((2, 5, 7, 3))
    tokens, cache = to_windows_forward(x, 3, (1, 1))
    report = check_op(from_windows_fwd, lambda d, c: from_windows_backward(d, c),
                      dict(tokens=tokens), static=dict(cache=cache))
    assert report.passed, str(report)


def test_checker_catches_a_wrong_backward(rng):
    """A test that cannot fail is a defect: a LayerNorm backward without the variance term."""
    def wrong(dout, cache):
        dx, dg, db = layernorm_backward(dout, cache)
        xhat, rstd, gamma = cache
        dxhat = dout * gamma
        return rstd * (dxhat - dxhat.mean(-1, keepdims=True)), dg, db
    report = check_op(layernorm_forward, wrong,
                      dict(x=rng.standard_normal((3, 6)), gamma=rng.standard_normal(6),
                           beta=rng.standard_normal(6)))
    assert not report.passed
    assert report.row("x").verdict == "WRONG"
    assert report.row("gamma").verdict == "ok"


def test_checker_refuses_float32(rng):
    with pytest.raises(TypeError, match="float64.*float32"):
        check_op(gelu_forward, gelu_backward, dict(x=rng.standard_normal(3).astype(np.float32)))


def test_directional_mode_agrees(rng):
    forward, backward, inputs, static = CASES["attention_sw_msa"](rng)
    report = check_op(forward, backward, inputs, static=static, directional=True)
    assert report.passed, str(report)


def test_droppath_scales_kept_samples_by_one_over_keep():
    """DropPath keeps a whole sample or drops it, and scales the kept ones by 1 / (1 - p) so
    that the expectation is x (timm's scale_by_keep). Checked without torch: the oracle test
    that also catches a missing scale is skipped where torch is absent."""
    p, B = 0.25, 4000
    x = np.ones((B, 3, 2))
    out, cache = droppath_forward(x, p, True, np.random.default_rng(5))
    per_sample = out.reshape(B, -1)
    assert (per_sample == per_sample[:, :1]).all()         # whole samples, never parts
    values = set(np.unique(per_sample).tolist())
    assert values == {0.0, 1.0 / (1.0 - p)}                # dropped, or kept and scaled
    kept = (per_sample[:, 0] > 0).mean()
    assert abs(kept - (1 - p)) < 0.03                      # about 1 - p of them kept
    assert abs(out.mean() - 1.0) < 0.04                    # so the mean is x's
    np.testing.assert_array_equal(droppath_backward(np.ones_like(x), cache), out)
    same, _ = droppath_forward(x, p, False, np.random.default_rng(5))
    assert same is x                                       # identity in eval


def test_directional_check_survives_a_direction_nearly_orthogonal_to_the_gradient():
    """A random direction u can be nearly orthogonal to the gradient g: then g.u is tiny and the
    central difference's rounding is all that is left of it. The error is measured against |g|,
    the size g.u has for a typical u, so a right backward passes along such a u, and a wrong one
    (the gradient with one element lost) still fails along it."""
    from minswin.gradcheck import check_op as check
    g = np.array([1.0, -2.0, 3.0, 0.5])                    # |g| ~ 3.8

    def forward(x):
        return (x * g).sum(keepdims=True) + 1e3, None      # dL/dx = g for any dout = 1

    def right(dout, cache):
        return dout * g

    def wrong(dout, cache):
        return dout * g * np.array([1.0, 1.0, 0.0, 1.0])   # loses the third element

    x = np.array([0.3, -0.1, 0.2, 0.7])
    for backward, passes in ((right, True), (wrong, False)):
        report = check(forward, backward, dict(x=x.copy()), directional=True)
        assert report.passed is passes, str(report)
    # along u = (2, 1, 0, 1e-7), g.u = 5e-8: a right backward whose central difference is
    # off by a rounding of 2e-10 (eps * |L| / h at |L| ~ 1e3) is still ok (it was 2e-3, WRONG)
    from minswin.gradcheck import _directional_rows
    rows = _directional_rows({"x": (5e-8 + 2e-10, 5e-8)}, {"x": x}, {"x": g}, 1e-7)
    assert rows[0].verdict == "ok", rows
