"""`import cupy` in a subprocess of the tests run with MINSWIN_CUPY_STANDIN=1: the stand-in.

conftest.py puts this folder first on PYTHONPATH, so a tutorial or CLI run in a subprocess
imports tests/cupy_standin.py instead of CuPy (importing cupyx does the same).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # tests/
import cupy_standin

cupy_standin.install()      # replaces this module in sys.modules with the stand-in's cupy
