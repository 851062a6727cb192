"""Input checks with messages that name the argument, what was expected and what came.

Ops call these at the top of a forward pass; they cost a few attribute reads.
"""
import re

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


# characters that steer a terminal instead of showing something: C0 controls but newline and
# tab (ESC starts the sequences that hide, move or recolour text; CR overwrites a line), DEL,
# the C1 controls, and the invisible Unicode format characters that reorder or hide text
_STEERING = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e"
                       "\u2060-\u2069\ufeff]")


def escape_controls(text):
    """`text` with every terminal-steering character shown as its escape (ESC as \\x1b), so
    what a file or a learner's code holds can neither hide nor rewrite the lines around it.
    Newlines and tabs stay."""
    return _STEERING.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def escape_name(name):
    """A key or file name for a message, on one line: newlines and every steering character
    escaped as in a Python string literal, without the quotes."""
    return repr(str(name))[1:-1]
