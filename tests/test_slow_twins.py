"""Each op against a slow version that is obviously correct (loops, literal definitions).

Attention on both tiers is held to the plain tier's attention over sets of tokens chosen
from the meaning of windows and shifts alone (a whole map; the regions of a shifted window).
"""
import numpy as np
import pytest

import minswin
from minswin.ops.attention import window_attention_forward
from minswin.ops.masks import relative_position_index
from minswin.ops.patch_embed import patch_embed_forward
from minswin.ops.patch_merging import merge_2x2, patch_merging_forward
from minswin.ops.relative_bias import relative_bias_forward
from minswin.ops.window import cyclic_shift, to_windows_forward, window_partition
from minswin.tiers import FAST, PLAIN


def attention_weights(rng, C, nH):
    return dict(qkv_weight=rng.standard_normal((3 * C, C)), qkv_bias=rng.standard_normal(3 * C),
                proj_weight=rng.standard_normal((C, C)), proj_bias=rng.standard_normal(C))


def attention_over(tokens, bias, w, nH):
    """The plain tier's attention over one set of tokens (T, C) with a (nH, T, T) bias."""
    out, _ = window_attention_forward(tokens[None], **w, bias=bias, num_heads=nH)
    return out[0]                                          # (T, C)


TIERS = pytest.mark.parametrize("tier", [PLAIN, FAST], ids=["plain", "fast"])


def literal_bias(table, M):
    """(nH, N, N): token (r, c) vs (r', c') of an M x M window reads the table row of
    (r - r', c - c'), the rows ordered by (dr, dc) from (-(M-1), -(M-1)), one pair at a time."""
    N = M * M
    bias = np.zeros((table.shape[1], N, N))
    for i in range(N):
        for j in range(N):
            dr, dc = i // M - j // M, i % M - j % M
            bias[:, i, j] = table[(dr + M - 1) * (2 * M - 1) + (dc + M - 1)]
    return bias


@TIERS
def test_one_window_is_global_attention_plus_bias(rng, tier):
    """A window covering the whole map = plain multi-head attention over all tokens + bias."""
    M, C, nH = 4, 8, 2
    x = rng.standard_normal((1, M * M, C))
    w = attention_weights(rng, C, nH)
    table = rng.standard_normal(((2 * M - 1) ** 2, nH))
    bias, _ = relative_bias_forward(table, relative_position_index(M))
    fast, _ = tier.window_attention_forward(x, **w, bias=bias, num_heads=nH)
    np.testing.assert_allclose(fast[0], attention_over(x[0], literal_bias(table, M), w, nH),
                               rtol=1e-12, atol=1e-12)


