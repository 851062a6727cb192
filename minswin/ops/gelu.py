"""GELU with the exact error function, as nn.GELU() (approximate='none').

    out = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt(2))) / 2          (the normal CDF)
    d out / dx = Phi(x) + x * phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)

The tanh approximation is close to this GELU but not equal, so it would move the logits away
from every reference (docs/semantics.md, section 4); it is not used.
erf is the library's own, exact to round-off (scipy.special / cupyx.scipy.special).
"""
import math
from typing import NamedTuple

from ..backend import erf, get_xp
from ..checks import check_array


class GeluCache(NamedTuple):
    x: object          # (...) the input
    cdf: object        # (...) Phi(x), reused by backward (erf is the expensive part)


def normal_cdf(x):
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2, with the library's exact erf."""
    return 0.5 * (1.0 + erf(x / math.sqrt(2.0)))


def normal_pdf(x):
    """phi(x) = exp(-x^2 / 2) / sqrt(2 pi), the normal density."""
    xp = get_xp(x)
    return xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def gelu_forward(x):
    """out = x * Phi(x). Cache: x and Phi(x)."""
    get_xp(x)
    check_array("x", x)
    cdf = normal_cdf(x)                                    # (...)
    return x * cdf, GeluCache(x, cdf)


def gelu_derivative(cache):
    """d out / dx = Phi(x) + x * phi(x): the product rule on out = x * Phi(x)."""
    return cache.cdf + cache.x * normal_pdf(cache.x)


def gelu_backward(dout, cache):
    """forward: out = x * Phi(x), elementwise  ->  dx = dout * (Phi(x) + x * phi(x))"""
    get_xp(dout, cache.x)
    return dout * gelu_derivative(cache)
