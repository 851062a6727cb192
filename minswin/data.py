"""Image data for training: the bundled 8x8 digits, your own images, splits and augmentation.

Symbols: N images, H, W their height and width, 3 colour channels (channels last, as the
model takes them), K classes.

Everything here runs on the host in NumPy (data sets are small; batches are moved to the
model's backend by the training loop). Randomness comes from NumPy Generators seeded by
numbers, never from global state, so a split or a batch can be rebuilt from its seed alone:

    split            default_rng(split_seed)              the same for every training seed
    epoch order      default_rng([seed, epoch])           shuffles the training set
    augmentation     default_rng([seed, epoch, batch])    the shifts of one batch

Because each batch's randomness is a pure function of (seed, epoch, batch), training can stop
at any batch and resume bit for bit without saving a data RNG state.

Sources:
  * "digits": scikit-learn's bundled 8x8 hand-written digits (1,797 images, 10 classes, grey
    levels 0..16). Needs the optional extra `minswin[data]`; no network access.
  * a folder with one sub-folder per class (images read with Pillow, converted to RGB);
  * an `.npz` file with `x` (N, H, W, 3) (uint8 0..255 or float 0..1) and integer `y` (N,),
    optionally `classes` (K,) strings.
"""
import functools
import os
from typing import NamedTuple

import numpy as np

from .checks import check_positive_int

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class Split(NamedTuple):
    x: np.ndarray      # (N, H, W, 3) float32, normalised
    y: np.ndarray      # (N,) int64 labels in [0, K)


class Dataset(NamedTuple):
    train: Split
    val: Split
    test: Split
    classes: tuple     # (K,) class names
    mean: np.ndarray   # (3,) per-channel mean of the raw training images (0..1 scale)
    std: np.ndarray    # (3,) per-channel std of the raw training images
    source: str        # "digits" or the path the images came from


# ---------------------------------------------------------------------------- resizing

def _interp_matrix(n_in, n_out):
    """(n_out, n_in) bilinear weights with half-pixel centres (align_corners=False).

    Output pixel i samples input coordinate (i + 0.5) * n_in / n_out - 0.5, clamped to the
    image, and mixes the two nearest input pixels linearly.
    """
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5          # (n_out,)
    pos = np.clip(pos, 0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)                            # (n_out,)
    hi = np.minimum(lo + 1, n_in - 1)
    w_hi = pos - lo
    A = np.zeros((n_out, n_in))                                     # (n_out, n_in)
    np.add.at(A, (np.arange(n_out), lo), 1.0 - w_hi)
    np.add.at(A, (np.arange(n_out), hi), w_hi)
    return A


def resize_images(x, size):
    """Bilinear resize of (N, H, W, C) images to (N, size, size, C), float32.

    Written as two small matrix products, A_h @ x @ A_w^T, since bilinear interpolation is
    separable. For upsampling this is `torch.nn.functional.interpolate(mode="bilinear",
    align_corners=False)`.
    """
    if x.ndim != 4:
        raise ValueError(f"x: expected (N, H, W, C) images, got shape {tuple(x.shape)}")
    N, H, W, C = x.shape
    if (H, W) == (size, size):
        return x.astype(np.float32)
    A_h = _interp_matrix(H, size)                                   # (size, H)
    A_w = _interp_matrix(W, size)                                   # (size, W)
    t = np.matmul(A_h, x.astype(np.float64).transpose(0, 3, 1, 2))   # (N, C, size, W)
    out = np.matmul(t, A_w.T)                                       # (N, C, size, size)
    return out.transpose(0, 2, 3, 1).astype(np.float32)             # (N, size, size, C)


# ---------------------------------------------------------------------------- sources

@functools.lru_cache(maxsize=1)
def _digits_cached():
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.images, d.target, d.target_names


def load_digits_raw():
    """scikit-learn's 8x8 digits as (1797, 8, 8, 3) float32 in [0, 1] and labels (1797,)."""
    try:
        images, target, names = _digits_cached()
    except ImportError:
        raise ImportError("data 'digits' needs scikit-learn (bundled, no download): "
                          "pip install 'minswin[data]'") from None
    x = (images / 16.0).astype(np.float32)                          # (N, 8, 8), 0..16 -> 0..1
    x = np.repeat(x[..., None], 3, axis=-1)                         # (N, 8, 8, 3) grey -> RGB
    return x, target.astype(np.int64), tuple(str(c) for c in names)


