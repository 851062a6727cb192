"""The fast tier: the twins of the plain ops in minswin.ops, for NumPy on a CPU.

Each function here has the name, signature and cache type of its plain twin in minswin.ops
and computes the same numbers (to round-off; tests/test_twins.py compares every pair). What
makes them faster changes no maths:
* cache-sized blocks of rows, shared among a few threads (parallel.py);
* row and column sums as BLAS products with a column of ones (rows.py);
* in place: each step writes over the previous one's buffer instead of a new array;
* for float32 GELU, an erf that costs one exp (gelu.py).
* each matrix product handed to the BLAS in the operand layout, and the blocks cut to the
  size, that were timed fastest on this machine: the best ones differ between processors
  (tuning.py; `minswin tune`, MINSWIN_TUNE=0 for the table's defaults).

Read minswin.ops first: that is the maths. `minswin.use_fast` chooses the tier the layers run
(minswin/tiers.py); by default this one on NumPy, the plain one on CuPy.
"""
from . import parallel, tuning

# the row blocks' size, when not set, is the one tuning times fastest (with the fast GELU,
# which runs on those blocks): installed here so that neither module imports the other
parallel.timed_block_elements = tuning.block_elements