def rolled_windows(H, W, M, sh, sw):
    """For window k of the rolled map (row-major) and its token n = r*M + c: where that token
    came from in the image, and which region it belongs to, from the meaning of the shift alone
    (no code under test). After roll(-S), position (r, c) holds image pixel ((r + sh) % H,
    (c + sw) % W); the pixel wrapped around the bottom edge if r + sh >= H, around the right
    edge if c + sw >= W. Tokens with different wrap flags were not neighbours in the image, so
    a window's regions are its groups of equal (wrapped row, wrapped col).

    Returns [(sources, regions)] per window: sources a list of N (row, col) image positions,
    regions a list of N (bool, bool) flags.
    """
    windows = []
    for wr in range(H // M):
        for wc in range(W // M):
            sources, regions = [], []
            for n in range(M * M):
                r, c = wr * M + n // M, wc * M + n % M
                sources.append(((r + sh) % H, (c + sw) % W))
                regions.append((r + sh >= H, c + sw >= W))
            windows.append((sources, regions))
    return windows


@pytest.mark.parametrize("H,W,M,S", [(4, 4, 2, (1, 1)), (8, 12, 4, (2, 2)),
                                     (14, 14, 7, (3, 3)), (6, 9, 3, (1, 1)),
                                     (8, 12, 4, (0, 2)), (12, 4, 4, (2, 0))])
@TIERS
def test_masked_shifted_attention_equals_attention_per_region(rng, H, W, M, S, tier):
    """SW-MSA with the -100 mask = attention computed separately inside each region, the
    regions found from where each token came from (rolled_windows), not from the mask code."""
    C, nH = 6, 2
    x = rng.standard_normal((1, H, W, C))
    w = attention_weights(rng, C, nH)
    table = rng.standard_normal(((2 * M - 1) ** 2, nH))
    bias, _ = relative_bias_forward(table, relative_position_index(M))
    tokens, _ = to_windows_forward(x, M, S)                # (nW, N, C)
    mask = minswin.attention_mask(H, W, M, S)
    fast, _ = tier.window_attention_forward(tokens, **w, bias=bias, mask=mask, num_heads=nH)
    slow_bias = literal_bias(table, M)
    most = 0
    for k, (sources, regions) in enumerate(rolled_windows(H, W, M, *S)):
        image_tokens = np.array([x[0, r, c] for r, c in sources])      # (N, C)
        np.testing.assert_array_equal(tokens[k], image_tokens)
        for region in set(regions):
            idx = [n for n in range(M * M) if regions[n] == region]    # one region's tokens
            slow = attention_over(image_tokens[idx], slow_bias[:, idx][:, :, idx], w, nH)
            np.testing.assert_allclose(fast[k, idx], slow, rtol=1e-10, atol=1e-12)
        most = max(most, len(set(regions)))
    assert most == (2 if 0 in S else 4)                    # the corner window is split 4 ways


def test_patch_merging_is_four_strided_slices(rng):
    x = rng.standard_normal((2, 6, 4, 3))
    m = merge_2x2(x)
    for i in range(3):
        for j in range(2):
            cell = np.concatenate([x[:, 2 * i, 2 * j], x[:, 2 * i + 1, 2 * j],
                                   x[:, 2 * i, 2 * j + 1], x[:, 2 * i + 1, 2 * j + 1]], axis=-1)
            np.testing.assert_array_equal(m[:, i, j], cell)
    # the whole layer: LayerNorm(4C) then the reduction, per cell
    g, b, red = rng.standard_normal(12), rng.standard_normal(12), rng.standard_normal((6, 12))
    out, _ = patch_merging_forward(x, g, b, red)
    v = m[0, 1, 1]
    ref = ((v - v.mean()) / np.sqrt(v.var() + 1e-5) * g + b) @ red.T
    np.testing.assert_allclose(out[0, 1, 1], ref, rtol=1e-12)


def test_patch_embed_is_a_literal_convolution(rng):
    x = rng.standard_normal((1, 10, 7, 3))                 # not multiples of 4: zero-padded
    wt, b = rng.standard_normal((5, 3, 4, 4)), rng.standard_normal(5)
    out, _ = patch_embed_forward(x, wt, b, 4)
    assert out.shape == (1, 3, 2, 5)
    xp = np.zeros((1, 12, 8, 3))
    xp[:, :10, :7] = x
    for i in range(3):
        for j in range(2):
            for o in range(5):
                acc = b[o]
                for c in range(3):
                    for kh in range(4):
                        for kw in range(4):
                            acc += wt[o, c, kh, kw] * xp[0, 4 * i + kh, 4 * j + kw, c]
                np.testing.assert_allclose(out[0, i, j, o], acc, rtol=1e-12)


def test_window_partition_and_shift_literal(rng):
    x = rng.standard_normal((2, 4, 6, 3))
    win = window_partition(x, 2)                           # (2*6, 2, 2, 3)
    for b in range(2):
        for wr in range(2):
            for wc in range(3):
                k = b * 6 + wr * 3 + wc
                np.testing.assert_array_equal(win[k], x[b, 2 * wr:2 * wr + 2, 2 * wc:2 * wc + 2])
    np.testing.assert_array_equal(minswin.window_reverse(win, 2, 4, 6), x)
    y = cyclic_shift(x, (1, 2))
    for r in range(4):
        for c in range(6):
            np.testing.assert_array_equal(y[:, r, c], x[:, (r + 1) % 4, (c + 2) % 6])
