"""The two Swin V2 exercises: the backward of scaled cosine attention (with the logit_scale
clamp) and the backward of the continuous position bias (16 sigmoid, the scatter-add into
the table, the cpb_mlp). Same form as catalog.py's: cases, generic hints, typical mistakes.
"""
import math

import numpy as np

from ..ops.continuous_bias import (continuous_bias_backward, continuous_bias_forward,
                                   log_spaced_coordinates)
from ..ops.cosine_attention import (LOGIT_SCALE_MAX, cosine_attention_backward,
                                    cosine_attention_forward)
from ..ops.masks import attention_mask, relative_position_index
from .catalog import Case, Exercise, Mistake, _rel_assign, edited


def _rng():
    return np.random.default_rng(20240516)


# ---------------------------------------------------------------------------- cosine attention

def _cos_case(r, label, B_, N, C, nH, mask, logit_scale):
    s = 0.5
    inputs = {"x": r.standard_normal((B_, N, C)),
              "qkv_weight": r.standard_normal((3 * C, C)) * s,
              "q_bias": r.standard_normal(C) * s,
              "v_bias": r.standard_normal(C) * s,
              "logit_scale": np.array(logit_scale, dtype=np.float64).reshape(nH, 1, 1),
              "proj_weight": r.standard_normal((C, C)) * s,
              "proj_bias": r.standard_normal(C) * s,
              "bias": r.standard_normal((nH, N, N)) * s}
    return Case(label, inputs, {"mask": mask, "num_heads": nH})


def _cos_cases():
    r = _rng()
    mask = attention_mask(4, 4, 2, 1)                      # (4, 4, 4): a shifted 4x4 map, M=2
    above = LOGIT_SCALE_MAX + 0.5                          # clamped: tau = 100, no gradient
    return [_cos_case(r, "1 window, 1 head, no mask", 1, 4, 4, 1, None, [1.0]),
            _cos_case(r, "4 windows, 2 heads, shift mask, head 1 above the clamp", 4, 4, 4, 2,
                      mask, [1.0, above]),
            _cos_case(r, "2 images x 4 windows, 2 heads, mask", 8, 4, 6, 2, mask,
                      [2.0, math.log(10)])]


# the mistakes: minswin's backward with one step changed (catalog.edited)
_cos_no_clamp = edited(cosine_attention_backward,
                       ("logit_scale_backward(dtau, cache.scale)", "dtau * cache.scale.tau"))
_cos_no_exp_chain = edited(cosine_attention_backward,
                           ("logit_scale_backward(dtau, cache.scale)",
                            "dtau * cache.scale.below"))
_cos_norm_constant = edited(cosine_attention_backward,
                            normalize_backward=lambda dout, cache: dout / cache.norm)
_cos_no_tau_in_dcos = edited(cosine_attention_backward,
                             ("dcos = ds * cache.scale.tau", "dcos = ds"))
_cos_v_from_k_third = edited(cosine_attention_backward, qkv_bias_backward=lambda d, cache: (
    d[:cache.width].copy(), d[cache.width:2 * cache.width].copy()))


COSINE_ATTENTION = Exercise(
    name="cosine_attention_backward",
    title="Scaled cosine attention backward (Swin V2, with the logit_scale clamp)",
    summary="all eight gradients of V2's cosine attention: unit q and k, the clamped "
            "temperature, q_bias / v_bias",
    forward=cosine_attention_forward, reference=cosine_attention_backward,
    grads=("dx", "dqkv_weight", "dq_bias", "dv_bias", "dlogit_scale", "dproj_weight",
           "dproj_bias", "dbias"),
    make_cases=_cos_cases,
    hints={
        "dproj_weight": "start at the end: out = merged @ Wproj.T + bproj is a linear layer; "
                        "linear_backward(dout, cache.proj) gives (dmerged, dproj_weight, "
                        "dproj_bias)",
        "dproj_bias": "dproj_bias is dout summed over windows and tokens, shape (C,)",
        "dbias": "s = cos * tau + bias (+ mask): dbias is ds summed over the window axis "
                 "(axis 0); the mask is a constant",
        "dlogit_scale": "tau = exp(min(logit_scale, log 100)): dtau = sum of ds * cos over "
                        "windows and both token axes, kept as (nH, 1, 1); then dlogit_scale = "
                        "dtau * tau where logit_scale <= log 100 (cache.scale.below) and 0 "
                        "above, where tau is the constant 100",
        "dx": "back through o = a @ v and the softmax as in v1, then s = cos * tau "
              "(dcos = ds * tau), cos = qn @ kn^T (dqn = dcos @ kn, dkn = dcos^T @ qn), the "
              "unit vectors qn = q / |q| (dq = (dqn - qn * sum(dqn * qn)) / |q|, the norms "
              "in cache.qn.norm), then stack (dq, dk, dv) into (B_, N, 3C) and "
              "linear_backward(dqkv, cache.qkv)",
        "dqkv_weight": "dqkv_weight comes from linear_backward(dqkv, cache.qkv); if it is "
                       "wrong while dproj_* are right, look at the unit-vector step or at "
                       "how dq, dk, dv are stacked back into (B_, N, 3C)",
        "dq_bias": "the qkv bias is [q_bias, 0, v_bias]: dq_bias is the first third of the "
                   "summed dqkv, dv_bias the last third",
        "dv_bias": "the qkv bias is [q_bias, 0, v_bias]: dv_bias is the LAST third of the "
                   "summed dqkv; the middle (k) third belongs to no parameter",
    },
    mistakes=(
        Mistake("clamp ignored", _cos_no_clamp,
                "dlogit_scale: above log 100 the forward uses the constant tau = 100 (the "
                "clamp), so the gradient there is exactly 0. Multiply by "
                "cache.scale.below (logit_scale <= log 100)"),
        Mistake("exp's derivative forgotten", _cos_no_exp_chain,
                "dlogit_scale: tau = exp(logit_scale) below the clamp, so dlogit_scale = "
                "dtau * tau, not dtau"),
        Mistake("norm held constant", _cos_norm_constant,
                "dq = dqn / |q| treats |q| as a constant, but it depends on q: remove the "
                "part of dqn along the unit vector, dq = (dqn - qn * sum(dqn * qn, "
                "axis=-1, keepdims=True)) / |q|"),
        Mistake("temperature forgotten", _cos_no_tau_in_dcos,
                "s = cos * tau: the gradient reaching the cosines is ds * tau "
                "(cache.scale.tau, (nH, 1, 1)), not ds"),
        Mistake("v bias from the k third", _cos_v_from_k_third,
                "dv_bias: the qkv bias is [q_bias, 0, v_bias], so v_bias's gradient is the "
                "LAST third of dqkv_bias; the middle third is k's, which has no parameter"),
    ),
)


