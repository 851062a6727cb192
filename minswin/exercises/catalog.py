"""The exercises: which backward the learner writes, on which inputs it is checked, and hints.

Each exercise names one of minswin's own `*_backward(dout, cache)` functions. The grader runs
minswin's forward to make the cache, calls the learner's backward with it, and compares every
returned gradient with central differences and with minswin's backward (see `grader.py`).

An exercise carries
* `cases`: a few small float64 problems (shapes, masks, shifts, padding), built from a fixed
  seed so that a run is reproducible;
* `hints`: one generic hint per gradient, used when a gradient is wrong for a reason the
  grader does not recognise;
* `mistakes`: typical wrong backward passes, each with the hint that explains it. When the
  learner's wrong gradient equals a known mistake to round-off, that hint is shown instead.
  Each mistake is the plain backward (minswin.ops) with one or two lines changed, written
  with `edited`: the edit is the mistake, readable next to the line it spoils.
"""
import inspect
import textwrap
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ..gradcheck import TOL_OP
from ..ops.attention import window_attention_backward, window_attention_forward
from ..ops.gelu import gelu_backward, gelu_derivative, gelu_forward
from ..ops.layernorm import layernorm_backward, layernorm_forward
from ..ops.masks import attention_mask, relative_position_index
from ..ops.patch_merging import patch_merging_backward, patch_merging_forward, split_2x2
from ..ops.relative_bias import relative_bias_backward, relative_bias_forward
from ..ops.softmax import softmax_backward, softmax_forward
from ..ops.window import from_windows, to_windows_backward, to_windows_forward


class Case(NamedTuple):
    label: str         # what is special about this case, shown in the table (display only)
    inputs: dict       # differentiable inputs, float64, in the order the backward returns them
    static: dict       # everything else the forward takes (mask, window, shift, ...)
    padded: bool = False   # the forward pads the map, so the backward must crop dx back


class Mistake(NamedTuple):
    what: str                      # a short name of the mistake (used by the tests' messages)
    backward: Callable             # (dout, cache) -> grads, the wrong version
    hint: str


@dataclass(frozen=True)
class Exercise:
    name: str                      # the CLI name, e.g. "layernorm_backward"
    title: str
    summary: str                   # one line for `minswin exercise list`
    forward: Callable
    reference: Callable            # minswin's backward: the solution
    grads: tuple                   # names of the returned gradients, in order
    make_cases: Callable           # () -> list of Case
    hints: dict                    # gradient name -> generic hint
    mistakes: tuple = ()
    tol: float = TOL_OP            # vs central differences (house table: one op)
    ref_tol: float = 1e-9          # round-off: vs minswin's backward (the same maths), and
                                   # how close an answer must be to a known mistake's
    shape_hint: str = ""           # added when dx has the wrong shape on a padded case

    @property
    def function(self):
        """The function the learner writes: minswin's own backward, under its own name."""
        return self.reference.__name__

    @property
    def skeleton(self):
        return f"ex_{self.name}.py"

    def cases(self):
        return self.make_cases()


def _rng():
    return np.random.default_rng(20240515)


def edited(function, *changes, **names):
    """A copy of the plain op `function` with its source changed: how a mistake is written.

    changes: (old, new) pairs of source text, each `old` found exactly once (so an edit can
    never silently stop applying when the op changes); names: what the copy calls instead of
    a name it uses (a mistaken helper, e.g. softmax_backward=...). The copy runs in the op's
    own module, seeing the same helpers.
    """
    source = textwrap.dedent(inspect.getsource(function))
    for old, new in changes:
        if source.count(old) != 1:
            raise ValueError(f"edited: {old!r} occurs {source.count(old)} times in "
                             f"{function.__name__}, expected once")
        source = source.replace(old, new)
    namespace = {**function.__globals__, **names}
    exec(compile(source, f"<{function.__name__}, edited>", "exec"), namespace)   # noqa: S102
    return namespace[function.__name__]


# ---------------------------------------------------------------------------- LayerNorm

