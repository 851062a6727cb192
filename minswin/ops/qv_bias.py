"""Swin V2's qkv bias: learned for q and v, fixed at zero for k.

Symbols: C width.

    qkv_bias = concat[q_bias, 0, v_bias]                   (3C,)

The official code builds the middle third with `torch.zeros_like(v_bias)` on every call, timm
keeps it as a non-persistent `k_bias` buffer of zeros, torchvision zeroes the middle third of
an ordinary `qkv.bias`. All three mean the same: there is no k bias to learn. (With dot
products a k bias b adds q.b to every logit of a query alike, which the softmax ignores; V2
simply leaves it out.)
"""
from typing import NamedTuple

from ..backend import get_xp
from ..checks import check_array, check_shape


class QVBiasCache(NamedTuple):
    width: int         # C: where the thirds start


def qkv_bias_forward(q_bias, v_bias):
    """(C,), (C,) -> (3C,) = [q_bias, 0, v_bias]. Cache: C."""
    xp = get_xp(q_bias, v_bias)
    check_array("q_bias", q_bias, ndim=1)
    check_shape("v_bias", v_bias, q_bias.shape, dtype=q_bias.dtype)
    k_bias = xp.zeros_like(q_bias)                         # (C,) fixed, not a parameter
    return xp.concatenate([q_bias, k_bias, v_bias]), QVBiasCache(q_bias.shape[0])


def qkv_bias_backward(dqkv_bias, cache):
    """forward: qkv_bias = concat[q_bias, 0, v_bias]  ->  the outer thirds; the k third's
    gradient has nowhere to go (the zero is a constant). Returns (dq_bias, dv_bias)."""
    C = cache.width
    return dqkv_bias[:C].copy(), dqkv_bias[2 * C:].copy()