# ---------------------------------------------------------------------------- continuous bias

def _cpb_cases():
    r = _rng()
    out = []
    for M, nH, D, pretrained in ((2, 1, 8, 0), (3, 2, 16, 2), (4, 3, 8, 0)):
        out.append(Case(
            f"M={M}, {nH} head{'s' * (nH > 1)}, {D} hidden units"
            + (f", pretrained window {pretrained}" if pretrained else ""),
            {"coords": log_spaced_coordinates(M, pretrained),
             "fc1_weight": r.standard_normal((D, 2)),
             "fc1_bias": 0.5 * r.standard_normal(D),
             "fc2_weight": r.standard_normal((nH, D)) / math.sqrt(D)},
            {"index": relative_position_index(M)}))
    return out


_CPB_SIGMOID = "dbias * BIAS_RANGE * cache.sig * (1.0 - cache.sig)"
_cpb_no_slope = edited(continuous_bias_backward, (_CPB_SIGMOID, "dbias * BIAS_RANGE"))
_cpb_no_16 = edited(continuous_bias_backward,
                    (_CPB_SIGMOID, "dbias * cache.sig * (1.0 - cache.sig)"))
_cpb_assign = edited(continuous_bias_backward, relative_bias_backward=_rel_assign)
_cpb_no_relu = edited(continuous_bias_backward,
                      ("xp.where(cache.active, dr, 0)", "dr"))


CONTINUOUS_BIAS = Exercise(
    name="continuous_bias_backward",
    title="Continuous position bias backward (Swin V2: 16 sigmoid, scatter-add, cpb_mlp)",
    summary="dcoords, dfc1_weight, dfc1_bias, dfc2_weight of bias = 16 sigmoid(MLP(coords)"
            "[index])",
    forward=continuous_bias_forward, reference=continuous_bias_backward,
    grads=("dcoords", "dfc1_weight", "dfc1_bias", "dfc2_weight"),
    make_cases=_cpb_cases,
    hints={
        "dfc2_weight": "work back: bias = 16 * s with s = sigmoid(g) (cache.sig), so dg = "
                       "dbias * 16 * s * (1 - s); g[h, i, j] = table[index[i, j], h] is v1's "
                       "gather, whose backward is a scatter-add into dtable (T, nH); then "
                       "table = r @ W2.T: linear_backward(dtable, cache.fc2)",
        "dfc1_weight": "after the second Linear comes the ReLU: the gradient passes only "
                       "where the hidden value was > 0 (cache.active); then "
                       "linear_backward(dhidden, cache.fc1)",
        "dfc1_bias": "dfc1_bias is dhidden summed over the T offsets, shape (D,); it comes "
                     "out of linear_backward(dhidden, cache.fc1)",
        "dcoords": "dcoords is the input gradient of the first Linear, (T, 2), reshaped to "
                   "cache.coords_shape (2M-1, 2M-1, 2)",
    },
    mistakes=(
        Mistake("sigmoid's slope forgotten", _cpb_no_slope,
                "bias = 16 * sigmoid(g): the derivative of sigmoid is s * (1 - s) "
                "(cache.sig holds s), so dg = dbias * 16 * s * (1 - s)"),
        Mistake("factor 16 forgotten", _cpb_no_16,
                "bias = 16 * sigmoid(g), so dg carries the factor 16 as well"),
        Mistake("assign instead of accumulate", _cpb_assign,
                "dtable[index] += d keeps only ONE of the repeated rows: each table row is "
                "read by (M-|dr|)(M-|dc|) pairs. Accumulate with np.add.at(dtable, "
                "index.reshape(-1), d)"),
        Mistake("ReLU gate forgotten", _cpb_no_relu,
                "the hidden layer goes through a ReLU: the gradient is zero where the hidden "
                "value was <= 0 (use cache.active)"),
    ),
)


V2_EXERCISES = (COSINE_ATTENTION, CONTINUOUS_BIAS)