def load_image_folder(root, size):
    """A folder with one sub-folder per class -> (N, size, size, 3) in [0, 1], labels, classes.

    Classes are the sub-folder names in sorted order; images are converted to RGB and resized
    bilinearly with Pillow.
    """
    from PIL import Image
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data: expected a folder with one sub-folder per class, got "
                                f"{root!r} (not a folder)")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if len(classes) < 2:
        raise ValueError(f"data: expected at least 2 class sub-folders in {root!r}, found "
                         f"{len(classes)}")
    xs, ys = [], []
    for k, cls in enumerate(classes):
        folder = os.path.join(root, cls)
        for fname in sorted(os.listdir(folder)):
            if not fname.lower().endswith(IMAGE_SUFFIXES):
                continue
            if not os.path.isfile(os.path.join(folder, fname)):   # a FIFO would block
                raise ValueError(f"data: {os.path.join(folder, fname)!r} is not a regular "
                                 "file")
            with Image.open(os.path.join(folder, fname)) as im:
                im = im.convert("RGB").resize((size, size), Image.BILINEAR)
                xs.append(np.asarray(im, dtype=np.float32) / 255.0)  # (size, size, 3)
            ys.append(k)
    seen = set(ys)
    empty = [c for k, c in enumerate(classes) if k not in seen]
    if empty:
        raise ValueError(f"data: class folders without images ({', '.join(IMAGE_SUFFIXES)})"
                         f" in {root!r}: {empty[:5]}")
    return np.stack(xs), np.asarray(ys, dtype=np.int64), tuple(classes)


def load_npz_images(path, size):
    """An .npz with `x` (N, H, W, 3) and `y` (N,) -> images in [0, 1] resized, labels, classes."""
    import zipfile

    from .npz import BadNpz, read_npz
    if not os.path.exists(path):
        raise FileNotFoundError(f"data: no such file {path!r}")
    if not os.path.isfile(path):                           # a FIFO would block
        raise ValueError(f"data: {path!r} is not a regular file")
    try:                                                   # members checked before reading
        f = read_npz(path, text_ok=("classes",))
    except (BadNpz, zipfile.BadZipFile) as err:
        raise ValueError(f"data: {path!r} is not a readable .npz of images ({err})") from None
    if "x" not in f or "y" not in f:
        raise ValueError(f"data: expected arrays 'x' and 'y' in {path!r}, got {sorted(f)}")
    x, y = f["x"], f["y"]
    classes = tuple(str(c) for c in f["classes"]) if "classes" in f else None
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"data: expected x of shape (N, H, W, 3) in {path!r}, got "
                         f"{tuple(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0] or y.dtype.kind not in "iu":
        raise ValueError(f"data: expected integer y of shape ({x.shape[0]},) in {path!r}, "
                         f"got {y.dtype} {tuple(y.shape)}")
    if x.dtype.kind in "iu":
        x = x.astype(np.float32) / 255.0                            # uint8 0..255 -> 0..1
    elif x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise ValueError(f"data: x in {path!r} contains NaN or Inf")
        x = x.astype(np.float32)
    else:
        raise TypeError(f"data: expected uint8 or float images in {path!r}, got {x.dtype}")
    if y.min() < 0:
        raise ValueError(f"data: expected labels >= 0 in {path!r}, got min {y.min()}")
    K = int(y.max()) + 1
    if classes is None:
        classes = tuple(str(k) for k in range(K))
    elif len(classes) < K:
        raise ValueError(f"data: {path!r} has {len(classes)} class names but labels up to "
                         f"{K - 1}")
    return resize_images(x, size), y.astype(np.int64), classes


# ---------------------------------------------------------------------------- splits

