"""Gradient checking: does a hand-written backward agree with the forward it undoes?

The idea in two lines. For a scalar L = sum(f(x) * dout), the backward pass claims
dL/dx = backward(dout). Central differences measure the same thing directly:
    dL/dx_i ~ (L(x + h e_i) - L(x - h e_i)) / 2h          error O(h^2) + rounding ~ eps|L|/h

Two checks:
* `numeric_vjp`: every element, one pair of forward calls each. Exact, slow: small shapes.
* directional: one random direction u per input, compare (L(x+hu) - L(x-hu)) / 2h with
  sum(backward * u). Two forward calls per input, whatever its size: whole blocks and models.

Why float64 only: with h = 1e-6 the rounding term eps*|L|/h is ~1e-10 in float64 but ~0.1 in
float32 (eps 1.2e-7): a float32 check cannot tell a right backward from a wrong one.

The error is normalised over the whole array, max|a - b| / (max|a| + max|b|), so that entries
that are exactly zero (masked pairs, padded tokens) cannot raise false alarms.

Thresholds (house table): one op <= 1e-7 (expect 1e-9 .. 1e-12), a composite block <= 1e-6,
a whole stage or model <= 1e-5; anything above 1e-4 is a bug.
"""
from typing import NamedTuple

import numpy as np

from .backend import get_xp, to_backend, to_numpy

TOL_OP, TOL_BLOCK, TOL_MODEL, TOL_BUG = 1e-7, 1e-6, 1e-5, 1e-4
_TINY = 1e-300


def rel_error(a, b):
    """max|a - b| / max(max|a| + max|b|, tiny): one number for two whole arrays."""
    a, b = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    num = np.max(np.abs(a - b))
    den = max(np.max(np.abs(a)) + np.max(np.abs(b)), _TINY)
    return float(num / den)


def require_float64(name, x):
    """Refuse anything but float64, and say why."""
    dtype = getattr(x, "dtype", None)
    if dtype is not None and dtype.kind in "iub":
        raise TypeError(f"{name}: gradient checks need float64, got {dtype}: an integer array "
                        "cannot be moved by h=1e-6, so its numeric gradient would be 0. "
                        "Pass integer inputs (indices, sizes) through `static`")
    if dtype is not None and dtype.kind == "f" and dtype != np.float64:
        raise TypeError(
            f"{name}: gradient checks need float64, got {x.dtype}. With h=1e-6 the rounding "
            "error of a central difference is about eps*|L|/h: ~1e-10 in float64 but ~0.1 in "
            "float32, so a float32 check cannot tell a right backward from a wrong one. "
            "Convert with x.astype(np.float64) (models: create_model(..., dtype='float64'))"
        )


def _loss(out, dout):
    """L = sum(out * dout) as a Python float (outputs may be a tuple of arrays)."""
    if isinstance(out, (tuple, list)):
        return sum(_loss(o, d) for o, d in zip(out, dout))
    return float(to_numpy((out * dout).sum()))


def numeric_vjp(f, x, dout, h=1e-6):
    """dL/dx for L = sum(f(x) * dout), by central differences on every element of x.

    f is called with arrays of x's shape; x is not modified. Works on either backend.
    """
    require_float64("x", x)
    xp = get_xp(x)
    x = x.copy()
    return numeric_grad_inplace(lambda: f(x), x, dout, h, xp)


def numeric_grad_inplace(f, a, dout, h=1e-6, xp=None):
    """Like numeric_vjp, but perturbs array `a` in place and calls f() with no arguments.

    This is how model parameters are checked: f runs the model, which reads `a` itself.
    """
    xp = xp or get_xp(a)
    if not a.flags.c_contiguous:
        raise ValueError("numeric_grad_inplace: the array must be C-contiguous so that a flat "
                         "view can perturb it in place")
    flat = a.reshape(-1)                                   # a view: writes reach `a`
    grad = np.zeros(a.size)
    for i in range(a.size):
        old = float(to_numpy(flat[i]))
        flat[i] = old + h
        lp = _loss(f(), dout)
        flat[i] = old - h
        lm = _loss(f(), dout)
        flat[i] = old
        grad[i] = (lp - lm) / (2 * h)
    return to_backend(grad.reshape(a.shape), xp)


