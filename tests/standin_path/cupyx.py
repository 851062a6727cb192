"""`import cupyx` with MINSWIN_CUPY_STANDIN=1: the stand-in's cupyx (see cupy.py here)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # tests/
import cupy_standin

cupy_standin.install()
