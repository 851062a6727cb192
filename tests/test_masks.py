"""The constants: relative position index and shift mask, against the explainer and SPEC."""
import numpy as np
import pytest

import minswin
from minswin.ops.masks import (
    MASK_VALUE,
    attention_mask_slow,
    forward_window_shift,
    official_window_shift,
    relative_coordinates,
    window_labels,
)


def test_relative_index_2x2_walkthrough():
    np.testing.assert_array_equal(minswin.relative_position_index(2),
                                  [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]])


def test_relative_coordinates_are_query_minus_key():
    rel = relative_coordinates(2)
    # token 0 = (0, 0), token 1 = (0, 1): query 0 minus key 1 is (0, -1)
    assert tuple(rel[:, 0, 1]) == (0, -1)
    assert tuple(rel[:, 3, 0]) == (1, 1)


def test_relative_index_M7_facts():
    idx = minswin.relative_position_index(7)
    assert idx.shape == (49, 49)
    assert idx.min() == 0 and idx.max() == 168
    assert set(np.diag(idx)) == {84}
    assert idx[0, 48] == 0 and idx[48, 0] == 168
    # each table row k = (dr+6)*13 + (dc+6) is used (7-|dr|)(7-|dc|) times
    counts = np.bincount(idx.ravel(), minlength=169).reshape(13, 13)
    d = np.arange(-6, 7)
    np.testing.assert_array_equal(counts, np.outer(7 - abs(d), 7 - abs(d)))


def test_multiplier_2M_minus_2_would_collide():
    rel = relative_coordinates(3) + 2
    good = rel[0] * 5 + rel[1]
    bad = rel[0] * 4 + rel[1]
    offsets = {tuple(o) for o in rel.reshape(2, -1).T}
    assert len(np.unique(good)) == len(offsets) == 25
    assert len(np.unique(bad)) < len(offsets)


def test_region_labels_4x4_example():
    np.testing.assert_array_equal(minswin.region_labels(4, 4, 2, 1),
                                  [[0, 0, 1, 2], [0, 0, 1, 2], [3, 3, 4, 5], [6, 6, 7, 8]])
    np.testing.assert_array_equal(window_labels(4, 4, 2, 1),
                                  [[0, 0, 0, 0], [1, 2, 1, 2], [3, 3, 6, 6], [4, 5, 7, 8]])


def test_mask_56_M7_which_windows_are_masked():
    mask = minswin.attention_mask(56, 56, 7, 3)
    assert mask.shape == (64, 49, 49)
    assert set(np.unique(mask)) == {0.0, MASK_VALUE}
    masked = np.nonzero((mask != 0).any(axis=(1, 2)))[0]
    expected = sorted(set(range(7, 64, 8)) | set(range(56, 64)))
    assert list(masked) == expected and len(masked) == 15
    assert set(window_labels(56, 56, 7, 3)[63]) == {4, 5, 7, 8}
    np.testing.assert_array_equal(mask, mask.transpose(0, 2, 1))


def test_4x4_window_example_from_explainer():
    """An 8x8 map, 4x4 windows, shift 2: the bottom-right window holds 4 regions."""
    mask = minswin.attention_mask(8, 8, 4, 2)
    m = mask[3] != 0                                   # (16, 16)
    lab = window_labels(8, 8, 4, 2)[3]
    assert len(set(lab)) == 4
    # token 0 may attend to exactly the tokens of its own region (a 2x2 block of 4)
    assert (~m[0]).sum() == 4
    # window 1 holds regions 1 and 2 (region_labels): 8 tokens each
    lab1 = window_labels(8, 8, 4, 2)[1]
    assert sorted(np.bincount(lab1)[np.bincount(lab1) > 0]) == [8, 8]


