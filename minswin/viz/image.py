"""A real picture to push through the network and to draw windows on.

`sample_image` returns the photograph of Grace Hopper that ships with matplotlib (its
`sample_data`, public domain, so it is there offline), centre-cropped and resized. Should a
matplotlib install lack it, a synthetic scene is drawn instead, deterministically.
"""
import os

import numpy as np

from ..checks import check_positive_int

# ImageNet channel statistics, the normalisation the released Swin models were trained with
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _sample_photo():
    import matplotlib
    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    if not os.path.exists(path):
        return None
    from PIL import Image
    with Image.open(path) as im:
        return im.convert("RGB").copy()


def synthetic_scene(size=224):
    """A deterministic 'landscape' (sky, sun, hills, a house), (size, size, 3) in [0, 1]."""
    n = check_positive_int("size", size)
    y, x = np.mgrid[0:n, 0:n] / n                          # (n, n) each, in [0, 1)
    img = np.empty((n, n, 3))
    img[...] = np.stack([0.35 + 0.4 * y, 0.55 + 0.3 * y, 0.95 - 0.2 * y], -1)   # sky
    sun = (x - 0.75) ** 2 + (y - 0.22) ** 2 < 0.012
    img[sun] = (1.0, 0.85, 0.3)
    hill = y > 0.62 + 0.08 * np.sin(7 * x) + 0.05 * np.cos(3 * x + 1)
    img[hill] = np.stack([0.2 + 0.2 * y, 0.55 - 0.2 * y, 0.2 + 0 * y], -1)[hill]
    wall = (np.abs(x - 0.3) < 0.1) & (y > 0.5) & (y < 0.72)
    img[wall] = (0.8, 0.75, 0.65)
    roof = (y <= 0.5) & (y > 0.38) & (np.abs(x - 0.3) < 0.14 - 1.2 * (0.5 - y) + 0.02)
    img[roof] = (0.6, 0.15, 0.1)
    return img.astype(np.float32)


def sample_image(size=224):
    """A real photograph, centre-cropped to a square and resized: (size, size, 3) float32 in
    [0, 1], channels last like minswin's input. Falls back to `synthetic_scene`."""
    n = check_positive_int("size", size)
    im = _sample_photo()
    if im is None:
        return synthetic_scene(n)
    from PIL import Image
    w, h = im.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    im = im.crop(box).resize((n, n), Image.BICUBIC)
    return np.asarray(im, dtype=np.float32) / 255.0        # (n, n, 3)


def normalise(img):
    """(…, 3) image in [0, 1] -> ImageNet-normalised network input, same shape, float32."""
    return ((np.asarray(img, dtype=np.float32) - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)
