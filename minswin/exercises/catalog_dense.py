"""The dense-task exercise: the backward of nearest-neighbour upsampling (tutorial 12's feature
pyramid climbs with it). Same form as catalog.py's: cases, a generic hint, typical mistakes.
"""
import numpy as np

from ..ops.upsample import upsample_backward, upsample_forward
from .base import Case, Exercise, Hint, Mistake, edited


def _rng():
    return np.random.default_rng(20240517)


def _up_cases():
    r = _rng()
    return [Case("2x2 map, factor 2", {"x": r.standard_normal((1, 2, 2, 3))},
                 {"factor": 2, "size": None}),
            Case("3x4 map, factor 3, cropped to 8x11", {"x": r.standard_normal((2, 3, 4, 5))},
                 {"factor": 3, "size": (8, 11)})]


_up_mean = edited(upsample_backward, (".sum(axis=(2, 4))", ".mean(axis=(2, 4))"))
_up_strided = edited(upsample_backward, ("full.reshape(B, h, f, w, f, C).sum(axis=(2, 4))",
                                         "full.reshape(B, f, h, f, w, C).sum(axis=(1, 3))"))


def _up_one_cell(dout, cache):
    """Not an edit: each coarse cell takes the gradient of one of its copies only."""
    B, h, w, C = cache.in_shape
    return dout[:, ::cache.factor, ::cache.factor][:, :h, :w]


UPSAMPLE = Exercise(
    name="upsample_backward",
    title="Nearest-neighbour upsampling backward",
    summary="dx of upsampling by f (each cell copied into an f x f block, then cropped)",
    forward=upsample_forward, reference=upsample_backward,
    grads=("dx",), make_cases=_up_cases,
    hints={"dx": Hint(
        ask="The forward copies each coarse cell into a block of the fine map and then crops "
            "it. How many cells of dout did x[b, i, j] reach, and what happened to the cells "
            "the crop dropped?",
        term="every copy passes on its cell's gradient, so x[b, i, j] collects all the "
             "gradients of its f x f block; cropped cells had no output, so theirs is zero",
        formula="pad dout with zeros back to (h*f, w*f), then "
                "dx = full.reshape(B, h, f, w, f, C).sum(axis=(2, 4))")},
    mistakes=(
        Mistake("mean over the block", _up_mean, Hint(
            ask="Each coarse cell was copied f*f times. Does each copy pass on all of its "
                "gradient, or a share of it?",
            term="the copies' gradients add up: the block's gradients are combined by a sum, "
                 "not averaged",
            formula="dx = full.reshape(B, h, f, w, f, C).sum(axis=(2, 4)), not .mean")),
        Mistake("blocks gathered with a stride", _up_strided, Hint(
            ask="Which cells of the fine map are the copies of one coarse cell: f neighbours "
                "in a row, or cells f apart?",
            term="the reshape must keep each f x f block together: the factor axis comes "
                 "after h (and after w), not before",
            formula="full.reshape(B, h, f, w, f, C).sum(axis=(2, 4))")),
        Mistake("one copy only", _up_one_cell, Hint(
            ask="The forward line repeats each cell f times down and across. Did every copy "
                "send its gradient back, or only one of them?",
            term="all f x f copies count, not the top-left one: collect the whole block",
            formula="pad dout to (h*f, w*f), then sum it over each f x f block")),
    ),
)

DENSE_EXERCISES = (UPSAMPLE,)