def spec_mask(H, W, M, sh, sw):
    """SPEC 4 step by step, sharing no code with minswin: label the shifted frame with the
    official slices (h outer, w inner, cnt = 0..8), read each window's labels one token at a
    time, then compare every pair. A zero shift on an axis is written as the official/tv loop
    has it: slice(-M, -0) is empty and slice(-0, None) relabels the whole axis."""
    img = np.zeros((H, W), int)
    cnt = 0
    for hs in (slice(0, -M), slice(-M, -sh), slice(-sh, None)):
        for ws in (slice(0, -M), slice(-M, -sw), slice(-sw, None)):
            img[hs, ws] = cnt
            cnt += 1
    nW, N = (H // M) * (W // M), M * M
    mask = np.zeros((nW, N, N))
    for k in range(nW):
        wr, wc = divmod(k, W // M)                         # windows in row-major order
        lab = [img[wr * M + n // M, wc * M + n % M] for n in range(N)]
        for i in range(N):
            for j in range(N):
                mask[k, i, j] = 0.0 if lab[i] == lab[j] else -100.0
    return mask


@pytest.mark.parametrize("H,W,M,S", [
    (4, 4, 2, (1, 1)), (14, 14, 7, (3, 3)), (12, 8, 4, (2, 2)), (6, 9, 3, (1, 1)),
    (8, 8, 4, (2, 2)), (14, 21, 7, (3, 3)), (56, 56, 7, (3, 3)),
    (8, 12, 4, (0, 2)), (12, 4, 4, (2, 0))])                # one axis unshifted (tv)
def test_mask_equals_spec_construction(H, W, M, S):
    """The fast mask and minswin's own literal loops (attention_mask_slow) against spec_mask."""
    expected = spec_mask(H, W, M, *S)
    np.testing.assert_array_equal(minswin.attention_mask(H, W, M, S), expected)
    np.testing.assert_array_equal(attention_mask_slow(H, W, M, S), expected)


@pytest.mark.parametrize("H,M", [(56, 7), (28, 7), (14, 7), (96, 12), (64, 8)])
def test_two_bands_per_axis_give_the_same_mask(H, M):
    """microsoft/Swin-Transformer#174, #194: with maps divisible by M, 4 regions would do."""
    s = M // 2
    lab = np.zeros((H, H), int)
    for i, hs in enumerate((slice(0, -s), slice(-s, None))):
        for j, ws in enumerate((slice(0, -s), slice(-s, None))):
            lab[hs, ws] = 2 * i + j
    win = minswin.window_partition(lab[None, :, :, None].astype(float), M).reshape(-1, M * M)
    mask4 = np.where(win[:, :, None] != win[:, None, :], MASK_VALUE, 0.0)
    np.testing.assert_array_equal(mask4, minswin.attention_mask(H, H, M, s))


def test_mask_and_index_are_cached_and_read_only():
    from minswin.ops.masks import cached_attention_mask, cached_relative_position_index
    a = cached_attention_mask(8, 8, 4, 2, np, np.float32)
    assert a is cached_attention_mask(8, 8, 4, 2, np, np.float32)
    assert a.dtype == np.float32
    assert cached_relative_position_index(4, np) is cached_relative_position_index(4, np)
    assert cached_attention_mask(8, 8, 4, 0, np) is None
    assert not a.flags.writeable and not cached_relative_position_index(4, np).flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        a += 1
    # public copies can be modified without corrupting the cache
    m = minswin.attention_mask(4, 4, 2, 1)
    m[:] = 7
    assert minswin.attention_mask(4, 4, 2, 1).max() == 0.0


def test_window_shift_rules():
    assert official_window_shift((7, 7), 7, 3) == (7, 0)       # Swin-T stage 4
    assert official_window_shift((12, 12), 12, 6) == (12, 0)   # Swin-B/384 stage 4
    assert official_window_shift((4, 4), 7, 3) == (4, 0)       # shrinks
    assert official_window_shift((14, 14), 7, 3) == (7, 3)
    assert forward_window_shift(50, 65, 7, 3) == ((56, 70), (3, 3))
    assert forward_window_shift(7, 20, 7, 3) == ((7, 21), (0, 3))   # per axis


@pytest.mark.parametrize("args,msg", [
    ((10, 14, 7, 3), r"H: expected a multiple of window=7 \(pad the map to 14 first\), got 10"),
    ((14, 14, 7, 7), r"shift: expected 0 <= shift < window=7, got 7"),
    ((14, 14, 7, -1), r"shift: expected 0 <= shift < window=7, got -1"),
    ((14, 14, 0, 0), r"window: expected a positive integer, got 0"),
    ((-4, 14, 7, 3), r"H: expected a positive integer, got -4"),
])
def test_mask_bad_arguments(args, msg):
    with pytest.raises(ValueError, match=msg):
        minswin.attention_mask(*args)
