"""GELU with the exact error function, as nn.GELU() (approximate='none').

    out = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt(2))) / 2          (the normal CDF)
    d out / dx = Phi(x) + x * phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)

The tanh approximation moves Swin-T's logits by about 1e-4 (SPEC 8), so it is not used.

Two ways to get Phi, the same maths:
* `normal_cdf`: erf from scipy / cupyx. Exact; used for float64 (gradient checks, parity).
* `normal_cdf_fast`: for float32, erf from Abramowitz & Stegun 7.1.26,
      erf(z) = 1 - t (a1 + a2 t + ... + a5 t^4) exp(-z^2),  t = 1 / (1 + p z),  z >= 0,
  whose error is below 1.5e-7 (float32 round-off of values near 1). It is the erf PyTorch's
  own vectorised CPU kernels use. Evaluated in float32, GELU stays within 2.6 float32 ulps of
  |x| (PyTorch's CPU GELU: 2.3). It costs one `exp` and a few multiply-adds per element,
  evaluated in place over small blocks on every core (minswin.parallel), where scipy's erf
  costs ~10 `exp`s on one core. tests/test_fast_paths.py compares it with `normal_cdf` over
  the whole real line.

The MLP calls `gelu_and_derivative`, which also returns d out / dx while Phi and the exp are
at hand; `gelu_forward` / `gelu_backward` are the plain pair (and the exercise).
"""
import math
from typing import NamedTuple

import numpy as np

from ..backend import erf, get_xp
from ..checks import check_array
from ..parallel import block_rows, for_row_blocks

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# A&S 7.1.26: p, then a1..a5
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


class GeluCache(NamedTuple):
    x: object          # (...) the input
    cdf: object        # (...) Phi(x), reused by backward (erf is the expensive part)


def normal_cdf(x):
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2, with the library's exact erf."""
    return 0.5 * (1.0 + erf(x * _INV_SQRT2))


def normal_cdf_block(x, cdf, pdf=None):
    """Phi(x) into cdf (same shape), float32, accurate to float32 round-off; in place.

    With u = erfc(|x| / sqrt 2) / 2 (the tail), Phi(x) = u for x < 0 and 1 - u for x >= 0,
    written without a branch as Phi = 1/2 + copysign(1/2 - u, x).
    pdf: if given, receives exp(-x^2 / 2), which the erfc needs anyway (phi(x) * sqrt(2 pi)).
    """
    xp = get_xp(x, cdf)
    t = xp.abs(x)
    t *= _AS_P * _INV_SQRT2
    t += 1.0
    xp.divide(1.0, t, out=t)                               # t = 1 / (1 + p |x| / sqrt 2)
    xp.multiply(t, 0.5 * _AS_A[4], out=cdf)
    for a in _AS_A[3::-1]:                                 # Horner, the 1/2 of u folded in
        cdf += 0.5 * a
        cdf *= t                                           # t (a1 + a2 t + ... + a5 t^4) / 2
    e = xp.multiply(x, x, out=t if pdf is None else pdf)
    e *= -0.5
    xp.exp(e, out=e)                                       # exp(-z^2), z = |x| / sqrt 2
    cdf *= e                                               # u = erfc(z) / 2
    xp.subtract(0.5, cdf, out=cdf)
    xp.copysign(cdf, x, out=cdf)
    cdf += 0.5                                             # 1/2 + copysign(1/2 - u, x)
    return cdf


def normal_cdf_fast(x):
    """Phi(x) for float32 arrays: `normal_cdf_block` on blocks of x on every core."""
    xp = get_xp(x)
    x = xp.ascontiguousarray(x)
    cdf = xp.empty_like(x)
    xs, cs = x.reshape(-1), cdf.reshape(-1)
    for_row_blocks(lambda s, e: normal_cdf_block(xs[s:e], cs[s:e]), xs.size, block_rows(1), xp)
    return cdf


def gelu_derivative(x, cdf):
    """d out / dx = Phi(x) + x * phi(x), given Phi(x) = cdf."""
    xp = get_xp(x, cdf)
    return cdf + x * xp.exp(-0.5 * x * x) * _INV_SQRT_2PI


def gelu_forward(x):
    """out = x * Phi(x). Cache: x and Phi(x).

    The plain pair with `gelu_backward` (the exercise, tutorials and tests use it); the MLP's
    hot path is `gelu_and_derivative`.
    """
    get_xp(x)
    check_array("x", x)
    cdf = normal_cdf_fast(x) if x.dtype == np.float32 else normal_cdf(x)   # (...)
    return x * cdf, GeluCache(x, cdf)


def gelu_and_derivative(x):
    """out = x * Phi(x) and its derivative Phi(x) + x * phi(x), computed together.

    The forward already has Phi(x) and exp(-x^2 / 2), so the derivative costs two
    multiply-adds here, where `gelu_backward` would compute exp(-x^2 / 2) again. The MLP
    caches (out, derivative) instead of (x, Phi(x)): the same memory, and its backward is
    one product, dx = dout * derivative (tests/test_fast_paths.py checks it against
    gelu_backward).
    """
    xp = get_xp(x)
    check_array("x", x)
    if x.dtype != np.float32:
        cdf = normal_cdf(x)                                # exact (float64)
        return x * cdf, gelu_derivative(x, cdf)
    x = xp.ascontiguousarray(x)
    out, grad = xp.empty_like(x), xp.empty_like(x)
    xs, os, gs = x.reshape(-1), out.reshape(-1), grad.reshape(-1)

    def kernel(s, e):
        xb, ob, gb = xs[s:e], os[s:e], gs[s:e]
        cdf = normal_cdf_block(xb, xp.empty_like(xb), pdf=gb)   # gb: exp(-x^2 / 2)
        xp.multiply(xb, cdf, out=ob)                       # out = x Phi(x)
        gb *= xb
        gb *= _INV_SQRT_2PI                                # x phi(x)
        gb += cdf                                          # Phi(x) + x phi(x)
    for_row_blocks(kernel, xs.size, block_rows(1), xp)
    return out, grad


def gelu_backward(dout, cache):
    """forward: out = x * Phi(x)  ->  dx = dout * (Phi(x) + x * phi(x))"""
    get_xp(dout, cache.x)
    return dout * gelu_derivative(cache.x, cache.cdf)
