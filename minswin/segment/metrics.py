"""Per-pixel cross-entropy and intersection over union.

Symbols: B batch, H, W pixels, K classes; logits (B, H, W, K), labels (B, H, W).

The loss is classification's cross-entropy with every pixel a row: the mean over B*H*W rows.
IoU of class k over a set of images: |pred = k and true = k| / |pred = k or true = k|, from the
confusion matrix; mean IoU averages it over the classes that occur (in truth or prediction).
"""
import numpy as np

from ..backend import to_numpy
from ..loss import cross_entropy_backward, cross_entropy_forward


def pixel_cross_entropy(logits, labels, check_values=True):
    """(loss, cache): the mean cross-entropy of every pixel."""
    K = logits.shape[-1]
    return cross_entropy_forward(logits.reshape(-1, K), labels.reshape(-1),
                                 check_values=check_values)


def pixel_cross_entropy_backward(dout, cache, shape):
    """dlogits (B, H, W, K) = (p - onehot) / (B*H*W), reshaped back to `shape`."""
    return cross_entropy_backward(dout, cache).reshape(shape)


def confusion(pred, true, K):
    """(K, K) counts, rows the truth, columns the prediction (host arrays of labels)."""
    pred, true = to_numpy(pred).ravel(), to_numpy(true).ravel()
    return np.bincount(true * K + pred, minlength=K * K).reshape(K, K)


def iou_per_class(cm):
    """(K,) IoU from a confusion matrix; NaN for a class absent from truth and prediction."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(cm):
    return float(np.nanmean(iou_per_class(cm)))
