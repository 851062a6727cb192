"""Digit canvases: a dense task made from the 8x8 digits minswin already has.

Each canvas is an S x S black image with 1 to `max_digits` hand-written digits pasted at
random places (never overlapping), each digit resized from 8x8 to `digit` x `digit` pixels
(16, the size swin_digits was trained at, so its weights can start the backbone).
Each pixel is labelled with what is drawn there: 0 for background, 1 + d for a stroke of the
digit d (a pixel of the digit brighter than `threshold`). Segmenting it asks for two things at
once: *where* the strokes are (fine detail, a few pixels) and *which* digit they belong to
(the shape of the whole digit): the two ends of Swin's feature pyramid.

Training canvases use the training split's digits, test canvases the test split's, so the
held-out canvases show digits the model has never seen (digits split as in data.py).
"""
from typing import NamedTuple

import numpy as np

from ..data import load_digits_raw, normalise, resize_images, stratified_split

CLASSES = ("background",) + tuple(f"digit {d}" for d in range(10))   # K = 11


class Canvases(NamedTuple):
    x: np.ndarray      # (N, S, S, 3) float32, normalised
    y: np.ndarray      # (N, S, S) int64 in [0, K)


class CanvasData(NamedTuple):
    train: Canvases
    val: Canvases
    test: Canvases
    classes: tuple     # (K,) names
    mean: np.ndarray   # (3,) of the raw training canvases
    std: np.ndarray    # (3,)


def make_canvases(digits, labels, n, *, size=32, digit=16, max_digits=3, threshold=0.3,
                  seed=0):
    """n canvases from `digits` (M, 8, 8) in [0, 1] and `labels` (M,).

    Returns raw images (n, S, S) in [0, 1] and labels (n, S, S). Placement by rejection: a
    digit's box may not overlap another's (boxes are `digit` pixels wide)."""
    rng = np.random.default_rng(seed)
    big = resize_images(digits[..., None], digit)[..., 0]          # (M, d, d)
    big = np.clip(big, 0.0, 1.0)
    images = np.zeros((n, size, size), np.float32)
    masks = np.zeros((n, size, size), np.int64)
    for i in range(n):
        boxes = []
        for _ in range(int(rng.integers(1, max_digits + 1))):
            for _try in range(20):
                r, c = rng.integers(0, size - digit + 1, size=2)
                if all(abs(r - r2) >= digit or abs(c - c2) >= digit for r2, c2 in boxes):
                    break
            else:
                continue                                           # no room: fewer digits
            boxes.append((r, c))
            k = int(rng.integers(len(labels)))
            patch = big[k]                                         # (d, d)
            images[i, r:r + digit, c:c + digit] = patch
            masks[i, r:r + digit, c:c + digit][patch > threshold] = 1 + labels[k]
    return images, masks


def load_canvases(n_train=2000, n_val=200, n_test=300, *, size=32, digit=16, max_digits=3,
                  split_seed=0, seed=0, mean=None, std=None):
    """Train / val / test canvases (val from the training digits, test from the unseen test
    digits), normalised by the training canvases' statistics (or the given mean/std)."""
    x, y, _ = load_digits_raw()                                    # (1797, 8, 8, 3), (1797,)
    grey = x[..., 0]
    train_idx, _, test_idx = stratified_split(y, 0.0, 0.2, split_seed)
    kw = dict(size=size, digit=digit, max_digits=max_digits)
    parts = {}
    for name, idx, n, s in (("train", train_idx, n_train, seed),
                            ("val", train_idx, n_val, seed + 1_000_003),
                            ("test", test_idx, n_test, 7_000_001 + split_seed)):
        parts[name] = make_canvases(grey[idx], y[idx], n, seed=s, **kw)
    if mean is None:
        m = float(parts["train"][0].mean())
        s = float(parts["train"][0].std())
        mean, std = np.full(3, m, np.float32), np.full(3, s, np.float32)
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)

    def split(name):
        img, lab = parts[name]
        rgb = np.repeat(img[..., None], 3, axis=-1)               # (n, S, S, 3) grey -> RGB
        return Canvases(normalise(rgb, mean, std), lab)
    return CanvasData(split("train"), split("val"), split("test"), CLASSES, mean, std)
