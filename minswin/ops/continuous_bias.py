"""Continuous position bias (Swin V2): a small network turns each offset into a bias.

Symbols: M window side, N = M*M, nH heads, T = (2M-1)^2 offsets, D = 512 hidden units.

    coords = log-spaced (dr, dc) of every offset                 (2M-1, 2M-1, 2) a constant
    table = ReLU(coords @ W1.T + b1) @ W2.T                      (T, nH)  `cpb_mlp`
    bias[h, i, j] = 16 * sigmoid(table[index[i, j], h])          (nH, N, N)

v1 learns one number per offset and head, a ((2M-1)^2, nH) table tied to one window size.
V2 learns a function of the offset, so a model trained with window 8 can be evaluated with
window 16: the network is simply run on the new window's coordinates. The log spacing keeps
the new, larger offsets close to the range seen in training: with window 8, offsets 1..7
map to 0.45..1.0 (after dividing by M-1 = 7 and scaling by 8); a 16-window's 15 to 1.35.

The index and the gather are v1's (ops/masks.py, ops/relative_bias.py); so is the backward
of the gather, a scatter-add: each row of the table is read (M-|dr|)(M-|dc|) times.
"""
import math
from typing import NamedTuple

import numpy as np

from ..backend import get_xp
from ..checks import check_array, check_shape
from .linear import linear_backward, linear_forward
from .relative_bias import relative_bias_backward, relative_bias_forward

COORD_RANGE = 8.0     # official: relative_coords_table *= 8, "normalize to -8, 8"
BIAS_RANGE = 16.0     # official: 16 * torch.sigmoid(relative_position_bias)


def log_spaced(t):
    """sign(t) * log2(1 + |t|) / log2(8): 0 -> 0, +-1 -> +-0.33, +-8 -> +-1."""
    return np.sign(t) * np.log2(1.0 + np.abs(t)) / math.log2(COORD_RANGE)


def log_spaced_coordinates(window, pretrained_window=0):
    """The (2M-1, 2M-1, 2) input of `cpb_mlp`: entry [dr + M-1, dc + M-1] is (dr, dc), each
    divided by (pretrained_window - 1), or by (M - 1) when pretrained_window is 0, scaled by 8
    and log-spaced. float64, exact (the references build it in float32).

    pretrained_window: the window the model was trained with; keeping it fixed when the window
    grows keeps the old offsets at their old coordinates and puts the new ones further out.
    """
    M = _check_window("window", window)
    P = 0 if pretrained_window == 0 else _check_window("pretrained_window", pretrained_window)
    offsets = np.arange(-(M - 1), M, dtype=np.float64)     # (2M-1,) -(M-1) .. M-1
    dr, dc = np.meshgrid(offsets, offsets, indexing="ij")  # (2M-1, 2M-1) each
    # timm's max(., 1): a 1x1 window has the single offset 0, and 0 / 0 would be NaN
    span = max((P if P else M) - 1, 1)
    table = np.stack([dr, dc], axis=-1) / span             # (2M-1, 2M-1, 2) in [-1, 1] at P=M
    return log_spaced(table * COORD_RANGE)                 # (2M-1, 2M-1, 2) in [-1, 1]


