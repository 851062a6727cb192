"""The reference solutions: minswin's own backward passes, by exercise name.

CI grades every exercise with these (and a solved copy of each skeleton), so that the grader
itself is known to be right. They are the plain tier, `minswin/ops/*.py` (never the fast twins in
minswin/fast/): reading them is reading the maths. Try the exercise first.
"""
from .catalog import EXERCISES, get_exercise

SOLUTIONS = {name: ex.reference for name, ex in EXERCISES.items()}


def solution(name):
    """minswin's backward for exercise `name`."""
    return get_exercise(name).reference
