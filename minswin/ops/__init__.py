"""The plain tier: Swin's ops as the maths reads, forward and backward side by side.

One concept per file, shapes in comments, each backward step under the forward line it undoes.
They run unchanged on NumPy and CuPy. minswin.fast holds their fast twins for the CPU, with the
same names, arguments and caches; `minswin.use_fast` chooses which the layers run.
"""