def _ln_cases():
    r = _rng()
    out = []
    for label, shape, offset in (("tokens (2, 3, 5)", (2, 3, 5), 0.0),
                                 ("rows (4, 8)", (4, 8), 0.0),
                                 ("map (1, 2, 2, 6), offset", (1, 2, 2, 6), 3.0)):
        C = shape[-1]
        x = r.standard_normal(shape) * 1.5 + offset
        out.append(Case(label, {"x": x, "gamma": 1.0 + 0.5 * r.standard_normal(C),
                                "beta": 0.5 * r.standard_normal(C)}, {}))
    return out


_LN_MEAN_TERM = "- dxhat.mean(axis=-1, keepdims=True)"
_LN_VAR_TERM = "- xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)"
_ln_no_var = edited(layernorm_backward, (_LN_VAR_TERM, ""))
_ln_no_mean = edited(layernorm_backward, (_LN_MEAN_TERM, ""))
_ln_constants = edited(layernorm_backward, (_LN_MEAN_TERM, ""), (_LN_VAR_TERM, ""))
_ln_no_gamma = edited(layernorm_backward, ("dxhat = dout * gamma", "dxhat = dout"))


LAYERNORM = Exercise(
    name="layernorm_backward",
    title="LayerNorm backward",
    summary="dx, dgamma, dbeta of LayerNorm over the last axis (the mean and variance paths)",
    forward=layernorm_forward, reference=layernorm_backward,
    grads=("dx", "dgamma", "dbeta"), make_cases=_ln_cases,
    hints={
        "dx": "x reaches xhat three ways: directly, through the mean and through the "
              "variance. Write dxhat = dout * gamma, then dx = rstd * (dxhat - mean(dxhat) - "
              "xhat * mean(dxhat * xhat)), the means over the last axis with keepdims=True",
        "dgamma": "out = xhat * gamma + beta, and gamma is shared by every token: dgamma is "
                  "dout * xhat summed over every axis but the last, shape (C,)",
        "dbeta": "beta is added to every token: dbeta is dout summed over every axis but the "
                 "last, shape (C,)",
    },
    mistakes=(
        Mistake("no variance term", _ln_no_var,
                "dx misses the path through the variance: var depends on x too. Subtract "
                "xhat * mean(dxhat * xhat) as well as mean(dxhat)"),
        Mistake("no mean term", _ln_no_mean,
                "dx misses the path through the mean: did you include the mean term? "
                "Subtract mean(dxhat) over the last axis"),
        Mistake("mean and var held constant", _ln_constants,
                "dx = rstd * dxhat treats the mean and the variance as constants, but both "
                "are functions of x: subtract mean(dxhat) and xhat * mean(dxhat * xhat)"),
        Mistake("gamma forgotten in dx", _ln_no_gamma,
                "dx: the gradient reaching xhat is dout * gamma, not dout (out = xhat * gamma "
                "+ beta)"),
    ),
)


# ---------------------------------------------------------------------------- softmax

def _softmax_cases():
    r = _rng()
    masked = r.standard_normal((2, 2, 4, 4))
    masked[..., 1:3] += np.array([-100.0, 0.0])      # some -100 entries, as the shift mask adds
    return [Case("rows (3, 5)", {"s": r.standard_normal((3, 5)) * 2}, {}),
            Case("logits (2, 2, 4, 4) with -100 entries", {"s": masked}, {}),
            Case("one long row (1, 9)", {"s": r.standard_normal((1, 9))}, {})]


_SOFTMAX_SUM_TERM = "(dout - (dout * p).sum(axis=-1, keepdims=True))"
_softmax_no_sum = edited(softmax_backward, (_SOFTMAX_SUM_TERM, "dout"))          # p * dout
_softmax_diag = edited(softmax_backward, (_SOFTMAX_SUM_TERM, "dout * (1 - p)"))  # diagonal


