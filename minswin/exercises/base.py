"""What every exercise catalog is made of: the types of an exercise (cases, hints in three
levels, mistakes) and `edited`, the way a mistake is written as a small edit of the plain
backward. catalog.py (Swin v1), catalog_v2.py and catalog_dense.py all build on this module.
"""
import inspect
import textwrap
from dataclasses import dataclass
from typing import Callable, NamedTuple

from ..gradcheck import TOL_OP
from ..ops.relative_bias import relative_bias_backward


class Case(NamedTuple):
    label: str         # what is special about this case, shown in the table (display only)
    inputs: dict       # differentiable inputs, float64, in the order the backward returns them
    static: dict       # everything else the forward takes (mask, window, shift, ...)
    padded: bool = False   # the forward pads the map, so the backward must crop dx back


class Hint(NamedTuple):
    ask: str           # level 1: a question naming the path or forward line; no expression
    term: str          # level 2 (--hint 2): the term that is missing or wrong, in words
    formula: str       # level 3 (--reveal): the formula itself


class Mistake(NamedTuple):
    what: str                      # a short name of the mistake (used by the tests' messages)
    backward: Callable             # (dout, cache) -> grads, the wrong version
    hint: Hint


@dataclass(frozen=True)
class Exercise:
    name: str                      # the CLI name, e.g. "layernorm_backward"
    title: str
    summary: str                   # one line for `minswin exercise list`
    forward: Callable
    reference: Callable            # minswin's backward: the solution
    grads: tuple                   # names of the returned gradients, in order
    make_cases: Callable           # () -> list of Case
    hints: dict                    # gradient name -> generic Hint
    mistakes: tuple = ()
    tol: float = TOL_OP            # vs central differences (house table: one op)
    ref_tol: float = 1e-9          # round-off: vs minswin's backward (the same maths), and
                                   # how close an answer must be to a known mistake's
    shape_hint: str = ""           # added when dx has the wrong shape on a padded case

    @property
    def function(self):
        """The function the learner writes: minswin's own backward, under its own name."""
        return self.reference.__name__

    @property
    def skeleton(self):
        return f"ex_{self.name}.py"

    def cases(self):
        return self.make_cases()


def edited(function, *changes, **names):
    """A copy of the plain op `function` with its source changed: how a mistake is written.

    changes: (old, new) pairs of source text, each `old` found exactly once (so an edit can
    never silently stop applying when the op changes); names: what the copy calls instead of
    a name it uses (a mistaken helper, e.g. softmax_backward=...). The copy runs in the op's
    own module, seeing the same helpers.
    """
    source = textwrap.dedent(inspect.getsource(function))
    for old, new in changes:
        if source.count(old) != 1:
            raise ValueError(f"edited: {old!r} occurs {source.count(old)} times in "
                             f"{function.__name__}, expected once")
        source = source.replace(old, new)
    namespace = {**function.__globals__, **names}
    exec(compile(source, f"<{function.__name__}, edited>", "exec"), namespace)   # our own source
    return namespace[function.__name__]


# a mistake that two catalogs use: v1's relative bias, and V2's continuous bias through it
rel_assign = edited(relative_bias_backward, ("index_add(dtable, cache.index.reshape(-1), d)",
                                              "dtable[cache.index.reshape(-1)] += d"))
