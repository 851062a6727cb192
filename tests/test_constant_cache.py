"""The caches of masks and indices: bounded in bytes, least recently used out first, huge
arrays never kept, read-only on NumPy (CuPy: tests/test_gpu_paths.py)."""
import gc
import weakref

import numpy as np

import minswin
from minswin.ops import masks
from minswin.ops.masks import ConstantCache


def test_cache_is_bounded_and_drops_the_least_recently_used():
    c = ConstantCache(max_bytes=4 * 800)           # an entry may be up to 800 bytes
    made = []

    def make(i):
        made.append(i)
        return np.full(100, i, dtype=np.float64)   # 800 bytes
    for i in range(4):
        c.get(i, lambda i=i: make(i))
    c.get(0, lambda: make(0))                      # 0 is now the most recently used
    c.get(4, lambda: make(4))                      # over the budget: 1 goes, not 0
    assert made == [0, 1, 2, 3, 4] and len(c) == 4 and c.nbytes <= c.max_bytes
    c.get(0, lambda: make(0))
    c.get(1, lambda: make(1))
    assert made == [0, 1, 2, 3, 4, 1]


def test_an_array_too_large_for_the_cache_is_built_but_not_kept(monkeypatch):
    """relative_position_index(100) is 800 MB: it must not stay for the life of the process
    (shown here with a small budget instead of a large window)."""
    monkeypatch.setattr(masks, "_host_cache", ConstantCache(max_bytes=1 << 16))
    big = masks._relative_position_index(12)      # (144, 144) int64, 166 kB > 16 kB
    assert big.shape == (144, 144) and len(masks._host_cache) == 0
    ref = weakref.ref(big)
    del big
    gc.collect()
    assert ref() is None
    small = masks._relative_position_index(2)     # 128 bytes: kept and shared
    assert masks._relative_position_index(2) is small and not small.flags.writeable


def test_a_model_fills_the_caches_within_their_budget():
    minswin.create_model("swin_micro", num_classes=3).forward(
        np.zeros((1, 32, 32, 3), np.float32))
    for c in (masks._host_cache, masks._device_cache):
        assert 0 < c.nbytes <= c.max_bytes and len(c) > 0
    for a in masks._device_cache._items.values():
        if isinstance(a, np.ndarray):
            assert not a.flags.writeable