SOFTMAX = Exercise(
    name="softmax_backward",
    title="Softmax backward",
    summary="ds of a softmax over the last axis, from the saved probabilities only",
    forward=softmax_forward, reference=softmax_backward,
    grads=("ds",), make_cases=_softmax_cases,
    hints={"ds": "every p_j shares one denominator, so ds_i gathers dout_j from all K entries "
                 "of its own row: write dp_j/ds_i for j = i and for j != i, apply it to dout, "
                 "and check that each sum runs over the K keys of one row (the last axis) and "
                 "keeps that axis to broadcast back"},
    mistakes=(
        Mistake("no sum term", _softmax_no_sum,
                "ds = p * dout treats each p_i as a function of s_i alone, but every p_j "
                "depends on every s_i through the shared denominator: the Jacobian has "
                "off-diagonal entries, and they add one more term to ds"),
        Mistake("diagonal only", _softmax_diag,
                "dout * p * (1 - p) uses only the diagonal of the Jacobian, dp_i/ds_i. Every p_j "
                "depends on every s_i through the shared denominator: what is dp_j/ds_i for "
                "j != i, and what does it add to ds_i once summed over j?"),
    ),
)


# ---------------------------------------------------------------------------- GELU

def _gelu_cases():
    r = _rng()
    return [Case("vector (11,) from -4 to 4", {"x": np.linspace(-4.0, 4.0, 11)}, {}),
            Case("tokens (2, 3, 7)", {"x": r.standard_normal((2, 3, 7)) * 2}, {})]


_gelu_no_xphi = edited(gelu_backward, gelu_derivative=edited(
    gelu_derivative, (" + cache.x * normal_pdf(cache.x)", "")))
_gelu_no_cdf = edited(gelu_backward, gelu_derivative=edited(gelu_derivative, ("cache.cdf + ", "")))


def _gelu_tanh(dout, cache):
    """Not an edit: the derivative of the other GELU, 0.5 x (1 + tanh(c (x + 0.044715 x^3)))."""
    x = cache.x
    c = np.sqrt(2 / np.pi)
    t = np.tanh(c * (x + 0.044715 * x ** 3))
    return dout * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x))


GELU = Exercise(
    name="gelu_backward",
    title="GELU backward (exact erf)",
    summary="dx of GELU(x) = x * Phi(x), the exact (erf) version Swin uses",
    forward=gelu_forward, reference=gelu_backward,
    grads=("dx",), make_cases=_gelu_cases,
    hints={"dx": "product rule on x * Phi(x): d/dx = Phi(x) + x * phi(x), with "
                 "phi(x) = exp(-x^2/2) / sqrt(2 pi); Phi(x) is saved in cache.cdf"},
    mistakes=(
        Mistake("no x*phi term", _gelu_no_xphi,
                "dx = dout * Phi(x) forgets the x * phi(x) term: out = x * Phi(x) is a "
                "product, so both factors get differentiated"),
        Mistake("no Phi term", _gelu_no_cdf,
                "dx = dout * x * phi(x) forgets Phi(x) itself: the product rule gives "
                "Phi(x) + x * phi(x)"),
        Mistake("tanh approximation", _gelu_tanh,
                "this is the derivative of the tanh approximation of GELU; Swin (and this "
                "forward) use the exact erf version: Phi(x) + x * phi(x)"),
    ),
)


# ---------------------------------------------------------------------------- window attention

def _attn_case(r, label, B_, N, C, nH, mask):
    s = 0.5
    inputs = {"x": r.standard_normal((B_, N, C)),
              "qkv_weight": r.standard_normal((3 * C, C)) * s,
              "qkv_bias": r.standard_normal(3 * C) * s,
              "proj_weight": r.standard_normal((C, C)) * s,
              "proj_bias": r.standard_normal(C) * s,
              "bias": r.standard_normal((nH, N, N)) * s}
    return Case(label, inputs, {"mask": mask, "num_heads": nH})


def _attn_cases():
    r = _rng()
    mask = attention_mask(4, 4, 2, 1)                      # (4, 4, 4): a shifted 4x4 map, M=2
    return [_attn_case(r, "1 window, 1 head, bias, no mask", 1, 4, 4, 1, None),
            _attn_case(r, "4 windows, 2 heads, bias + shift mask", 4, 4, 4, 2, mask),
            _attn_case(r, "2 images x 4 windows, 2 heads, mask", 8, 4, 6, 2, mask)]


_attn_no_scale = edited(window_attention_backward,
                        ("dq = ds @ k * cache.scale", "dq = ds @ k"))
