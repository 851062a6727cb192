"""Every figure's data comes from the arguments asked for.

The pixels are not checked; the arrays and numbers drawn are, read back out of the axes, for
values that are NOT the defaults (a shift other than M // 2, window 3 or 5, head 2, stage 2,
batch 1, ...). Each test also checks that the non-default value gives other data than the
default, so a figure that quietly falls back on its default cannot pass.
"""
import matplotlib
import numpy as np
import pytest

from minswin import viz
from minswin.ops.masks import attention_mask, relative_position_index
from minswin.ops.resize import resize_relative_bias_table

matplotlib.use("Agg")


def drawn(ax, k=0):
    return np.asarray(ax.images[k].get_array())


def literal_index(M):
    """index[i, j] for tokens i = (ri, ci), j = (rj, cj): (ri-rj+M-1)(2M-1) + (ci-cj+M-1),
    written out pair by pair (query minus key)."""
    N = M * M
    out = np.empty((N, N), dtype=int)
    for i in range(N):
        for j in range(N):
            (ri, ci), (rj, cj) = divmod(i, M), divmod(j, M)
            out[i, j] = (ri - rj + M - 1) * (2 * M - 1) + (ci - cj + M - 1)
    return out


# ---------------------------------------------------------------------------- masks

@pytest.mark.parametrize("size,M,S", [(16, 4, 1), (24, 6, 2), (20, 5, 1)])
def test_stage_masks_are_drawn_with_the_shift_asked_for(size, M, S):
    assert S != M // 2
    fig = viz.plot_stage_masks(size, M, S)
    want = attention_mask(size, size, M, S) != 0
    default = attention_mask(size, size, M, M // 2) != 0
    assert not np.array_equal(want, default)              # the shift matters here
    assert len(fig.axes) == want.shape[0]
    for w, ax in enumerate(fig.axes):
        np.testing.assert_array_equal(drawn(ax), want[w], err_msg=f"window {w}")
    assert f"S={S}" in fig.get_suptitle()


@pytest.mark.parametrize("size,M,S,w", [(12, 4, 1, 5), (12, 4, 3, 8), (15, 5, 1, 8)])
def test_window_mask_is_drawn_for_the_shift_and_window_asked_for(size, M, S, w):
    fig = viz.plot_window_mask(size, M, S, window_id=w)
    masks = attention_mask(size, size, M, S) != 0
    np.testing.assert_array_equal(drawn(fig.axes[2]), masks[w])
    assert not np.array_equal(masks[w], (attention_mask(size, size, M, M // 2) != 0)[w])


@pytest.mark.parametrize("size,M,S", [(12, 4, 1), (12, 4, 3), (15, 5, 1)])
def test_window_partition_and_shift_use_the_shift_asked_for(size, M, S):
    fig = viz.plot_window_partition(size, M, S)
    np.testing.assert_array_equal(drawn(fig.axes[0]), viz.window_ids(size, size, M, 0))
    np.testing.assert_array_equal(drawn(fig.axes[1]), viz.window_ids(size, size, M, S))
    assert not np.array_equal(viz.window_ids(size, size, M, S),
                              viz.window_ids(size, size, M, M // 2))


# ---------------------------------------------------------------------------- position index

@pytest.mark.parametrize("M", [2, 3])
def test_index_walkthrough_labels_are_query_minus_key(M):
    fig = viz.plot_index_walkthrough(M)
    N = M * M
    labels = [t.get_text() for t in fig.axes[1].texts]
    assert len(labels) == N * N
    want = []
    for i in range(N):
        for j in range(N):
            (ri, ci), (rj, cj) = divmod(i, M), divmod(j, M)
            want.append(f"({ri - rj},{ci - cj})")
    assert labels == want                                  # row-major over (query, key)
    steps = [drawn(fig.axes[k]) for k in range(2, 8)]
    dr = np.array([[i // M - j // M for j in range(N)] for i in range(N)])
    dc = np.array([[i % M - j % M for j in range(N)] for i in range(N)])
    np.testing.assert_array_equal(steps[0], dr)
    np.testing.assert_array_equal(steps[1], dc)
    np.testing.assert_array_equal(steps[2], dr + M - 1)
    np.testing.assert_array_equal(steps[3], dc + M - 1)
    np.testing.assert_array_equal(steps[4], (dr + M - 1) * (2 * M - 1))
    np.testing.assert_array_equal(steps[5], literal_index(M))


@pytest.mark.parametrize("M", [3, 5])
def test_relative_position_index_figure_is_the_index_of_that_window(M):
    fig = viz.plot_relative_position_index(M)
    np.testing.assert_array_equal(drawn(fig.axes[0]), literal_index(M))
    np.testing.assert_array_equal(literal_index(M), relative_position_index(M))


# ---------------------------------------------------------------------------- bias, attention

def test_bias_figure_draws_the_heads_asked_for():
    rng = np.random.default_rng(3)
    M, nH = 3, 4
    table = rng.standard_normal(((2 * M - 1) ** 2, nH))
    fig = viz.plot_relative_position_bias(table, heads=[2, 0])
    axes = np.array(fig.axes[:4]).reshape(2, 2)
    index = literal_index(M)
    for row, h in enumerate([2, 0]):
        np.testing.assert_array_equal(drawn(axes[row, 0]), table[:, h].reshape(5, 5))
        np.testing.assert_allclose(drawn(axes[row, 1]), table[index, h], rtol=0, atol=0)


def test_window_attention_draws_the_batch_window_and_heads_asked_for():
    rng = np.random.default_rng(4)
    attn = rng.random((2, 4, 3, 9, 9))
    fig = viz.plot_window_attention(attn, window_id=2, heads=[1, 2], batch=1)
    np.testing.assert_array_equal(drawn(fig.axes[0]), attn[1, 2, 1])
    np.testing.assert_array_equal(drawn(fig.axes[1]), attn[1, 2, 2])


def test_query_attention_draws_the_query_asked_for():
    rng = np.random.default_rng(5)
    M, H = 2, 4                                            # a 4x4 map, four 2x2 windows
    attn = rng.random((1, 4, 2, M * M, M * M))
    img = rng.random((16, 16, 3))
    for shift in (0, 1):
        fig = viz.plot_query_attention(img, attn, (H, H), M, shift, window_id=3, query=2,
                                       heads=[1])
        want = viz.query_heat(attn[0, 3, 1], viz.token_positions(H, H, M, shift)[3], 2,
                              (H, H))
        heat = [np.asarray(im.get_array()) for ax in fig.axes for im in ax.images
                if np.asarray(im.get_array()).shape == want.shape]
        assert any(np.allclose(h, want, equal_nan=True) for h in heat), shift


# ---------------------------------------------------------------------------- V2 figures

def test_cpb_and_resize_figures_draw_the_head_and_window_asked_for():
    rng = np.random.default_rng(6)
    table = rng.standard_normal((25, 3))                   # M = 3
    fig = viz.plot_cpb_table(table, heads=[2])
    np.testing.assert_array_equal(drawn(fig.axes[0]), table[:, 2].reshape(5, 5))
    fig = viz.plot_table_resize(table, 5, head=1)
    resized = resize_relative_bias_table(table, 5)
    np.testing.assert_array_equal(drawn(fig.axes[0]), table[:, 1].reshape(5, 5))
    np.testing.assert_allclose(drawn(fig.axes[1]), resized[:, 1].reshape(9, 9))


def test_log_spaced_figure_uses_the_window_and_pretrained_window_asked_for():
    from minswin.ops.continuous_bias import log_spaced_coordinates
    fig = viz.plot_log_spaced_coordinates(window=6, pretrained_window=4)
    want = log_spaced_coordinates(6, 4)                    # (11, 11, 2)
    pts = fig.axes[1].collections[1].get_offsets()         # the log-spaced scatter
    np.testing.assert_allclose(np.asarray(pts)[:, 0], want[..., 1].ravel())
    np.testing.assert_allclose(np.asarray(pts)[:, 1], want[..., 0].ravel())
    assert not np.allclose(want, log_spaced_coordinates(6, 0))


# ---------------------------------------------------------------------------- the command

def _cli_figure(argv):
    from minswin.cli import build_parser
    from minswin.cli.plot import _figure
    return _figure(build_parser().parse_args(["plot"] + argv))


def test_cli_bias_draws_the_stage_block_and_head_asked_for():
    """`minswin plot bias --stage 2 --block 0 --head 2` on the shipped model: the table drawn
    is that block's, that head's."""
    from minswin.weights import pretrained
    model = pretrained("swin_digits")
    key = "layers.1.blocks.0.attn.relative_position_bias_table"
    table = np.asarray(model.params[key])
    fig = _cli_figure(["bias", "--stage", "2", "--block", "0", "--head", "2"])
    side = int(round(np.sqrt(table.shape[0])))
    np.testing.assert_array_equal(drawn(fig.axes[0]), table[:, 2].reshape(side, side))
    other = np.asarray(model.params["layers.0.blocks.1.attn.relative_position_bias_table"])
    assert not np.array_equal(table[:, 2], other[:, min(2, other.shape[1] - 1)])


def test_cli_mask_figures_take_the_shift_and_window_id_asked_for():
    fig = _cli_figure(["mask", "--size", "12", "--window", "4", "--shift", "1",
                       "--window-id", "5"])
    np.testing.assert_array_equal(drawn(fig.axes[2]), (attention_mask(12, 12, 4, 1) != 0)[5])
    fig = _cli_figure(["stage-masks", "--size", "12", "--window", "4", "--shift", "3"])
    want = attention_mask(12, 12, 4, 3) != 0
    for w, ax in enumerate(fig.axes):
        np.testing.assert_array_equal(drawn(ax), want[w])


# ---------------------------------------------------------------------------- found by mutmut

def test_index_walkthrough_titles_carry_the_numbers_of_that_window():
    titles = [t for t, _ in viz.index_steps(3)]
    assert titles == ["relative row  dr = r_i - r_j", "relative column  dc = c_i - c_j",
                      "dr + (M-1) = dr + 2", "dc + (M-1) = dc + 2",
                      "(dr + 2) x (2M-1) = x 5", "index = row part + (dc + M-1)"]
    with pytest.raises(ValueError, match="^window: "):
        viz.index_steps(0)


def test_central_window_of_maps_that_are_not_square():
    assert viz.central_window(12, 20, 4) == 1 * 5 + 2     # 3x5 windows: row 1, column 2
    assert isinstance(viz.central_window(12, 20, 4), int)
    assert viz.central_window(3, 3, 1) == 4               # window 1: no shift is possible
    assert viz.central_window(8, 4, 4) == 0               # 2x1 windows: up of the centre


def test_token_positions_default_to_no_shift():
    np.testing.assert_array_equal(viz.token_positions(8, 8, 4),
                                  viz.token_positions(8, 8, 4, 0))
    assert not np.array_equal(viz.token_positions(8, 8, 4), viz.token_positions(8, 8, 4, 1))


def test_index_walkthrough_words_name_that_window():
    fig = viz.plot_index_walkthrough(3)
    ax0, ax1 = fig.axes[:2]
    assert ax0.get_title() == ("1. absolute (row, col) of the 9 tokens\nof a 3x3 window, "
                               "token n = r*M + c")
    assert (ax0.get_xlabel(), ax0.get_ylabel()) == ("column c", "row r")
    cells = [t.get_text() for t in ax0.texts]
    assert cells == [f"token {r * 3 + c}\n({r}, {c})" for r in range(3) for c in range(3)]
    assert ax1.get_title() == ("2. query minus key, (dr, dc):\neach row is one query's M x M "
                               "offsets, flattened")
    for k, ax in enumerate(fig.axes[1:8]):
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("key j", "query i"), k
    steps = viz.index_steps(3)
    for k, (title, _) in enumerate(steps):
        assert fig.axes[k + 2].get_title() == f"{k + 3}. {title}"
    assert fig.get_suptitle() == ("Relative position index of a 3x3 window, step by step: 9x9 "
                                  "pairs -> rows 0..24 of the ((2M-1)^2 = 25, heads) bias table")


def test_figure_defaults_and_layout():
    """The defaults are the explainer's: a 2x2 walk-through, Swin-T's 56x56 map of 7x7
    windows for the stage masks; the walk-through has exactly its 8 panels."""
    fig = viz.plot_index_walkthrough()
    assert len(fig.axes) == 8 and "of a 2x2 window" in fig.get_suptitle()
    assert len(viz.plot_stage_masks().axes) == 64
    with pytest.raises(ValueError, match="^window: "):
        viz.plot_index_walkthrough(0)
    labels = viz.unrolled_region_labels(8, 8, 4, 2)
    assert labels.dtype.kind == "i"
