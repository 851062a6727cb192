"""Input checks with messages that name the argument, what was expected and what came.

Ops call these at the top of a forward pass; they cost a few attribute reads.
"""
import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_array(name, x, ndim=None, last=None, dtype=None):
    """Check that ``x`` is a float32/float64 array of rank ``ndim`` with last axis ``last``.

    dtype, when given, is the dtype ``x`` must have (e.g. the dtype of the other operands).
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{name}: expected an array, got {type(x).__name__}")
    if np.dtype(x.dtype) not in FLOAT_DTYPES:
        raise TypeError(
            f"{name}: expected dtype float32 or float64, got {x.dtype}"
            + (" (convert images with x.astype(np.float32) / 255)" if x.dtype.kind in "iub"
               else "")
        )
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {np.dtype(dtype)} like the other operands, "
                        f"got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {tuple(x.shape)} "
                         f"({x.ndim}-d)")
    if last is not None and x.shape[-1] != last:
        raise ValueError(f"{name}: expected last axis of size {last}, got shape "
                         f"{tuple(x.shape)}")
    return x


def check_shape(name, x, shape, dtype=None):
    """Check a parameter's exact shape (and dtype kind)."""
    check_array(name, x, dtype=dtype)
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(x.shape)}")
    return x


def check_positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    return int(v)


def check_seed(name, v):
    """A seed for np.random.default_rng: an integer >= 0."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{name}: expected an integer >= 0, got {v!r}")
    return int(v)
