"""Softmax cross-entropy with label smoothing, forward and backward.

Symbols: B batch, K classes, z logits (B, K), y integer labels (B,), eps the smoothing.

    p = softmax(z)                       log p computed as z - max z - log sum exp(z - max z)
    q = (1 - eps) onehot(y) + eps / K    the smoothed target distribution
    loss = -(1/B) sum_b sum_k q_bk log p_bk

This is `torch.nn.CrossEntropyLoss(label_smoothing=eps)` with the default mean reduction
(and timm's `LabelSmoothingCrossEntropy`, which the official recipe uses with eps = 0.1).
The gradient has the famous short form dz = (p - q) / B, because sum_k q_bk = 1.
"""
from typing import NamedTuple

from .backend import get_xp
from .checks import check_array


class CrossEntropyCache(NamedTuple):
    p: object          # (B, K) softmax probabilities: the gradient needs nothing else
    q: object          # (B, K) smoothed one-hot targets


def check_labels(labels, num_classes):
    """Check integer labels (B,): dtype, rank and values in [0, K).

    The training loop checks each data split once this way, on the host, so that the loss of
    every step can skip the values (`check_values=False`): on a GPU, looking at them is a
    device->host sync.
    """
    B = labels.shape[0] if getattr(labels, "ndim", None) == 1 else None
    _check_labels(labels, B, num_classes)


def _check_labels(labels, B, K, check_values=True):
    xp = get_xp(labels)
    if not hasattr(labels, "dtype") or labels.dtype.kind not in "iu":
        raise TypeError(f"labels: expected an integer array, got "
                        f"{getattr(labels, 'dtype', type(labels).__name__)}")
    if tuple(labels.shape) != (B,):
        want = "a 1-d array" if B is None else f"shape ({B},) to match logits"
        raise ValueError(f"labels: expected {want}, got shape {tuple(labels.shape)}")
    if check_values and B and bool(xp.any((labels < 0) | (labels >= K))):   # a sync on a GPU
        raise ValueError(f"labels: expected class indices in [0, {K}), got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")


def one_hot(labels, K, dtype):
    """(B,) integer labels -> (B, K) rows with a single 1."""
    xp = get_xp(labels)
    out = xp.zeros((labels.shape[0], K), dtype=dtype)     # (B, K)
    out[xp.arange(labels.shape[0]), labels] = 1
    return out


def log_softmax(z):
    """log p = z - max z - log(sum exp(z - max z)) over the last axis (no overflow)."""
    xp = get_xp(z)
    s = z - z.max(axis=-1, keepdims=True)                  # (B, K), max entry 0
    return s - xp.log(xp.exp(s).sum(axis=-1, keepdims=True))  # (B, K)


def cross_entropy_forward(logits, labels, label_smoothing=0.0, check_values=True):
    """Mean softmax cross-entropy of `logits` (B, K) against integer `labels` (B,).

    Returns (loss, cache): loss is a 0-d array of the logits' dtype, the cache holds the
    probabilities p and the smoothed targets q. check_values=False skips the check that each
    label is in [0, K) (a device->host sync on a GPU), for labels `check_labels` has passed.
    """
    xp = get_xp(logits, labels)
    check_array("logits", logits, ndim=2)
    B, K = logits.shape
    if B == 0:
        raise ValueError("logits: expected at least one row, got shape (0, K)")
    _check_labels(labels, B, K, check_values)
    eps = float(label_smoothing)
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"label_smoothing: expected a value in [0, 1), got {label_smoothing!r}")
    logp = log_softmax(logits)                             # (B, K)
    q = one_hot(labels, K, logits.dtype)                   # (B, K)
    if eps:
        q = (1.0 - eps) * q + eps / K                      # (B, K), rows sum to 1
    loss = -(q * logp).sum() / B                           # ()
    return xp.asarray(loss, dtype=logits.dtype), CrossEntropyCache(xp.exp(logp), q)


def cross_entropy_backward(dout, cache):
    """Returns dlogits (B, K) for an upstream gradient `dout` on the scalar loss.

    forward: loss = -(1/B) sum q log p,  log p = z - logsumexp(z)
      d loss / d z_bk = -(1/B) (q_bk - p_bk sum_j q_bj) = (p_bk - q_bk) / B
    """
    xp = get_xp(cache.p)
    B = cache.p.shape[0]
    if hasattr(dout, "dtype"):                             # an array: in p's dtype (NEP 50)
        dout = xp.asarray(dout, dtype=cache.p.dtype)
    else:                                                  # a Python number stays one: on a
        dout = float(dout)                                 # GPU a kernel argument, no copy
    return (cache.p - cache.q) * (dout / B)               # (B, K)


def accuracy_count(logits, labels):
    """How many rows have their largest logit at the label (a 0-d integer array)."""
    get_xp(logits, labels)
    return (logits.argmax(axis=-1) == labels).sum()
