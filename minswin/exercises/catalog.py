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

Every hint comes in three levels (`Hint`), so that the grader leads rather than tells: the
first asks a question that names the path or the forward line whose gradient is wrong, in
words, with no expression; the second (`--hint 2`) names the term that is missing or wrong;
only the third (`--reveal`) gives the formula, and says that it does.
  Each mistake is the plain backward (minswin.ops) with one or two lines changed, written
  with `edited`: the edit is the mistake, readable next to the line it spoils.
The types and `edited` are in base.py, shared with catalog_v2.py and catalog_dense.py.
"""
import numpy as np

from ..ops.attention import window_attention_backward, window_attention_forward
from ..ops.gelu import gelu_backward, gelu_derivative, gelu_forward
from ..ops.layernorm import layernorm_backward, layernorm_forward
from ..ops.masks import attention_mask, relative_position_index
from ..ops.patch_merging import patch_merging_backward, patch_merging_forward, split_2x2
from ..ops.relative_bias import relative_bias_backward, relative_bias_forward
from ..ops.softmax import softmax_backward, softmax_forward
from ..ops.window import from_windows, to_windows_backward, to_windows_forward
from .base import Case, Exercise, Hint, Mistake, edited, rel_assign
from .catalog_dense import DENSE_EXERCISES  # tutorial 12's upsampling
from .catalog_v2 import V2_EXERCISES


def _rng():
    return np.random.default_rng(20240515)


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
        "dx": Hint("In how many ways does x reach xhat in the forward, and does your dx "
                   "follow each of them?",
                   "Three paths: x itself, the mean and the variance; each adds one term to "
                   "dx, and the last two are averages over the channels of a token.",
                   "dxhat = dout * gamma, then dx = rstd * (dxhat - mean(dxhat) - xhat * "
                   "mean(dxhat * xhat)), the means over the last axis with keepdims=True"),
        "dgamma": Hint("The last line of the forward scales every token by the same gamma: "
                       "what does that sharing do to its gradient?",
                       "A parameter shared by every token collects the gradient of every "
                       "token: a sum over all axes but the channel one.",
                       "dgamma = (dout * xhat) summed over every axis but the last, shape (C,)"),
        "dbeta": Hint("beta is added to every token in the last line of the forward: what "
                      "does that sharing do to its gradient?",
                      "A shared parameter collects every token's gradient: a sum over all "
                      "axes but the channel one.",
                      "dbeta = dout summed over every axis but the last, shape (C,)"),
    },
    mistakes=(
        Mistake("no variance term", _ln_no_var, Hint(
            "The forward divides by the standard deviation of x: did your dx follow the "
            "path through the variance?",
            "The missing term comes from the variance: xhat times the channel average of "
            "the gradient at xhat weighted by xhat.",
            "subtract xhat * mean(dxhat * xhat) as well as mean(dxhat), the means over the "
            "last axis")),
        Mistake("no mean term", _ln_no_mean, Hint(
            "The forward subtracts the mean of x: did your dx follow the path through the "
            "mean?",
            "The missing term comes from the mean: the channel average of the gradient "
            "that reaches xhat.",
            "subtract mean(dxhat) over the last axis (keepdims=True)")),
        Mistake("mean and var held constant", _ln_constants, Hint(
            "Your dx treats the mean and the variance of the forward as constants: are "
            "they?",
            "Both are functions of x, so dx has two more terms: one channel average for the "
            "mean, one for the variance.",
            "dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))")),
        Mistake("gamma forgotten in dx", _ln_no_gamma, Hint(
            "Which gradient reaches xhat through the forward's last line, where gamma scales "
            "xhat?",
            "The gradient at xhat is scaled by gamma, channel by channel.",
            "dxhat = dout * gamma, not dout")),
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
    hints={"ds": Hint("Every probability of a row shares one denominator: which entries "
                      "of dout does ds_i depend on, and along which axis?",
                      "ds_i gathers dout_j from all K entries of its own row (the last axis), "
                      "both for its own entry and for the others, and keeps that axis to "
                      "broadcast back.",
                      "ds = p * (dout - sum(dout * p, axis=-1, keepdims=True))")},
    mistakes=(
        Mistake("no sum term", _softmax_no_sum, Hint(
            "Your ds treats each p_i as a function of s_i alone: through the shared "
            "denominator of the softmax line, which other logits does p_i depend on?",
            "The Jacobian has off-diagonal entries; they add one more term to ds, an "
            "average of dout over the row weighted by the probabilities.",
            "ds = p * (dout - sum(dout * p, axis=-1, keepdims=True))")),
        Mistake("diagonal only", _softmax_diag, Hint(
            "Your ds uses only how p_i moves with s_i: how does another probability p_j "
            "of the row move with s_i?",
            "The off-diagonal entries of the Jacobian, summed over j, add a term shared by "
            "the whole row.",
            "dp_j/ds_i = -p_j p_i for j != i, so ds = p * (dout - sum(dout * p, axis=-1, "
            "keepdims=True))")),
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
    hints={"dx": Hint("The forward line is a product of x and the normal CDF of x: "
                      "which rule differentiates a product, and what does each factor give?",
                      "Two terms: the CDF itself (saved in cache.cdf), and x times the "
                      "derivative of the CDF, the normal density.",
                      "d/dx = Phi(x) + x * phi(x), with phi(x) = exp(-x^2/2) / sqrt(2 pi)")},
    mistakes=(
        Mistake("no x*phi term", _gelu_no_xphi, Hint(
            "The forward is a product of two factors that both depend on x: did you "
            "differentiate both?",
            "The missing term is x times the derivative of the CDF (the normal density).",
            "dx = dout * (Phi(x) + x * phi(x)); yours has only Phi(x)")),
        Mistake("no Phi term", _gelu_no_cdf, Hint(
            "The forward is a product of two factors that both depend on x: did you "
            "differentiate both?",
            "The missing term is the CDF itself, the derivative of the factor x times the "
            "other factor.",
            "dx = dout * (Phi(x) + x * phi(x)); yours has only x * phi(x)")),
        Mistake("tanh approximation", _gelu_tanh, Hint(
            "Which GELU does the forward compute: the exact one or an approximation?",
            "Yours is the derivative of the tanh approximation; Swin and this forward use "
            "the exact erf version.",
            "dx = dout * (Phi(x) + x * phi(x)), Phi the normal CDF")),
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
        "dproj_weight": Hint(
            "Start at the end: what kind of layer is the last line of the forward, and which "
            "of minswin's backwards undoes it?",
            "The output projection is a linear layer; its backward, given cache.proj, "
            "returns the gradient of the heads' output and of both projection parameters.",
            "linear_backward(dout, cache.proj) gives (do, dproj_weight, dproj_bias)"),
        "dproj_bias": Hint(
            "The projection bias is added to every token of every window: what does that "
            "sharing do to its gradient?",
            "It collects the gradient of every token of every window: a sum over all axes "
            "but the channel one.",
            "dproj_bias = dout summed over windows and tokens, shape (C,)"),
        "dbias": Hint(
            "The same relative position bias is added to the logits of every window: what "
            "does that sharing do to its gradient, and does the mask need a gradient?",
            "It collects the logit gradient of every window (a sum over the window axis); "
            "the mask is a constant with no gradient.",
            "dbias = ds.sum(axis=0), ds the gradient of the logits s = q @ k^T + bias"),
        "dx": Hint(
            "Walk the forward backwards: which lines lie between the output and x, and "
            "does your dx pass through each of them (the value product, the softmax, the "
            "query-key product, the qkv linear layer)?",
            "Each line gives one step: the gradients of the weights and of v, the softmax's "
            "own backward, the gradients of q and k (q was scaled), then the heads stacked "
            "back and the qkv linear layer undone.",
            "da = do @ v^T, dv = a^T @ do; ds = a * (da - sum(da * a, axis=-1, "
            "keepdims=True)); dq = ds @ k * cache.scale, dk = ds^T @ q; stack (dq, dk, dv) "
            "into (B_, N, 3C) with the inverse of split_heads; linear_backward(dqkv, "
            "cache.qkv)"),
        "dqkv_weight": Hint(
            "If dproj_* are right, the error lies before the projection: are dq, dk and dv "
            "stacked back in the order the forward split them?",
            "The qkv channels are ordered which-of-q/k/v first, then head, then lane.",
            "channel o = which*C + head*d + lane; dqkv_weight comes from "
            "linear_backward(dqkv, cache.qkv)"),
        "dqkv_bias": Hint(
            "The qkv bias is shared by every token of every window: are the summed "
            "gradients in the order the forward split q, k, v and the heads?",
            "A sum over windows and tokens, with the (q, k, v) and head order of the "
            "forward's split.",
            "dqkv_bias = dqkv summed over windows and tokens, channel o = which*C + head*d "
            "+ lane"),
    },
    mistakes=(
        Mistake("scale forgotten", _attn_no_scale, Hint(
            "Which forward line multiplies q before the product with the keys, and did "
            "your dq pass back through it?",
            "q is scaled by d^-0.5 in the forward, so dq carries the same factor.",
            "dq = ds @ k * cache.scale")),
        Mistake("scale applied to dk", _attn_scale_dk, Hint(
            "Which of q and k did the forward scale, and which one does your backward "
            "scale?",
            "cache.q is already scaled, so dk needs no extra factor; only dq does.",
            "dk = ds^T @ q (no scale), dq = ds @ k * cache.scale")),
        Mistake("dbias averaged", _attn_dbias_mean, Hint(
            "The same bias is added in every window: does a shared parameter take the "
            "average or the total of the gradients it receives?",
            "Over the window axis it is the total, not the average.",
            "dbias = ds.sum(axis=0), not ds.mean(axis=0)")),
        Mistake("softmax without the sum term", _attn_no_softmax_sum, Hint(
            "Look at the softmax step of your backward: through the shared denominator of "
            "a row, which logits does each weight depend on?",
            "The softmax step is missing its row term: an average of the weight gradient "
            "over the row, weighted by the attention weights.",
            "ds = a * (da - sum(da * a, axis=-1, keepdims=True))")),
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


_rel_no_transpose = edited(relative_bias_backward, ("dbias.transpose(1, 2, 0).reshape(",
                                                    "dbias.reshape("))


RELBIAS = Exercise(
    name="relative_bias_backward",
    title="Relative position bias backward (the scatter-add)",
    summary="dtable of the gather bias[h, i, j] = table[index[i, j], h]: a scatter-add",
    forward=relative_bias_forward, reference=relative_bias_backward,
    grads=("dtable",), make_cases=_rel_cases,
    hints={"dtable": Hint(
        "The forward gathers bias[h, i, j] from row index[i, j] of the table: how many pairs "
        "read the same row, and where does each pair's gradient go?",
        "Every pair adds its gradient to the row it read, with the head axis last: a "
        "scatter that accumulates repeated rows.",
        "d = dbias.transpose(1, 2, 0).reshape(N*N, nH); np.add.at(dtable, "
        "index.reshape(-1), d)")},
    mistakes=(
        Mistake("assign instead of accumulate", rel_assign, Hint(
            "Many pairs read the same table row: does your scatter keep all of their "
            "gradients, or only one?",
            "Fancy-index assignment with repeated indices keeps one of the repeats; each "
            "row is read (M-|dr|)(M-|dc|) times and needs an accumulating scatter.",
            "np.add.at(dtable, index.reshape(-1), d) instead of dtable[index] += d")),
        Mistake("heads not moved last", _rel_no_transpose, Hint(
            "dbias is (nH, N, N) and the table (T, nH): where is the head axis when you "
            "flatten the pairs?",
            "Reshaping straight to (N*N, nH) mixes heads and pairs; the head axis must be "
            "moved last first.",
            "d = dbias.transpose(1, 2, 0).reshape(N*N, nH)")),
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
        "dreduction_weight": Hint(
            "Start at the end: what kind of layer is the last line of the forward?",
            "A linear layer without bias; its backward, given cache.reduction, returns the "
            "input gradient and the weight gradient.",
            "linear_backward(dout, cache.reduction) returns (dn, dW, None)"),
        "dnorm_weight": Hint(
            "Which layer sits between the 2x2 concatenation and the reduction, and whose "
            "backward undoes it?",
            "The middle step is a LayerNorm over 4C channels; reuse its backward with "
            "cache.norm.",
            "layernorm_backward(dn, cache.norm) returns (dm, dgamma, dbeta)"),
        "dnorm_bias": Hint(
            "Which layer sits between the 2x2 concatenation and the reduction, and whose "
            "backward undoes it?",
            "The middle step is a LayerNorm over 4C channels; reuse its backward with "
            "cache.norm.",
            "layernorm_backward(dn, cache.norm) returns (dm, dgamma, dbeta)"),
        "dx": Hint(
            "Each channel block of the merged map came from one of four sub-grids: does "
            "yours go back to the sub-grid the forward took it from, and to the map's "
            "size before padding?",
            "The forward's order is not reading order: the second block comes from the odd "
            "rows and even columns; odd maps were padded and must be cropped back.",
            "x0 = x[0::2, 0::2], x1 = x[1::2, 0::2], x2 = x[0::2, 1::2], x3 = x[1::2, 1::2]; "
            "crop the result to cache.hw"),
    },
    mistakes=(
        Mistake("TL, TR, BL, BR order", _merge_row_major, Hint(
            "In which order does the forward concatenate the four sub-grids, and in which "
            "order did you scatter them back?",
            "The official order is not top-left, top-right, bottom-left, bottom-right: the "
            "second block is the odd ROW, even column (bottom-left) sub-grid.",
            "x0 = [0::2, 0::2], x1 = [1::2, 0::2], x2 = [0::2, 1::2], x3 = [1::2, 1::2]")),
        Mistake("LayerNorm without the variance term", _merge_ln_no_var, Hint(
            "The LayerNorm step of your backward: did it follow the path through the "
            "variance?",
            "The variance term of the LayerNorm backward is missing; minswin's own "
            "layernorm_backward (or the layernorm exercise) has it.",
            "layernorm_backward(dn, cache.norm)")),
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
    hints={"dx": Hint(
        "Every step of the forward (pad, roll, partition) only moves numbers: have you "
        "undone each of them, in reverse order?",
        "Undo the partition into windows, then the roll (in the other direction), then the "
        "padding.",
        "reshape to (B*nW, M, M, C), window_reverse to cache.padded_hw, np.roll(x, "
        "shift=cache.shift, axis=(1, 2)), crop to cache.hw")},
    mistakes=(
        Mistake("rolled the wrong way", _shift_rolled_the_wrong_way, Hint(
            "Which way did the forward roll the map, and which way does its inverse roll?",
            "The forward moved content up and left; the backward must move it down and "
            "right by the same amount.",
            "np.roll(x, shift=(sh, sw), axis=(1, 2)), i.e. by +S")),
        Mistake("tokens reshaped straight to the map", _shift_partition_again, Hint(
            "Are the tokens of the windows laid out row by row over the map, or window by "
            "window?",
            "A plain reshape does not undo the partition; the window axes must be moved "
            "back between the map's row and column axes.",
            "window_reverse(win, M, Hp, Wp), or reshape to (B, nWh, nWw, M, M, C) and "
            "transpose(0, 1, 3, 2, 4, 5)")),
    ),
    shape_hint=("the forward padded the map to multiples of M (cache.padded_hw): crop the "
                "gradient back to cache.hw = (H, W) at the end"),
)



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