def directional_check(f, arrays, grads, dout, h=1e-6, seed=0):
    """For each named array: (numeric, analytic) directional derivatives of L along a random
    unit-scale direction u. f() reads the arrays, which are perturbed in place and restored."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, a in arrays.items():
        xp = get_xp(a)
        u = to_backend(rng.standard_normal(a.shape), xp)
        a += h * u
        lp = _loss(f(), dout)
        a -= 2 * h * u
        lm = _loss(f(), dout)
        a += h * u
        numeric = (lp - lm) / (2 * h)
        analytic = float(to_numpy((grads[name] * u).sum()))
        out[name] = (numeric, analytic)
    return out


class GradRow(NamedTuple):
    name: str
    shape: tuple
    rel_error: float
    max_abs: float
    tol: float
    verdict: str


def verdict(err, tol):
    """'ok' within tol, 'CHECK' up to TOL_BUG, 'WRONG' beyond (and for NaN/inf)."""
    if err <= tol:
        return "ok"
    return "CHECK" if err <= TOL_BUG else "WRONG"


class GradReport(NamedTuple):
    title: str
    rows: list

    @property
    def passed(self):
        return all(r.verdict == "ok" for r in self.rows)

    @property
    def max_rel_error(self):
        return max((r.rel_error for r in self.rows), default=0.0)

    def row(self, name):
        return next(r for r in self.rows if r.name == name)

    def __str__(self):
        head = f"{'name':<36} {'shape':<18} {'rel_error':>10} {'max_abs':>10} " \
               f"{'expected':>10}  verdict"
        lines = [self.title, head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.name:<36} {str(r.shape):<18} {r.rel_error:10.2e} "
                         f"{r.max_abs:10.2e} {'<= %.0e' % r.tol:>10}  {r.verdict}")
        lines.append("all ok" if self.passed else
                     "some checks failed: 'CHECK' is suspicious, 'WRONG' (> 1e-4) is a bug")
        return "\n".join(lines)


def _as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


def check_op(forward, backward, inputs, *, static=None, wrt=None, dout=None, seed=0,
             h=1e-6, tol=TOL_OP, directional=False, title=None):
    """Check an op pair: forward(**inputs, **static) -> (out, cache); backward(dout, cache)
    returns the gradients as a tuple in the order of `inputs` (None for inputs without one).

    Every element of every input in `wrt` (default: all) is checked by central differences,
    or one random direction per input with directional=True. Returns a GradReport.
    """
    static = static or {}
    for name, a in inputs.items():
        require_float64(name, a)
    arrays = {k: v.copy() for k, v in inputs.items()}       # perturbed in place, never the caller's
    out, cache = forward(**arrays, **static)
    xp = get_xp(*[v for v in arrays.values()])
    if dout is None:
        rng = np.random.default_rng(seed)
        dout = to_backend(rng.standard_normal(out.shape), xp)
    returned = _as_tuple(backward(dout, cache))
    if len(returned) != len(arrays):
        raise ValueError(f"backward: expected {len(arrays)} gradients, one per input "
                         f"{tuple(arrays)}, got {len(returned)}")
    grads = dict(zip(arrays, returned))
    names = list(wrt or arrays)
    unknown = [n for n in names if n not in arrays]
    if unknown:
        raise ValueError(f"wrt: expected names among the inputs {tuple(arrays)}, got {unknown}")
    missing = [n for n in names if grads[n] is None]
    if missing:
        raise ValueError(f"backward returned no gradient for input(s) {missing}")

    def f():
        return forward(**arrays, **static)[0]

    if directional:
        pairs = directional_check(f, {n: arrays[n] for n in names}, grads, dout, h, seed + 1)
        rows = _directional_rows(pairs, arrays, grads, tol)
    else:
        rows = []
        for n in names:
            num = numeric_grad_inplace(f, arrays[n], dout, h)
            err = rel_error(grads[n], num)
            gap = float(np.max(np.abs(to_numpy(grads[n]) - to_numpy(num)))) if num.size else 0.0
            rows.append(GradRow(n, tuple(arrays[n].shape), err, gap, tol, verdict(err, tol)))
    return GradReport(title or getattr(forward, "__name__", "op"), rows)


def check_module(module, x, *, seed=0, h=1e-6, tol=TOL_MODEL, wrt=None, title=None):
    """Directional check of a module (block, stage, model) for its input and every parameter.

    The module must be in float64 and have forward(x) -> out, backward(dout) -> dx and
    params/grads dicts with the same keys. Every parameter gets its own random direction.
    """
    require_float64("x", x)
    for k, v in module.params.items():
        require_float64(k, v)
    if getattr(module, "training", False):
        raise ValueError("module: expected eval mode, got train mode: DropPath draws new masks "
                         "on every forward, so central differences would compare different "
                         "functions. Call module.eval() first")
    x = x.copy()
    out = module.forward(x)
    rng = np.random.default_rng(seed)
    dout = to_backend(rng.standard_normal(out.shape), get_xp(out))
    module.zero_grad()
    dx = module.backward(dout)
    grads = {"x": dx, **{k: g.copy() for k, g in module.grads.items()}}
    arrays = {"x": x, **module.params}
    if wrt is not None:
        unknown = [k for k in wrt if k not in arrays]
        if unknown:
            raise ValueError(f"wrt: expected 'x' or parameter names of the module, got {unknown}")
        arrays = {k: arrays[k] for k in wrt}
    pairs = directional_check(lambda: module.forward(x), arrays, grads, dout, h, seed + 1)
    return GradReport(title or type(module).__name__,
                      _directional_rows(pairs, arrays, grads, tol))


def _directional_rows(pairs, arrays, grads, tol):
    """One GradRow per input from directional_check's {name: (numeric, analytic)}.

    The error is |numeric - analytic| over the size the derivative along u should have. For a
    standard-normal u, g.u is typically about |g| (its standard deviation is exactly |g|), but
    a random u can be nearly orthogonal to g: then g.u is tiny, the central difference's
    rounding (about eps*|L|/h) is all that is left, and dividing by |g.u| alone would call a
    right backward wrong. So the denominator is the larger of |numeric| + |analytic| and |g|.
    A wrong backward still shows: it moves g.u by about |g_wrong - g|, a large part of |g|.
    """
    rows = []
    for n, (num, ana) in pairs.items():
        scale = float(np.sqrt(np.sum(to_numpy(grads[n]).astype(np.float64) ** 2)))
        err = abs(num - ana) / max(abs(num) + abs(ana), scale, _TINY)
        rows.append(GradRow(n, tuple(arrays[n].shape), err, abs(num - ana), tol,
                            verdict(err, tol)))
    return rows
