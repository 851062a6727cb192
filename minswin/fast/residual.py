"""Fast twin of `minswin.ops.residual`: the add on row blocks on every core."""
from ..backend import get_xp
from .parallel import elementwise


def add(x, y):
    """Fast twin of `ops.residual.add`: NumPy runs one ufunc on one core; this shares it."""
    return elementwise(get_xp(x, y).add, x, y)
