"""GELU with the exact error function, as nn.GELU() (approximate='none').

    out = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt(2))) / 2          (the normal CDF)
    d out / dx = Phi(x) + x * phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)

The tanh approximation moves Swin-T's logits by about 1e-4 (SPEC 8), so it is not used.

Two ways to get Phi, the same maths:
* `normal_cdf`: erf from scipy / cupyx. Exact; used for float64 (gradient checks, parity).
* `normal_cdf_fast`: for float32, a rational Chebyshev fit of erfc (Numerical Recipes'
  `erfcc`, fractional error < 1.2e-7, i.e. float32 round-off), evaluated in place over
  cache-sized chunks. scipy's erf costs ~10x an `exp` per element; this costs ~3 `exp`s.
  tests/test_fast_paths.py compares it with `normal_cdf` over the whole real line.
"""
import math
from typing import NamedTuple

import numpy as np

from ..backend import elementwise_chunk, erf, get_xp
from ..checks import check_array

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# erfc(z) ~ t * exp(-z^2 + P(t)), t = 1 / (1 + z/2), z >= 0; P's coefficients, lowest first
_ERFC_COEFFS = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
                -1.13520398, 1.48851587, -0.82215223, 0.17087277)


class GeluCache(NamedTuple):
    x: object          # (...) the input
    cdf: object        # (...) Phi(x), reused by backward (erf is the expensive part)


def normal_cdf(x):
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2, with the library's exact erf."""
    return 0.5 * (1.0 + erf(x * _INV_SQRT2))


def normal_cdf_fast(x):
    """Phi(x) for float32 arrays, accurate to float32 round-off; chunked and in place.

    With u = erfc(|x| / sqrt 2) / 2 (the tail), Phi(x) = u for x < 0 and 1 - u for x >= 0,
    written without a branch as Phi = 1/2 + sign(x) * (1/2 - u).
    """
    xp = get_xp(x)
    out = xp.empty(x.shape, dtype=x.dtype)                 # C order: its flat view is a view
    xs, os = x.reshape(-1), out.reshape(-1)
    step = elementwise_chunk(xp, xs.size)
    z = xp.empty(min(step, xs.size), dtype=x.dtype)        # scratch, reused per chunk
    t = xp.empty_like(z)
    for i in range(0, xs.size, step):
        xc, oc = xs[i:i + step], os[i:i + step]
        zc, tc = z[:xc.size], t[:xc.size]
        xp.abs(xc, out=zc)
        zc *= _INV_SQRT2                                   # z = |x| / sqrt 2
        xp.multiply(zc, 0.5, out=tc)
        tc += 1.0
        xp.reciprocal(tc, out=tc)                          # t = 1 / (1 + z/2)
        oc[...] = _ERFC_COEFFS[-1]
        for c in _ERFC_COEFFS[-2::-1]:                     # Horner: P(t)
            oc *= tc
            oc += c
        zc *= zc
        oc -= zc                                           # P(t) - z^2
        xp.exp(oc, out=oc)
        oc *= tc
        oc *= 0.5                                          # u = erfc(z) / 2
        xp.subtract(0.5, oc, out=oc)                       # 1/2 - u
        xp.sign(xc, out=zc)
        oc *= zc
        oc += 0.5                                          # 1/2 + sign(x) (1/2 - u)
    return out


def gelu_forward(x):
    """out = x * Phi(x). Cache: x and Phi(x)."""
    get_xp(x)
    check_array("x", x)
    cdf = normal_cdf_fast(x) if x.dtype == np.float32 else normal_cdf(x)   # (...)
    return x * cdf, GeluCache(x, cdf)


def gelu_backward(dout, cache):
    """forward: out = x * Phi(x)  ->  dx = dout * (Phi(x) + x * phi(x))

    Evaluated in place over cache-sized chunks (the same maths as the line above, fewer
    trips through memory for the (tokens, 4C) hidden activations).
    """
    xp = get_xp(dout, cache.x)
    x, cdf = cache
    dx = xp.empty(x.shape, dtype=x.dtype)                  # C order: its flat view is a view
    xs, cs, ds, os = x.reshape(-1), cdf.reshape(-1), dout.reshape(-1), dx.reshape(-1)
    step = elementwise_chunk(xp, xs.size)
    for i in range(0, xs.size, step):
        xc, oc = xs[i:i + step], os[i:i + step]
        xp.multiply(xc, xc, out=oc)
        oc *= -0.5
        xp.exp(oc, out=oc)
        oc *= _INV_SQRT_2PI                                # phi(x)
        oc *= xc
        oc += cs[i:i + step]                               # Phi(x) + x phi(x)
        oc *= ds[i:i + step]
    return dx