_attn_scale_dk = edited(window_attention_backward,
                        ("dk = ds.swapaxes(-1, -2) @ q",
                         "dk = ds.swapaxes(-1, -2) @ q * cache.scale"))
_attn_dbias_mean = edited(window_attention_backward,
                          ("dbias = ds.sum(axis=0)", "dbias = ds.mean(axis=0)"))
_attn_no_softmax_sum = edited(window_attention_backward, softmax_backward=_softmax_no_sum)


ATTENTION = Exercise(
    name="window_attention_backward",
    title="Window attention backward (relative bias and shift mask)",
    summary="all six gradients of multi-head attention inside windows, with bias and mask",
    forward=window_attention_forward, reference=window_attention_backward,
    grads=("dx", "dqkv_weight", "dqkv_bias", "dproj_weight", "dproj_bias", "dbias"),
    make_cases=_attn_cases,
    hints={
        "dproj_weight": "start at the end: out = merge_heads(o) @ Wproj.T + bproj is a linear "
                        "layer; minswin.ops.linear.linear_backward(dout, cache.proj) gives "
                        "(do, dproj_weight, dproj_bias)",
        "dproj_bias": "dproj_bias is dout summed over windows and tokens, shape (C,)",
        "dbias": "s = q @ k^T + bias: the bias (nH, N, N) is added to every window, so dbias "
                 "is ds summed over the window axis (axis 0). The mask is a constant: it has "
                 "no gradient and the backward never needs it (the probabilities include it)",
        "dx": "work back through o = a @ v (da = do @ v^T, dv = a^T @ do), the softmax "
              "(ds = a * (da - sum(da * a))), s = q @ k^T (dq = ds @ k, dk = ds^T @ q; "
              "cache.q is already scaled, so dq also gets * cache.scale), then stack "
              "(dq, dk, dv) back into (B_, N, 3C) with the inverse of split_heads and use "
              "linear_backward(dqkv, cache.qkv)",
        "dqkv_weight": "dqkv_weight comes from linear_backward(dqkv, cache.qkv); if it is "
                       "wrong while dproj_* are right, look at how dq, dk, dv are stacked "
                       "back into (B_, N, 3C): channel o = which*C + head*d + lane",
        "dqkv_bias": "dqkv_bias is dqkv summed over windows and tokens; if it is wrong, the "
                     "order of (dq, dk, dv) or of the heads in dqkv probably is",
    },
    mistakes=(
        Mistake("scale forgotten", _attn_no_scale,
                "the forward multiplies q by scale = d^-0.5 before q @ k^T, so dq needs "
                "* cache.scale too: dq = ds @ k * scale"),
        Mistake("scale applied to dk", _attn_scale_dk,
                "cache.q is already scaled, so dk = ds^T @ q needs no extra scale (only dq, "
                "which goes back through q * scale)"),
        Mistake("dbias averaged", _attn_dbias_mean,
                "dbias: the same bias is added to every window, so its gradient is the SUM of "
                "ds over the windows (axis 0), not the mean"),
        Mistake("softmax without the sum term", _attn_no_softmax_sum,
                "the softmax step is missing its sum term: ds = a * (da - sum(da * a, "
                "axis=-1, keepdims=True))"),
    ),
)


# ---------------------------------------------------------------------------- relative bias

def _rel_cases():
    r = _rng()
    out = []
    for M, nH in ((2, 1), (3, 2), (4, 3)):
        table = r.standard_normal(((2 * M - 1) ** 2, nH))
        out.append(Case(f"M={M}, {nH} head{'s' * (nH > 1)}, table {table.shape}",
                        {"table": table}, {"index": relative_position_index(M)}))
    return out


_rel_assign = edited(relative_bias_backward, ("index_add(dtable, cache.index.reshape(-1), d)",
                                               "dtable[cache.index.reshape(-1)] += d"))
_rel_no_transpose = edited(relative_bias_backward, ("dbias.transpose(1, 2, 0).reshape(",
                                                    "dbias.reshape("))


