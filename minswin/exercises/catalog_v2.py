"""The two Swin V2 exercises: the backward of scaled cosine attention (with the logit_scale
clamp) and the backward of the continuous position bias (16 sigmoid, the scatter-add into
the table, the cpb_mlp). Same form as catalog.py's: cases, generic hints, typical mistakes.
"""
import math

import numpy as np

from ..ops.continuous_bias import (
    continuous_bias_backward,
    continuous_bias_forward,
    log_spaced_coordinates,
)
from ..ops.cosine_attention import (
    LOGIT_SCALE_MAX,
    cosine_attention_backward,
    cosine_attention_forward,
)
from ..ops.masks import attention_mask, relative_position_index
from .base import Case, Exercise, Hint, Mistake, edited, rel_assign


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
        "dproj_weight": Hint(
            "Start at the end: what kind of layer is the last line of the forward?",
            "The output projection is a linear layer; its backward, given cache.proj, "
            "returns the heads' gradient and both projection parameters' gradients.",
            "linear_backward(dout, cache.proj) gives (dmerged, dproj_weight, dproj_bias)"),
        "dproj_bias": Hint(
            "The projection bias is added to every token of every window: what does that "
            "sharing do to its gradient?",
            "A sum over windows and tokens.",
            "dproj_bias = dout summed over windows and tokens, shape (C,)"),
        "dbias": Hint(
            "The same position bias is added to the logits of every window: what does that "
            "do to its gradient, and does the mask need one?",
            "A sum of the logit gradient over the window axis; the mask is a constant.",
            "dbias = ds.sum(axis=0)"),
        "dlogit_scale": Hint(
            "logit_scale reaches the logits through the temperature, which is clamped: "
            "which forward lines lie between them, and what does the clamp do?",
            "Two steps: the temperature's gradient (the logit gradient times the cosines, "
            "summed per head), then the exponential, passed only below the clamp.",
            "dtau = sum of ds * cos over windows and both token axes, kept (nH, 1, 1); "
            "dlogit_scale = dtau * tau where logit_scale <= log 100 (cache.scale.below), "
            "0 above"),
        "dx": Hint(
            "Walk the forward backwards: the value product, the softmax, the temperature, "
            "the cosine product, the unit vectors, the qkv linear layer. Does your dx pass "
            "through each?",
            "The steps v1 does not have: the temperature scales the cosine gradient, and "
            "normalising q and k to unit length removes the part along each unit vector.",
            "dcos = ds * tau; dqn = dcos @ kn, dkn = dcos^T @ qn; dq = (dqn - qn * "
            "sum(dqn * qn)) / |q| (norms in cache.qn.norm); stack (dq, dk, dv) into "
            "(B_, N, 3C); linear_backward(dqkv, cache.qkv)"),
        "dqkv_weight": Hint(
            "If dproj_* are right, the error lies before the projection: in the unit-vector "
            "step, or in how dq, dk, dv are stacked back?",
            "Check the normalisation's backward and the (q, k, v), head, lane order of the "
            "qkv channels.",
            "dqkv_weight comes from linear_backward(dqkv, cache.qkv), dqkv stacked as "
            "(B_, N, 3C)"),
        "dq_bias": Hint(
            "Which part of the qkv bias is q_bias?",
            "The qkv bias is q_bias, zeros, v_bias: q_bias owns the first third.",
            "dq_bias = the first third of dqkv summed over windows and tokens"),
        "dv_bias": Hint(
            "Which part of the qkv bias is v_bias?",
            "The qkv bias is q_bias, zeros, v_bias: v_bias owns the LAST third; the middle "
            "(k) third belongs to no parameter.",
            "dv_bias = the last third of dqkv summed over windows and tokens"),
    },
    mistakes=(
        Mistake("clamp ignored", _cos_no_clamp, Hint(
            "The forward clamps logit_scale at log 100: what gradient passes through a "
            "clamp that is active?",
            "Above the clamp the temperature is a constant, so the gradient there is exactly "
            "zero; cache.scale.below says where the clamp is not active.",
            "multiply dlogit_scale by cache.scale.below (logit_scale <= log 100)")),
        Mistake("exp's derivative forgotten", _cos_no_exp_chain, Hint(
            "Between logit_scale and the temperature there is one more forward step: did "
            "you differentiate it?",
            "The temperature is the exponential of logit_scale below the clamp; its "
            "derivative is the temperature itself.",
            "dlogit_scale = dtau * tau, not dtau")),
        Mistake("norm held constant", _cos_norm_constant, Hint(
            "The forward divides q by its length: does your dq treat that length as a "
            "constant?",
            "The length depends on q too: its path removes the part of the gradient along "
            "the unit vector.",
            "dq = (dqn - qn * sum(dqn * qn, axis=-1, keepdims=True)) / |q|")),
        Mistake("temperature forgotten", _cos_no_tau_in_dcos, Hint(
            "Which forward line lies between the cosines and the logits, and did your "
            "gradient pass back through it?",
            "The logits are the cosines times the temperature, so the cosines' gradient "
            "carries the temperature (cache.scale.tau).",
            "dcos = ds * tau, tau of shape (nH, 1, 1)")),
        Mistake("v bias from the k third", _cos_v_from_k_third, Hint(
            "Which third of the qkv bias is v_bias?",
            "The qkv bias is q_bias, zeros, v_bias: v_bias is the last third; the middle "
            "one is k's, which has no parameter.",
            "dv_bias = the last third of dqkv_bias")),
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
_cpb_assign = edited(continuous_bias_backward, relative_bias_backward=rel_assign)
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
        "dfc2_weight": Hint(
            "Work back from the bias: which forward lines lie between it and the second "
            "Linear (a scaled sigmoid, a gather from the table)?",
            "The scaled sigmoid's slope, then the gather's backward (a scatter-add into the "
            "table), then the second Linear's backward with cache.fc2.",
            "dg = dbias * 16 * s * (1 - s) (s = cache.sig); scatter-add dg into dtable "
            "(T, nH); linear_backward(dtable, cache.fc2)"),
        "dfc1_weight": Hint(
            "Between the two Linears the forward applies one more function: what does its "
            "backward let through?",
            "The ReLU passes the gradient only where the hidden value was positive "
            "(cache.active); then the first Linear's backward.",
            "dhidden = where(cache.active, dr, 0); linear_backward(dhidden, cache.fc1)"),
        "dfc1_bias": Hint(
            "The first Linear's bias is added for every offset: what does that sharing do "
            "to its gradient?",
            "A sum over the T offsets, which the first Linear's backward returns.",
            "dfc1_bias = dhidden summed over the T offsets, shape (D,)"),
        "dcoords": Hint(
            "coords is the input of the first Linear: which backward returns its gradient, "
            "and in which shape?",
            "The input gradient of the first Linear, reshaped to cache.coords_shape.",
            "dcoords = the (T, 2) input gradient of linear_backward(dhidden, cache.fc1), "
            "reshaped to (2M-1, 2M-1, 2)"),
    },
    mistakes=(
        Mistake("sigmoid's slope forgotten", _cpb_no_slope, Hint(
            "The bias is a scaled sigmoid of the network's output: did you differentiate "
            "the sigmoid?",
            "The sigmoid's slope, s times one minus s (cache.sig holds s), is missing.",
            "dg = dbias * 16 * s * (1 - s)")),
        Mistake("factor 16 forgotten", _cpb_no_16, Hint(
            "The sigmoid's output is scaled before it becomes the bias: did your gradient "
            "keep that scale?",
            "The constant factor of the bias's range is missing.",
            "dg = dbias * 16 * s * (1 - s)")),
        Mistake("assign instead of accumulate", _cpb_assign, Hint(
            "Many pairs read the same table row: does your scatter keep all of their "
            "gradients, or only one?",
            "Fancy-index assignment keeps one of the repeats; each row is read by "
            "(M-|dr|)(M-|dc|) pairs and needs an accumulating scatter.",
            "np.add.at(dtable, index.reshape(-1), d) instead of dtable[index] += d")),
        Mistake("ReLU gate forgotten", _cpb_no_relu, Hint(
            "The hidden layer goes through a ReLU: what gradient passes where the hidden "
            "value was not positive?",
            "None: the gradient is zero there (cache.active marks where it passes).",
            "dhidden = where(cache.active, dr, 0)")),
    ),
)


V2_EXERCISES = (COSINE_ATTENTION, CONTINUOUS_BIAS)