def _check_window(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    return int(v)


def sigmoid(x):
    """1 / (1 + exp(-x)), written with tanh so that no exp overflows for large |x|."""
    xp = get_xp(x)
    return 0.5 * (1.0 + xp.tanh(0.5 * x))


class ContinuousBiasCache(NamedTuple):
    fc1: object        # LinearCache of coords -> hidden (keeps the coordinates)
    active: object     # (T, D) bool: hidden > 0, where ReLU lets the gradient through
    fc2: object        # LinearCache of relu(hidden) -> table (keeps relu(hidden))
    gather: object     # RelBiasCache: the index
    sig: object        # (nH, N, N) sigmoid of the gathered table
    coords_shape: tuple


def continuous_bias_forward(coords, fc1_weight, fc1_bias, fc2_weight, index):
    """Args: coords (2M-1, 2M-1, 2) from `log_spaced_coordinates`; fc1_weight (D, 2),
    fc1_bias (D,), fc2_weight (nH, D) (`cpb_mlp.0.weight`, `.0.bias`, `.2.weight`); index
    (N, N) the relative position index. Returns bias (nH, N, N) in (0, 16).
    Cache: the two linear caches, the ReLU's on/off pattern, the index and the sigmoid.
    """
    xp = get_xp(coords, fc1_weight, fc1_bias, fc2_weight, index)
    check_array("coords", coords, ndim=3, last=2)
    S = coords.shape[0]
    if coords.shape[1] != S or S % 2 == 0:
        raise ValueError(f"coords: expected (2M-1, 2M-1, 2), got {tuple(coords.shape)}")
    check_array("fc1_weight", fc1_weight, ndim=2, last=2, dtype=coords.dtype)
    D = fc1_weight.shape[0]
    check_shape("fc1_bias", fc1_bias, (D,), dtype=coords.dtype)
    check_array("fc2_weight", fc2_weight, ndim=2, last=D, dtype=coords.dtype)
    M = (S + 1) // 2
    if index.shape != (M * M, M * M):
        raise ValueError(f"index: expected ({M * M}, {M * M}) for a window of {M} (coords "
                         f"{tuple(coords.shape)}), got {tuple(index.shape)}")
    t = coords.reshape(S * S, 2)                           # (T, 2) one row per offset
    hidden, fc1_cache = linear_forward(t, fc1_weight, fc1_bias)   # (T, D)
    active = hidden > 0
    r = xp.where(active, hidden, 0)                        # (T, D) ReLU
    table, fc2_cache = linear_forward(r, fc2_weight)       # (T, nH) no bias
    g, gather_cache = relative_bias_forward(table, index)  # (nH, N, N)
    sig = sigmoid(g)                                       # (nH, N, N)
    bias = BIAS_RANGE * sig                                # (nH, N, N) in (0, 16)
    return bias, ContinuousBiasCache(fc1_cache, active, fc2_cache, gather_cache, sig,
                                     tuple(coords.shape))


def continuous_bias_backward(dbias, cache):
    """dbias (nH, N, N), summed over windows and batch.
    Returns (dcoords, dfc1_weight, dfc1_bias, dfc2_weight); the model ignores dcoords (the
    coordinates are constants) but the gradient check uses it.
    """
    xp = get_xp(dbias)
    # forward: bias = 16 * sigmoid(g)  ->  dg = dbias * 16 * s (1 - s)
    dg = dbias * BIAS_RANGE * cache.sig * (1.0 - cache.sig)    # (nH, N, N)
    # forward: g[h, i, j] = table[index[i, j], h]  ->  scatter-add into the table's rows
    dtable = relative_bias_backward(dg, cache.gather)      # (T, nH)
    # forward: table = r @ W2.T
    dr, dfc2_w, _ = linear_backward(dtable, cache.fc2)     # (T, D)
    # forward: r = relu(hidden)
    dhidden = xp.where(cache.active, dr, 0)                # (T, D)
    # forward: hidden = t @ W1.T + b1
    dt, dfc1_w, dfc1_b = linear_backward(dhidden, cache.fc1)   # (T, 2)
    return dt.reshape(cache.coords_shape), dfc1_w, dfc1_b, dfc2_w


def continuous_bias_slow(window, fc1_weight, fc1_bias, fc2_weight, pretrained_window=0):
    """The bias one pair of tokens at a time, from their positions: no table, no index.
    NumPy only: the obviously correct version to test against. Returns (nH, N, N)."""
    M = window
    P = pretrained_window or M
    nH, N = fc2_weight.shape[0], M * M
    bias = np.empty((nH, N, N))
    for i in range(N):
        for j in range(N):
            dr, dc = i // M - j // M, i % M - j % M        # query minus key, row-major tokens
            t = np.array([dr, dc], dtype=np.float64) / max(P - 1, 1) * COORD_RANGE
            t = np.sign(t) * np.log2(1 + np.abs(t)) / 3.0  # log2(8) = 3
            hidden = np.maximum(fc1_weight @ t + fc1_bias, 0)
            bias[:, i, j] = BIAS_RANGE / (1 + np.exp(-(fc2_weight @ hidden)))
    return bias