RELBIAS = Exercise(
    name="relative_bias_backward",
    title="Relative position bias backward (the scatter-add)",
    summary="dtable of the gather bias[h, i, j] = table[index[i, j], h]: a scatter-add",
    forward=relative_bias_forward, reference=relative_bias_backward,
    grads=("dtable",), make_cases=_rel_cases,
    hints={"dtable": "bias[h, i, j] = table[index[i, j], h], so every pair (i, j) adds "
                     "dbias[h, i, j] to row index[i, j] of dtable. Move the head axis last "
                     "(dbias.transpose(1, 2, 0).reshape(N*N, nH)) and scatter-add with "
                     "np.add.at(dtable, index.reshape(-1), d)"},
    mistakes=(
        Mistake("assign instead of accumulate", _rel_assign,
                "dtable[index] += d with repeated indices keeps only ONE of the repeats (the "
                "right-hand side is computed, then assigned once per distinct row). Each "
                "table row is used (M-|dr|)(M-|dc|) times: accumulate with "
                "np.add.at(dtable, index.reshape(-1), d)"),
        Mistake("heads not moved last", _rel_no_transpose,
                "dbias is (nH, N, N) but the table is (T, nH): reshaping dbias straight to "
                "(N*N, nH) mixes heads and pairs. Transpose to (N, N, nH) first"),
    ),
)


# ---------------------------------------------------------------------------- patch merging

def _merge_cases():
    r = _rng()
    out = []
    for label, shape in (("(1, 4, 4, 2)", (1, 4, 4, 2)), ("(2, 2, 6, 3)", (2, 2, 6, 3)),
                         ("odd map (1, 5, 3, 2), padded", (1, 5, 3, 2))):
        _, H, W, C = shape
        out.append(Case(label, {"x": r.standard_normal(shape),
                                "norm_weight": 1 + 0.5 * r.standard_normal(4 * C),
                                "norm_bias": 0.5 * r.standard_normal(4 * C),
                                "reduction_weight": r.standard_normal((2 * C, 4 * C)) * 0.5},
                        {}, padded=bool(H % 2 or W % 2)))
    return out


# the blocks scattered top-left, top-right, bottom-left, bottom-right (row-major)
_split_row_major = edited(split_2x2,
                          ("x[:, 1::2, 0::2] = g[..., 1 * C", "x[:, 0::2, 1::2] = g[..., 1 * C"),
                          ("x[:, 0::2, 1::2] = g[..., 2 * C", "x[:, 1::2, 0::2] = g[..., 2 * C"))
_merge_row_major = edited(patch_merging_backward, split_2x2=_split_row_major)
_merge_ln_no_var = edited(patch_merging_backward, layernorm_backward=_ln_no_var)


MERGING = Exercise(
    name="patch_merging_backward",
    title="Patch merging backward",
    summary="dx, dnorm_weight, dnorm_bias, dreduction_weight of the 2x2 merge, LN(4C), 4C->2C",
    forward=patch_merging_forward, reference=patch_merging_backward,
    grads=("dx", "dnorm_weight", "dnorm_bias", "dreduction_weight"),
    make_cases=_merge_cases,
    hints={
        "dreduction_weight": "the last step is a Linear without bias: "
                             "linear_backward(dout, cache.reduction) returns (dn, dW, None)",
        "dnorm_weight": "the middle step is LayerNorm(4C): "
                        "layernorm_backward(dn, cache.norm) returns (dm, dgamma, dbeta)",
        "dnorm_bias": "the middle step is LayerNorm(4C): "
                      "layernorm_backward(dn, cache.norm) returns (dm, dgamma, dbeta)",
        "dx": "dm is (B, h, w, 4C): channel block k goes back to the sub-grid it came from, "
              "in the forward's order x0 = x[0::2, 0::2], x1 = x[1::2, 0::2], "
              "x2 = x[0::2, 1::2], x3 = x[1::2, 1::2]; for odd maps the forward padded, so "
              "crop the result back to cache.hw",
    },
    mistakes=(
        Mistake("TL, TR, BL, BR order", _merge_row_major,
                "you scattered the 4C blocks in the order TL, TR, BL, BR, but the official "
                "forward concatenates x0 = [0::2, 0::2], x1 = [1::2, 0::2] (odd ROW, even "
                "column: bottom-left), x2 = [0::2, 1::2], x3 = [1::2, 1::2]"),
        Mistake("LayerNorm without the variance term", _merge_ln_no_var,
                "the LayerNorm step misses the path through the variance; reuse "
                "layernorm_backward(dn, cache.norm) or finish the layernorm exercise first"),
    ),
    shape_hint=("for an odd H or W the forward padded the map by one row/column: crop dx "
                "back to cache.hw = (H, W)"),
)