def stratified_split(y, val_fraction, test_fraction, seed):
    """Indices (train, val, test): each class is shuffled and cut in the same proportions."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and
            val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction, test_fraction: expected fractions with a sum below 1,"
                         f" got {val_fraction}, {test_fraction}")
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        n_test = int(round(len(idx) * test_fraction))
        n_val = int(round(len(idx) * val_fraction))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test:n_test + n_val])
        parts[0].append(idx[n_test + n_val:])
    # sorted so the split does not depend on the order classes were visited in
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def normalise(x, mean, std):
    """(x - mean) / std per channel, float32."""
    return ((x - mean) / std).astype(np.float32)                    # (N, H, W, 3)


def load_dataset(source="digits", img_size=32, *, split_seed=0, val_fraction=0.1,
                 test_fraction=0.2, mean=None, std=None):
    """Load, resize, split (stratified, seeded) and normalise a data set.

    source: "digits", a folder of class sub-folders, or an `.npz` file. mean/std: the
    normalisation to use (e.g. from a checkpoint); by default they are measured on the
    training split only, so nothing about the test images leaks into training.
    """
    if not isinstance(img_size, (int, np.integer)) or img_size <= 0:
        raise ValueError(f"img_size: expected a positive integer, got {img_size!r}")
    if source == "digits":
        x, y, classes = load_digits_raw()
        x = resize_images(x, img_size)                              # (N, S, S, 3)
    elif isinstance(source, str) and source.endswith(".npz"):
        x, y, classes = load_npz_images(source, img_size)
    elif isinstance(source, str) and os.path.isdir(source):
        x, y, classes = load_image_folder(source, img_size)
    else:
        raise ValueError(f"data: expected 'digits', a folder of class sub-folders or an .npz "
                         f"file, got {source!r}")
    tr, va, te = stratified_split(y, val_fraction, test_fraction, split_seed)
    if (mean is None) != (std is None):
        raise ValueError(f"mean, std: expected both (from a checkpoint) or neither (measured "
                         f"on the training split), got mean={mean!r}, std={std!r}")
    if mean is None:
        mean = x[tr].mean(axis=(0, 1, 2)).astype(np.float32)       # (3,)
        std = x[tr].std(axis=(0, 1, 2)).astype(np.float32)         # (3,)
        std = np.maximum(std, 1e-6)                                 # constant channel: no /0
    mean, std = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
    for name, v in (("mean", mean), ("std", std)):
        if v.size != 3:
            raise ValueError(f"{name}: expected 3 values, one per RGB channel, got shape "
                             f"{tuple(v.shape)}")
    mean, std = mean.reshape(3), std.reshape(3)
    x = normalise(x, mean, std)
    return Dataset(Split(x[tr], y[tr]), Split(x[va], y[va]), Split(x[te], y[te]),
                   tuple(classes), mean, std, str(source))


# ---------------------------------------------------------------------------- batches

def epoch_order(n, seed, epoch):
    """The shuffled order of the n training images in `epoch` (a pure function of both)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_slices(n, batch_size):
    """[(start, stop), ...] covering range(n) in batches; the last may be short."""
    batch_size = check_positive_int("batch_size", batch_size)
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def random_shift(x, max_shift, rng, fill):
    """Shift each image by up to `max_shift` pixels in each direction, filling with `fill`.

    The same as padding by max_shift and taking a random crop of the original size (the
    "random crop with padding" of small-image training). x: (N, H, W, C); fill: (C,).
    """
    if max_shift <= 0:
        return x
    N, H, W, C = x.shape
    s = max_shift
    padded = np.empty((N, H + 2 * s, W + 2 * s, C), dtype=x.dtype)  # (N, H+2s, W+2s, C)
    padded[...] = fill
    padded[:, s:s + H, s:s + W] = x
    oy = rng.integers(0, 2 * s + 1, size=N)                         # (N,) crop corners
    ox = rng.integers(0, 2 * s + 1, size=N)
    rows = oy[:, None] + np.arange(H)                               # (N, H)
    cols = ox[:, None] + np.arange(W)                               # (N, W)
    return padded[np.arange(N)[:, None, None], rows[:, :, None], cols[:, None, :]]


def train_batch(split, order, start, stop, *, seed, epoch, batch, max_shift, fill):
    """The augmented images and labels of one training batch (host NumPy arrays)."""
    idx = order[start:stop]
    x = split.x[idx]                                                # (b, H, W, 3)
    if max_shift:
        x = random_shift(x, max_shift, np.random.default_rng([seed, epoch, batch]), fill)
    return x, split.y[idx]
