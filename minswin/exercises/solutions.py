"""The reference solutions: minswin's own backward passes, by exercise name.

CI grades every exercise with these (and with each skeleton under
``MINSWIN_EXERCISE_SOLUTION=1``, where the skeleton delegates here), so that the grader itself
is known to be right. They are the plain tier, `minswin/ops/*.py` (never the fast twins in
minswin/fast/): reading them is reading the maths. Try the exercise first.
"""
import os

from .catalog import EXERCISES, get_exercise

SOLUTIONS = {name: ex.reference for name, ex in EXERCISES.items()}

ENV = "MINSWIN_EXERCISE_SOLUTION"


def solution(name):
    """minswin's backward for exercise `name`."""
    return get_exercise(name).reference


def use_solution():
    """True when ``MINSWIN_EXERCISE_SOLUTION=1``: skeletons then call the reference."""
    return os.environ.get(ENV, "") == "1"
