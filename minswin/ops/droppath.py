"""DropPath (stochastic depth) as timm's: drop a whole residual branch per sample.

    out = x * keep[b] / (1 - p),  keep[b] ~ Bernoulli(1 - p),   identity in eval or p == 0
"""
from typing import NamedTuple

from ..backend import get_xp, random_uniform


class DropPathCache(NamedTuple):
    scale: object      # (B, 1, ..., 1) keep[b] / (1 - p), or None for identity


def droppath_forward(x, p, training, rng):
    """x (B, ...). rng: the model's NumPy Generator; on a GPU it seeds a draw made there
    (`backend.random_uniform`), so no mask is copied from the host."""
    xp = get_xp(x)
    if not training or p == 0.0:
        return x, DropPathCache(None)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p: expected a drop probability in [0, 1), got {p}")
    keep = random_uniform(rng, x.shape[0], xp) >= p        # (B,) booleans, drawn on x's device
    scale = (keep / (1.0 - p)).astype(x.dtype)             # (B,)
    scale = scale.reshape((-1,) + (1,) * (x.ndim - 1))     # (B, 1, ..., 1)
    return x * scale, DropPathCache(scale)


def droppath_backward(dout, cache):
    """forward: out = x * scale  ->  dx = dout * scale"""
    return dout if cache.scale is None else dout * cache.scale
