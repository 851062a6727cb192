"""Gradient-check exercises: write a backward pass by hand, and let the grader judge it.

    minswin exercise list                              # what there is
    minswin exercise start layernorm_backward .        # copy the skeleton here
    minswin exercise check layernorm_backward ex_layernorm_backward.py

Each exercise is one of minswin's own `*_backward(dout, cache)` functions. The grader runs
minswin's forward to make the cache, calls your backward with it, compares every gradient with
central differences and with minswin's answer in float64, and prints a table and one hint.
"""
import os
import shutil

from .catalog import EXERCISES, Exercise, get_exercise
from .grader import GradeResult, check_file, grade, grade_file, load_function
from .solutions import SOLUTIONS, solution

SKELETONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "skeletons")


def skeleton_path(name):
    """Where the skeleton of exercise `name` lives inside the package."""
    return os.path.join(SKELETONS, get_exercise(name).skeleton)


def start(name, directory="."):
    """Copy the skeleton of `name` into `directory`; refuse to overwrite. Returns the path."""
    ex = get_exercise(name)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"directory: no such directory {directory!r}")
    from ..atomic import create_atomically
    dest = os.path.join(directory, ex.skeleton)
    try:                                   # whole, and only where nothing is (no race)
        create_atomically(dest, lambda tmp: shutil.copyfile(skeleton_path(name), tmp))
    except FileExistsError:
        raise FileExistsError(f"{dest} already exists; it is not overwritten (rename or delete "
                              "it to start again)") from None
    return dest


__all__ = ["EXERCISES", "Exercise", "GradeResult", "SOLUTIONS", "check_file", "get_exercise",
           "grade", "grade_file", "load_function", "skeleton_path", "solution", "start"]
