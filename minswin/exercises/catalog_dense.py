"""The dense-task exercise: the backward of nearest-neighbour upsampling (tutorial 12's feature
pyramid climbs with it). Same form as catalog.py's: cases, a generic hint, typical mistakes.
"""
import numpy as np

from ..ops.upsample import upsample_backward, upsample_forward
from .catalog import Case, Exercise, Mistake, edited


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
    hints={"dx": "x[b, i, j] was copied to every cell of the f x f block (i*f.., j*f..), so "
                 "its gradient is the SUM of dout over that block; cells the crop dropped "
                 "have gradient 0 (pad dout back to (h*f, w*f) first)"},
    mistakes=(
        Mistake("mean over the block", _up_mean,
                "the block's gradients are averaged: each copy passes on the whole gradient "
                "of its cell, so they add up (sum, not mean)"),
        Mistake("blocks gathered with a stride", _up_strided,
                "reshape (B, f, h, f, w, C) groups cells f apart, not the f x f blocks: "
                "reshape to (B, h, f, w, f, C) and sum over axes 2 and 4"),
        Mistake("one copy only", _up_one_cell,
                "dout[:, ::f, ::f] keeps the gradient of one copy per cell; every copy "
                "counts: sum dout over each f x f block"),
    ),
)

DENSE_EXERCISES = (UPSAMPLE,)
