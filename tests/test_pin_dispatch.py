"""Pins on the dispatch between the tiers, in the quick loop (no CuPy stand-in run needed).

* `tier(arrays)` follows the backend of the arrays: plain on CuPy by default, fast on NumPy;
  the CuPy arrays here come from the strict stand-in's module, put in sys.modules for the
  one test only;
* the fast attention cuts the windows into blocks that are whole images or lie inside one:
  block sizes that are not a multiple of an image's scores (192, 96 elements) are rounded.
"""
import sys

import cupy_standin
import numpy as np
import pytest
from test_twins import TWINS, _assert_close, _ops, blocks  # noqa: F401  (blocks: a fixture)

import minswin
from minswin import backend, tiers
from minswin.fast.attention import window_blocks
from minswin.tiers import FAST, PLAIN, tier


@pytest.fixture
def standin_arrays(monkeypatch):
    """The stand-in CuPy as `cupy` for this test, and minswin's cached import of it reset."""
    for name in [m for m in sys.modules if m.split(".")[0] in ("cupy", "cupyx")]:
        monkeypatch.delitem(sys.modules, name)
    for name, mod in cupy_standin.build().items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_error", None)
    return sys.modules["cupy"]


def test_tier_follows_the_backend_of_the_arrays(standin_arrays, monkeypatch):
    cp = standin_arrays
    x_gpu, x_cpu = cp.asarray(np.ones((2, 3))), np.ones((2, 3))
    previous = minswin.use_fast(None)
    try:
        monkeypatch.delenv(tiers.ENV, raising=False)
        assert tier(x_gpu) is PLAIN                        # CuPy: plain by default
        assert tier(x_cpu) is FAST                         # NumPy: fast by default
        assert tier(None, x_gpu) is PLAIN                  # whichever argument is the array
        monkeypatch.setenv(tiers.ENV, "1")
        assert tier(x_gpu) is FAST                         # the environment over the default
        monkeypatch.setenv(tiers.ENV, "0")
        assert tier(x_cpu) is PLAIN
        minswin.use_fast(True)                             # the call over the environment
        assert tier(x_gpu) is FAST
    finally:
        minswin.use_fast(previous)


@pytest.mark.parametrize("nW,per_window,elements,want", [
    (4, 32, 192, 4),        # 6 windows fit: rounded down to one whole image of 4
    (4, 32, 96, 2),         # 3 fit: the largest divisor of 4 below, inside one image
    (4, 32, 320, 8),        # 10 fit: two whole images
    (6, 10, 50, 3),         # 5 fit: 3 divides 6
])
def test_attention_blocks_are_whole_images_or_inside_one(nW, per_window, elements, want,
                                                         monkeypatch):
    from minswin.fast import parallel
    monkeypatch.setattr(parallel, "BLOCK_ELEMENTS", elements)
    b = window_blocks(100 * nW, nW, per_window)
    assert b == want
    assert b % nW == 0 or nW % b == 0


@pytest.mark.parametrize("block", [192, 96])
@pytest.mark.parametrize("name", ["attention_sw_msa", "cosine_sw_msa", "attention_w_msa"])
def test_fast_attention_twin_with_blocks_that_do_not_divide_an_image(name, block, blocks):
    """5 images of 4 windows, 32 scores a window: 192 elements hold 6 windows (1.5 images),
    96 hold 3 (three quarters of one), so the block must be rounded to stay aligned."""
    blocks(block)
    op, make = TWINS[name]
    g = np.random.default_rng(11)
    inputs, static = make(lambda *shape: g.standard_normal(shape))
    (plain_fwd, plain_bwd), (fast_fwd, fast_bwd) = _ops(PLAIN, op), _ops(FAST, op)
    want, pc = plain_fwd(**inputs, **static)
    got, fc = fast_fwd(**inputs, **static)
    _assert_close([got], [want], np.float64, f"{name} forward")
    dout = g.standard_normal(want.shape)
    _assert_close(fast_bwd(dout, fc), plain_bwd(dout, pc), np.float64, f"{name} backward")
