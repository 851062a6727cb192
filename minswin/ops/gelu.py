"""GELU with the exact error function, as nn.GELU() (approximate='none').

    out = x * Phi(x),  Phi(x) = (1 + erf(x / sqrt(2))) / 2
    d out / dx = Phi(x) + x * phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)

The tanh approximation moves Swin-T's logits by about 1e-4 (SPEC 8), so it is not used.
"""
import math
from typing import NamedTuple

from ..backend import erf, get_xp
from ..checks import check_array

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GeluCache(NamedTuple):
    x: object          # (...) the input
    cdf: object        # (...) Phi(x), reused by backward (erf is the expensive part)


def gelu_forward(x):
    """out = x * Phi(x). Cache: x and Phi(x)."""
    get_xp(x)
    check_array("x", x)
    cdf = 0.5 * (1.0 + erf(x * _INV_SQRT2))                # (...)
    return x * cdf, GeluCache(x, cdf)


def gelu_backward(dout, cache):
    """forward: out = x * Phi(x)  ->  dx = dout * (Phi(x) + x * phi(x))"""
    xp = get_xp(dout, cache.x)
    x, cdf = cache
    pdf = xp.exp(-0.5 * x * x) * _INV_SQRT_2PI             # (...)
    return dout * (cdf + x * pdf)
