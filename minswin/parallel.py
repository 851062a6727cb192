"""Moved to minswin.fast.parallel (the fast tier's row blocks); this name stays for the thread
settings: `minswin.parallel.set_num_threads(n)` and `num_threads()` keep working."""
from .fast.parallel import num_threads, set_num_threads  # noqa: F401