# ---------------------------------------------------------------------------- shift + partition

def _shift_cases():
    r = _rng()
    out = []
    for label, shape, M, shift in (("(1, 4, 4, 1), M=2, shift 1", (1, 4, 4, 1), 2, 1),
                                   ("(2, 8, 8, 2), M=4, shift 2", (2, 8, 8, 2), 4, 2),
                                   ("(1, 6, 7, 2), M=4, shift 2, padded to 8x8", (1, 6, 7, 2),
                                    4, 2),
                                   ("(1, 4, 6, 2), M=2, no shift", (1, 4, 6, 2), 2, 0)):
        _, H, W, _ = shape
        out.append(Case(label, {"x": r.standard_normal(shape)}, {"window": M, "shift": shift},
                        padded=bool(H % M or W % M)))
    return out


# rolls by -S again (as the forward did) instead of by +S
_shift_rolled_the_wrong_way = edited(to_windows_backward, from_windows=edited(
    from_windows, ("reverse_cyclic_shift(xs, cache.shift)", "cyclic_shift(xs, cache.shift)")))
# reshapes the tokens straight to the map instead of undoing the partition
_shift_partition_again = edited(to_windows_backward, from_windows=edited(
    from_windows, ("window_reverse(win, M, Hp, Wp)",
                   "tokens.reshape(-1, Hp, Wp, tokens.shape[-1])")))


SHIFT = Exercise(
    name="shift_partition_backward",
    title="Cyclic shift + window partition backward",
    summary="dx of pad -> roll(-S) -> window partition (to_windows_forward): pure data movement",
    forward=to_windows_forward, reference=to_windows_backward,
    grads=("dx",), make_cases=_shift_cases,
    hints={"dx": "every step of the forward only moves numbers, so undo them in reverse: "
                 "reshape (B*nW, N, C) to (B*nW, M, M, C), window_reverse to the padded map "
                 "cache.padded_hw, roll by +S (np.roll(x, shift=cache.shift, axis=(1, 2))), "
                 "then crop to cache.hw"},
    mistakes=(
        Mistake("rolled the wrong way", _shift_rolled_the_wrong_way,
                "the forward rolled by -S (content moves up/left); its inverse, and so its "
                "backward, rolls by +S: np.roll(x, shift=(sh, sw), axis=(1, 2))"),
        Mistake("tokens reshaped straight to the map", _shift_partition_again,
                "reshaping (B*nW, N, C) straight to (B, Hp, Wp, C) does not undo the "
                "partition: windows are laid out window by window, not row by row. Use "
                "window_reverse(win, M, Hp, Wp) (or reshape to (B, nWh, nWw, M, M, C) and "
                "transpose(0, 1, 3, 2, 4, 5))"),
    ),
    shape_hint=("the forward padded the map to multiples of M (cache.padded_hw): crop the "
                "gradient back to cache.hw = (H, W) at the end"),
)


from .catalog_v2 import V2_EXERCISES  # noqa: E402  (it builds on Case, Exercise, Mistake)
from .catalog_dense import DENSE_EXERCISES  # noqa: E402  (tutorial 12's upsampling)

EXERCISES = {e.name: e for e in (LAYERNORM, SOFTMAX, GELU, ATTENTION, RELBIAS, MERGING, SHIFT,
                                 *V2_EXERCISES, *DENSE_EXERCISES)}


def get_exercise(name):
    """The exercise called `name` (an Exercise is returned as it is); a ValueError listing the
    names otherwise."""
    if isinstance(name, Exercise):
        return name
    if name not in EXERCISES:
        raise ValueError(f"exercise: no exercise called {name!r}; expected one of "
                         f"{', '.join(EXERCISES)}")
    return EXERCISES[name]

