"""Calling the learner's code, and nothing else: import their file (`load_function`), call
their backward on every case (`call_learner`), and the types that record what happened.

Both sides use it: the child process (child.py), which runs the learner's file and compares
nothing, and the grader (grader.py), which judges; neither imports the other for this.
"""
import importlib.util
import inspect
import itertools
import os
import traceback
from typing import NamedTuple

import numpy as np

from .catalog import get_exercise

_counter = itertools.count()


# ---------------------------------------------------------------------------- what happened

class LoadError(Exception):
    """The learner's file could not be imported or lacks the function."""

    def __init__(self, status, message, tb=""):
        super().__init__(message)
        self.status, self.message, self.tb = status, message, tb


class Returned(NamedTuple):
    value: object          # what the learner's backward returned on one case


class Raised(NamedTuple):
    type_name: str         # the learner's exception, as text (it never leaves the child)
    message: str
    traceback: str
    not_implemented: bool


# ---------------------------------------------------------------------------- loading

def _learner_traceback(err):
    """The traceback of `err` without the grader's own frames."""
    tb = traceback.TracebackException.from_exception(err)
    here = os.path.abspath(__file__)
    keep = [f for f in tb.stack if os.path.abspath(f.filename) != here
            and "importlib" not in f.filename]
    tb.stack = traceback.StackSummary.from_list(keep)
    return "".join(tb.format())


def _call_problem(fn):
    """Why `fn` cannot be called as fn(dout, cache), or "" when it can (or when Python cannot
    tell: some built-ins have no signature, and then the call itself reports)."""
    if not callable(fn):
        return f"an object of type {type(fn).__name__}, which cannot be called"
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return ""
    try:
        signature.bind(None, None)
    except TypeError:
        name = getattr(fn, "__name__", type(fn).__name__)
        return f"{name}{signature}, which cannot take the two arguments (dout, cache)"
    return ""


def load_function(path, exercise):
    """Import the learner's file by path and return its backward function (or a LoadError)."""
    ex = get_exercise(exercise)
    name = f"_minswin_exercise_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, os.fspath(path))
    if spec is None or spec.loader is None:
        raise LoadError("error", f"cannot import {path!r} as a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException as err:   # SyntaxError, ImportError, a stray sys.exit(), ...
        if isinstance(err, KeyboardInterrupt):
            raise
        raise LoadError("error", f"importing {path} raised {type(err).__name__}: {err}",
                        _learner_traceback(err)) from None
    for fname in (ex.function, ex.name):
        if hasattr(module, fname):
            fn = getattr(module, fname)
            problem = _call_problem(fn)
            if problem:
                raise LoadError("no function", f"{path}: expected `{fname}` to be a function "
                                f"called as {fname}(dout, cache), got {problem}")
            return fn
    found = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                   and getattr(v, "__module__", None) == name)
    raise LoadError("no function",
                    f"{path} defines no function `{ex.function}(dout, cache)`"
                    + (f" (it defines: {', '.join(found)})" if found else ""))


# ---------------------------------------------------------------------------- calling

def _fresh(case, ex):
    """Run minswin's forward on copies of the case's inputs: (out, cache)."""
    inputs = {k: v.copy() for k, v in case.inputs.items()}
    return ex.forward(**inputs, **case.static)


def _dout(ci, shape):
    """The upstream gradient of case `ci`, from a fixed seed: the child and the grader draw
    the same one, so the child never has to send it."""
    return np.random.default_rng(1000 + ci).standard_normal(shape)


def call_learner(ex, fn, cases):
    """Call fn(dout, cache) on every case of `ex`, stopping at the first exception: a list
    of Returned / Raised, one per case called. Nothing is compared here."""
    outcomes = []
    for ci, case in enumerate(cases):
        out_arr, cache = _fresh(case, ex)
        try:
            result = fn(_dout(ci, out_arr.shape), cache)
        except BaseException as err:
            if isinstance(err, KeyboardInterrupt):
                raise
            outcomes.append(Raised(type(err).__name__, str(err), _learner_traceback(err),
                                   isinstance(err, NotImplementedError)))
            break
        outcomes.append(Returned(result))
    return outcomes
