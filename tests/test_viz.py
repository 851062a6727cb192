"""The pictures show the arrays minswin computes: read the data back out of the axes."""
import re

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

import minswin
from minswin import viz
from minswin.backend import to_backend
from minswin.ops.masks import (
    attention_mask,
    relative_coordinates,
    relative_position_index,
    window_labels,
)

matplotlib.use("Agg")


def drawn(ax, k=0):
    """The k-th image array of an axes, as a plain NumPy array."""
    return np.asarray(ax.images[k].get_array())


def texts(fig):
    """Every piece of text in a figure: titles, labels, annotations, suptitle."""
    out = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    return "\n".join(out)


# ---------------------------------------------------------------------------- windows

def test_window_ids_match_a_literal_roll():
    ids = viz.window_ids(8, 8, 4, 2)
    # literal: window of token (r, c) after rolling up/left by 2 is ((r-2)%8//4, (c-2)%8//4)
    r, c = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    expect = ((r - 2) % 8 // 4) * 2 + (c - 2) % 8 // 4
    assert np.array_equal(ids, expect)
    # the window made of the four corners is one window (regions 4 5 7 8 of region_labels)
    assert ids[0, 0] == ids[0, 7] == ids[7, 0] == ids[7, 7] == 3


def test_token_positions_are_the_rolled_partition():
    pos = viz.token_positions(8, 8, 4, 2)                  # (4, 16, 2)
    r, c = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    rolled_r, rolled_c = np.roll(r, (-2, -2), (0, 1)), np.roll(c, (-2, -2), (0, 1))
    for w in range(4):
        wr, wc = divmod(w, 2)
        sl = np.s_[wr * 4:(wr + 1) * 4, wc * 4:(wc + 1) * 4]
        assert np.array_equal(pos[w, :, 0], rolled_r[sl].ravel())
        assert np.array_equal(pos[w, :, 1], rolled_c[sl].ravel())


def test_central_window_is_in_the_middle_and_does_not_wrap():
    assert viz.central_window(56, 56, 7) == 27             # row 3, column 3 of 8x8 windows
    assert viz.central_window(16, 8, 4) == 2               # row 1 of 4, column 0 of 2
    assert viz.central_window(7, 7, 7) == 0                # one window
    pos = viz.token_positions(56, 56, 7, 3)[27]            # (49, 2) its tokens on the map
    assert np.array_equal(pos[0], (24, 24)) and np.array_equal(pos[-1], (30, 30))
    with pytest.raises(ValueError, match="window"):
        viz.central_window(56, 56, 0)


def test_window_partition_figure_draws_window_ids():
    fig = viz.plot_window_partition(8, 4, 2)
    assert isinstance(fig, Figure)
    ax0, ax1 = fig.axes[:2]
    assert np.array_equal(drawn(ax0), viz.window_ids(8, 8, 4, 0))
    assert np.array_equal(drawn(ax1), viz.window_ids(8, 8, 4, 2))
    assert "W-MSA" in ax0.get_title() and "SW-MSA" in ax1.get_title()
    assert "9 pieces" in ax1.get_title()
    assert "grid moved by S=2\n" in ax1.get_title()        # not S=(2, 2)


def test_window_partition_over_an_image(xp):
    img = to_backend(viz.sample_image(224), xp)          # arrays on either backend
    fig = viz.plot_window_partition(window=7, image=img)
    ax = fig.axes[1]
    assert drawn(ax, 0).shape == (224, 224, 3)             # the photo underneath
    assert np.array_equal(drawn(ax, 1), viz.window_ids(56, 56, 7, 3))
    assert "64 windows" in fig.axes[0].get_title()


# ---------------------------------------------------------------------------- shift

def test_cyclic_shift_panels_are_the_rolled_region_map():
    fig = viz.plot_cyclic_shift(8, 4, 2)
    steps = viz.shift_steps(8, 8, 4, 2)
    assert np.array_equal(drawn(fig.axes[0]), steps["map"])
    assert np.array_equal(drawn(fig.axes[1]), np.roll(steps["map"], -2, axis=0))
    assert np.array_equal(drawn(fig.axes[2]), np.roll(steps["map"], (-2, -2), (0, 1)))
    # one numbering: after both rolls the map is region_labels itself
    assert np.array_equal(steps["rolled"], minswin.region_labels(8, 8, 4, 2))
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert "regions 8 6 7 wrap to the bottom" in titles[1]
    assert "regions 2 5 8 wrap to the right" in titles[2]
    assert "[0]  [1 2]  [3 6]  [4 5 7 8]" in titles[3]


def test_regions_in_windows_are_region_labels_numbers():
    lab = window_labels(8, 8, 4, 2)                        # (nW, N)
    assert viz.regions_in_windows(8, 8, 4, 2) == [sorted(set(r)) for r in lab.tolist()]
    assert viz.regions_in_windows(8, 8, 4, 2) == [[0], [1, 2], [3, 6], [4, 5, 7, 8]]


def _numbers_on(ax):
    """{region number drawn as text on the axes: set of (row, col) cells it is drawn in}."""
    out = {}
    for t in ax.texts:
        if t.get_text().isdigit():
            x, y = t.get_position()
            out.setdefault(int(t.get_text()), set()).add((int(round(y)), int(round(x))))
    return out


def _assert_numbers_match(ax, labels):
    """Every region number drawn on ax sits on a cell that `labels` gives that number, and
    every region of `labels` is named."""
    found = _numbers_on(ax)
    assert sorted(found) == sorted(np.unique(labels).tolist()), found
    for k, cells in found.items():
        for r, c in cells:
            # a text at a piece's centre may fall between cells: one of its neighbours is k
            near = labels[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
            assert k in near, (k, r, c, labels)


@pytest.mark.parametrize("size,M,S", [(8, 4, 2), (8, 4, 1), (12, 4, 3), (9, 3, 1), (8, 4, (2, 1))])
def test_every_region_figure_uses_the_numbers_of_region_labels(size, M, S):
    """The figures name the regions with region_labels's numbers, in the rolled frame and,
    carried back by the roll, on the map before it; a non-default shift included."""
    lab = minswin.region_labels(size, size, M, S)          # (H, W), the rolled frame
    before = np.roll(lab, S if np.ndim(S) else (S, S), axis=(0, 1))   # where each region lies
    fig = viz.plot_region_numbering(size, M, S)
    assert np.array_equal(drawn(fig.axes[1]), lab)
    assert np.array_equal(drawn(fig.axes[0]), before)
    _assert_numbers_match(fig.axes[1], lab)
    _assert_numbers_match(fig.axes[0], before)
    fig = viz.plot_cyclic_shift(size, M, S)
    _assert_numbers_match(fig.axes[0], before)
    _assert_numbers_match(fig.axes[2], lab)
    _assert_numbers_match(fig.axes[3], lab)
    nW = (size // M) ** 2
    for w in (0, nW - 1):
        fig = viz.plot_window_mask(size, M, S, window_id=w)
        assert np.array_equal(drawn(fig.axes[0]), lab)
        _assert_numbers_match(fig.axes[0], lab)
        present = sorted(set(window_labels(size, size, M, S)[w].tolist()))
        assert fig.axes[1].get_title().endswith("regions " + " and ".join(map(str, present)))
        words = [t.get_text() for t in fig.axes[1].texts if t.get_text().startswith("region")]
        assert words == [f"region {k}" for k in window_labels(size, size, M, S)[w]]


def test_first_seen_keeps_the_order_of_first_appearance():
    from minswin.viz.geometry import first_seen
    assert first_seen(np.array([[5, 3, 5], [8, 3, 0]])) == [5, 3, 8, 0]     # row-major
    assert first_seen(np.array([[5, 3, 5], [8, 3, 0]]).T) == [5, 8, 3, 0]   # column-major


def test_shift_gif_is_an_animation(tmp_path):
    path, n = viz.save_shift_gif(tmp_path / "shift.gif", 8, 4, 2)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.is_animated
        assert im.n_frames >= 5                            # map, rows, columns, windows
        assert n == 2 + 2 + 2 + 3 >= im.n_frames           # 2 map, 2 rows, 2 columns, 3 cut
                                                           # (Pillow merges repeated frames)
        assert im.size[0] > 250 and im.size[1] > 250


def test_shift_gif_refuses_a_path_that_is_not_a_gif(tmp_path):
    with pytest.raises(ValueError, match=r"s\.png: expected a file name ending in \.gif, "
                                         r"got \.png"):
        viz.save_shift_gif(tmp_path / "s.png")
    with pytest.raises(OSError, match="does not exist"):
        viz.save_shift_gif(tmp_path / "missing" / "s.gif")
    assert list(tmp_path.iterdir()) == []                  # refused before anything is written


# ---------------------------------------------------------------------------- masks

@pytest.mark.parametrize("size,M,S,w", [(8, 4, 2, 1), (56, 7, 3, 63), (56, 7, 3, 0)])
def test_window_mask_image_is_the_mask(size, M, S, w):
    fig = viz.plot_window_mask(size, M, S, window_id=w)
    mask = attention_mask(size, size, M, S)[w] != 0
    ax = fig.axes[2]
    assert np.array_equal(drawn(ax), mask)
    N = M * M
    assert f"{N}x{N}" in ax.get_title() and f"{int(mask.sum())} of {N * N}" in ax.get_title()
    assert ax.get_xlabel() == "key token j" and ax.get_ylabel() == "query token i"
    # readable ticks: every token for small windows, one tick per window row for M=7
    assert len(ax.get_xticks()) == (N if N <= 20 else M)


def test_window_1_masks_region_2_for_token_0():
    # token 0 of window 1 (region 1) may not see tokens 2, 3, 6, 7, ... (region 2)
    fig = viz.plot_window_mask(8, 4, 2, window_id=1)
    row0 = drawn(fig.axes[2])[0]
    assert list(np.nonzero(row0)[0]) == [2, 3, 6, 7, 10, 11, 14, 15]
    assert "regions 1 and 2" in fig.axes[1].get_title()


def test_stage_masks_grid():
    fig = viz.plot_stage_masks(56, 7, 3)
    masks = attention_mask(56, 56, 7, 3) != 0
    assert len(fig.axes) == 64
    red = []
    for w, ax in enumerate(fig.axes):
        assert np.array_equal(drawn(ax), masks[w])
        if matplotlib.colors.to_hex(ax.spines["top"].get_edgecolor()) == "#ff0000":
            red.append(w)
    assert red == [7, 15, 23, 31, 39, 47, 55] + list(range(56, 64))     # SPEC 4
    assert "15 windows have masked pairs" in fig.get_suptitle()


# ---------------------------------------------------------------------------- index, bias

def test_index_walkthrough_panels():
    fig = viz.plot_index_walkthrough(2)
    steps = viz.index_steps(2)
    for k, (title, a) in enumerate(steps):
        assert np.array_equal(drawn(fig.axes[k + 2]), a)
    final = drawn(fig.axes[7])
    assert final.tolist() == [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
    assert "(0,-1)" in texts(fig) and "(-1,0)" in texts(fig)    # different offsets kept apart
    with pytest.raises(ValueError, match="walk-through"):
        viz.plot_index_walkthrough(7)


def test_annotate_cells_writes_each_value_readable_on_its_cell():
    from minswin.viz._common import annotate_cells, new_figure
    ax = new_figure(2, 2).add_subplot()
    im = ax.imshow([[0.0, 1.0]], cmap="viridis", vmin=0, vmax=1)   # dark purple, bright yellow
    annotate_cells(ax, [[7, 8]], fmt="n={}", image=im, dy=0.25)
    annotate_cells(ax, [[1.5, 2.5]], fmt="{:.2f}")
    got = [(t.get_text(), t.get_position(), t.get_color()) for t in ax.texts]
    assert got == [("n=7", (0, 0.25), "white"), ("n=8", (1, 0.25), "black"),   # from the image
                   ("1.50", (0, 0), "black"), ("2.50", (1, 0), "black")]      # no image: black


def test_relative_position_index_heat_map():
    fig = viz.plot_relative_position_index(7)
    ax, zoom = fig.axes[:2]
    index = relative_position_index(7)
    assert np.array_equal(drawn(ax), index)
    assert "bias_table" in fig.axes[2].get_ylabel()        # the colour bar says what it means
    assert len(ax.get_xticks()) == 7                       # not 49 illegible ticks
    assert "diagonal = 84" in ax.get_title()
    # the structure shows: a colour per column offset dc (white on the diagonal), not a
    # 0..168 ramp; block lines every M; each block named by its row offset dr
    im = ax.get_images()[0]
    colours = im.cmap(im.norm(index))                      # (49, 49, 4) what is drawn
    dc = relative_coordinates(7)[1]
    for d in range(-6, 7):
        assert len({tuple(c) for c in colours[dc == d]}) == 1, d       # one colour per dc
    assert np.allclose(colours[dc == 0][0][:3], 0.97, atol=0.03)       # dc = 0: white-ish
    assert len(ax.lines) == 2 * 8                          # lines between the 7x7 blocks
    labels = [t.get_text() for t in ax.texts]
    assert labels[:2] == ["dr=+0", "dr=-1"] and len(labels) == 49
    assert np.array_equal(drawn(zoom), index[:14, :14])    # the zoom has the values written
    assert [t.get_text() for t in zoom.texts] == [str(v) for v in index[:14, :14].ravel()]
    small = viz.plot_relative_position_index(3).axes[0]    # 9x9: the numbers are written in
    assert [t.get_text() for t in small.texts] == \
        [str(v) for v in relative_position_index(3).ravel()]


def test_bias_figure_shows_table_and_gathered_bias(rng, xp):
    table = rng.standard_normal((169, 3))
    fig = viz.plot_relative_position_bias(to_backend(table, xp), heads=[0, 2])
    index = relative_position_index(7)
    image_axes = [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert np.array_equal(drawn(image_axes[0]), table[:, 0].reshape(13, 13))
    assert np.array_equal(drawn(image_axes[1]), table[index, 0])
    assert np.array_equal(drawn(image_axes[3]), table[index, 2])
    # the centre of the 13x13 image is offset (0, 0): the diagonal of the bias
    assert np.all(drawn(image_axes[1]).diagonal() == table[84, 0])
    with pytest.raises(ValueError, match="head"):
        viz.plot_relative_position_bias(table, heads=[3])


# ---------------------------------------------------------------------------- attention

def _softmax_weights(rng, shape):
    a = rng.standard_normal(shape)
    a = np.exp(a - a.max(-1, keepdims=True))
    return a / a.sum(-1, keepdims=True)


def test_window_attention_per_head(rng):
    attn = _softmax_weights(rng, (1, 4, 2, 16, 16))
    fig = viz.plot_window_attention(attn, window_id=3)
    heads = [ax for ax in fig.axes if ax.get_title().startswith("head")]
    assert len(heads) == 2
    for h, ax in enumerate(heads):
        assert np.allclose(drawn(ax), attn[0, 3, h])


def test_figures_take_an_image_or_a_batch_of_images(rng, xp):
    img = rng.random((32, 32, 3))
    batch = to_backend(np.stack([img, 1 - img]), xp)       # (2, 32, 32, 3) on either backend
    attn = _softmax_weights(rng, (2, 4, 2, 16, 16))
    fig = viz.plot_query_attention(batch, attn, (8, 8), 4, 2, window_id=3, batch=1)
    assert np.array_equal(drawn(fig.axes[0]), 1 - img)     # the batch item asked for
    fig = viz.plot_cyclic_shift(8, 4, 2, image=batch)
    assert np.array_equal(drawn(fig.axes[0]), img)         # the first one otherwise
    fig = viz.plot_window_partition(window=4, image=batch, patch=4)
    assert np.array_equal(drawn(fig.axes[0]), img)


def test_query_attention_drawn_where_the_tokens_are(rng):
    attn = _softmax_weights(rng, (1, 4, 2, 16, 16))
    img = rng.random((32, 32, 3))
    fig = viz.plot_query_attention(img, attn, (8, 8), 4, 2, window_id=3, query=5)
    heat = np.ma.filled(drawn(fig.axes[1], 1).astype(float), np.nan)
    pos = viz.token_positions(8, 8, 4, 2)[3]
    for n, (r, c) in enumerate(pos):
        assert heat[r, c] == pytest.approx(attn[0, 3, 0, 5, n])
    assert np.isnan(heat).sum() == 64 - 16                 # only the window is coloured
    assert {tuple(p) for p in pos} >= {(0, 0), (7, 7)}     # window 3 wraps to the corners


def test_bias_and_attention_figures_name_a_bad_head_alike(rng):
    # one check of the head indices serves both figures, with one message
    with pytest.raises(ValueError, match=r"heads: expected 0 <= head < 3, got 3"):
        viz.plot_relative_position_bias(rng.standard_normal((9, 3)), heads=[0, 3])
    with pytest.raises(ValueError, match=r"heads: expected 0 <= head < 3, got 3"):
        viz.plot_window_attention(_softmax_weights(rng, (1, 4, 3, 4, 4)), heads=[3])


# ---------------------------------------------------------------------------- merging, model

def test_patch_merging_order():
    a = viz.merging_arrays(4)
    x = a["x"]
    for k, (r0, c0) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):   # x0, x1, x2, x3
        assert np.array_equal(a["merged"][:, :, k], x[r0::2, c0::2])
    r, c = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    assert np.array_equal(a["owner"], r % 2 + 2 * (c % 2))
    assert a["out"].shape == (2, 2, 2)
    fig = viz.plot_patch_merging(4)
    assert "x1 = x[1::2, 0::2]" in texts(fig)


@pytest.fixture(scope="module")
def micro():
    model = minswin.create_model("swin_micro")
    img = viz.sample_image(model.config.img_size)
    _, trace = model.trace(viz.normalise(img)[None])
    return model, img, trace


def test_hierarchy_uses_the_traced_shapes(micro):
    model, img, trace = micro
    fig = viz.plot_hierarchy(model, trace, img, "swin_micro")
    t = texts(fig)
    shapes = dict(trace)
    for i in range(len(model.layers)):
        B, H, W, C = shapes[f"layers.{i}.blocks.1"]
        assert f"stage {i + 1}: {H}x{W}x{C}" in t
    assert "4 windows of 4x4" in t and "1 window of 4x4" in t
    assert f"head: {shapes['head'][1]}" in t


def test_stage_summary_reads_the_trace(micro):
    model, _, trace = micro
    stages = viz.stage_summary(model, trace)
    assert [s["shape"] for s in stages] == [(1, 8, 8, 48), (1, 4, 4, 96)]
    assert [s["padded"] for s in stages] == [(8, 8), (4, 4)]   # whole 4x4 windows
    assert [s["windows"] for s in stages] == [4, 1]
    assert [s["shifts"] for s in stages] == [[(0, 0), (2, 2)], [(0, 0), (0, 0)]]
    assert [s["merged"] for s in stages] == [(1, 4, 4, 96), None]
    padded = minswin.create_model("swin_micro", img_size=40)   # 10x10 and 5x5 maps
    _, trace = padded.trace(np.zeros((1, 40, 40, 3), padded.dtype))
    stages = viz.stage_summary(padded, trace)
    assert [s["shape"][1:3] for s in stages] == [(10, 10), (5, 5)]
    assert [s["padded"] for s in stages] == [(12, 12), (8, 8)]  # padded to whole windows
    assert [s["windows"] for s in stages] == [9, 4]


def test_attention_cost_bars_are_the_formulas(micro):
    model, _, _ = micro
    fig = viz.plot_attention_cost(model)
    msa, wmsa = fig.axes[0].containers[:2]
    rows = viz.attention_costs(model)
    assert [r[1:5] for r in rows] == [(8, 8, 48, 4), (4, 4, 96, 4)]   # swin_micro's stages
    assert list(msa.datavalues) == [minswin.flops.msa_flops(r[1], r[2], r[3]) for r in rows]
    assert list(wmsa.datavalues) == [minswin.flops.wmsa_flops(*r[1:5]) for r in rows]
    assert f"{minswin.flops.msa_saving(224, 224, 3, 7):,}" in texts(fig)


def test_model_attention_figure(micro):
    model, img, trace = micro
    blk = model.layers[0].blocks[1]
    attn = blk.attention_weights()
    fig = viz.plot_query_attention(img, attn, (8, 8), 4, blk.window_shift_for(8, 8)[1],
                                   window_id=3, query=0, heads=[1])
    heat = np.ma.filled(drawn(fig.axes[1], 1).astype(float), np.nan)
    assert np.nansum(heat) == pytest.approx(1.0, abs=1e-5)   # one query's row sums to 1


# ---------------------------------------------------------------------------- files

@pytest.mark.parametrize("ext,magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_save_figure_formats(tmp_path, ext, magic):
    path = viz.save_figure(viz.plot_relative_position_index(2), tmp_path / f"f.{ext}")
    with open(path, "rb") as f:
        assert f.read(5).startswith(magic)
    if ext == "png":
        with Image.open(path) as im:
            assert im.size[0] > 400 and im.size[1] > 400


def test_save_figure_refuses_bad_paths(tmp_path):
    fig = viz.plot_relative_position_index(2)
    with pytest.raises(ValueError, match=r"\.png"):
        viz.save_figure(fig, tmp_path / "f.txt")
    with pytest.raises(OSError, match="does not exist"):
        viz.save_figure(fig, tmp_path / "missing" / "f.png")


def test_no_pyplot_figures_are_left_open():
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    viz.plot_window_mask()
    viz.plot_cyclic_shift()
    assert plt.get_fignums() == before


def test_query_attention_names_a_bad_window_or_window_id():
    img, attn = np.zeros((32, 32, 3)), np.full((3, 16, 16), 1 / 16)
    with pytest.raises(ValueError, match="window: expected a positive integer, got 0"):
        viz.plot_query_attention(img, attn, (8, 8), 0)
    with pytest.raises(ValueError, match=r"window_id: expected 0 <= window_id < 4 \(the 8x8 "
                                         r"map has 4 windows of 4x4\), got 9"):
        viz.plot_query_attention(img, attn, (8, 8), 4, window_id=9)


@pytest.mark.parametrize("plot", ["plot_window_mask", "plot_stage_masks",
                                  "plot_window_partition"])
def test_map_figures_refuse_a_fractional_size(plot):
    with pytest.raises(ValueError, match="size: expected a positive integer, got 7.9"):
        getattr(viz, plot)(7.9, 4, 2)


def test_map_figures_name_a_size_that_the_window_does_not_divide():
    for plot in (viz.plot_window_mask, viz.plot_stage_masks, viz.plot_window_partition,
                 viz.plot_cyclic_shift):
        with pytest.raises(ValueError, match=r"^size: expected a multiple of window=3, got 8 "
                                             r"\(use 9, or a window that divides 8\)$"):
            plot(8, 3, 1)


def test_window_partition_names_a_window_that_does_not_divide_the_image():
    with pytest.raises(ValueError, match=r"^window: expected a window that divides the image's "
                                         r"56x56 tokens \(4x4 pixels each\), got 5$"):
        viz.plot_window_partition(window=5, image=np.zeros((224, 224, 3)))


def test_window_mask_names_a_bad_window_id():
    with pytest.raises(ValueError, match=r"window_id: expected 0 <= window_id < 4 \(the 8x8 map "
                                         r"has 4 windows of 4x4\), got 4"):
        viz.plot_window_mask(8, 4, 2, window_id=4)


def test_window_partition_refuses_a_fractional_patch():
    with pytest.raises(ValueError, match=r"patch: expected a positive integer, got 4\.5"):
        viz.plot_window_partition(window=4, image=np.zeros((32, 32, 3)), patch=4.5)


@pytest.mark.parametrize("draw", [
    lambda w: viz.plot_window_mask(8, 4, 2, window_id=w),
    lambda w: viz.plot_window_attention(np.full((1, 4, 1, 16, 16), 1 / 16), window_id=w),
    lambda w: viz.plot_query_attention(np.zeros((32, 32, 3)), np.full((1, 4, 1, 16, 16), 1 / 16),
                                       (8, 8), 4, 2, window_id=w),
])
def test_every_figure_checks_window_id_alike(draw):
    """One check, one wording: out of range and non-integers (1.5 was truncated to 1) alike."""
    for bad in (4, -1, 1.5):
        with pytest.raises(ValueError, match=r"window_id: expected 0 <= window_id < 4 \(the "
                                             r".*4 windows.*\), got " + re.escape(repr(bad))):
            draw(bad)


# ---------------------------------------------------------------------------- readable figures
# (issue 13: each of these was wrong or hard to read in a PNG; the checks pin the fix)

def _boxes(fig):
    """Window extents (pixels) of the suptitle, every axes title and x label, after drawing."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    titles = [ax.title for ax in fig.axes if ax.get_title()]
    xlabels = [ax.xaxis.label for ax in fig.axes if ax.get_xlabel()]
    return (fig._suptitle.get_window_extent(r), [t.get_window_extent(r) for t in titles],
            [x.get_window_extent(r) for x in xlabels], fig.bbox)


@pytest.mark.parametrize("draw", [
    lambda rng: viz.plot_relative_position_bias(
        0.02 * rng.standard_normal((169, 3)), heads=[0],
        name="layers.0.blocks.1 of swin_t (random weights, seed 0: untrained)"),
    lambda rng: viz.plot_query_attention(
        viz.sample_image(224), rng.random((1, 64, 3, 49, 49)), (56, 56), 7, 3, window_id=27,
        heads=[1], name="layers.0.blocks.1, swin_t (random weights, seed 0: untrained)"),
    lambda rng: viz.plot_window_attention(
        rng.random((1, 64, 3, 49, 49)), window_id=27, heads=[1],
        name="layers.0.blocks.1, swin_t (random weights, seed 0: untrained)"),
], ids=["bias", "query-attention", "attention-weights"])
def test_titles_and_labels_fit_and_do_not_overlap(draw, rng):
    sup, titles, xlabels, page = _boxes(draw(rng))
    for box in [sup] + titles + xlabels:                   # nothing cut at any side
        assert box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1, box
        assert box.y0 >= page.y0 - 1 and box.y1 <= page.y1 + 1, box
    for t in titles:                                       # the suptitle clears every title
        assert not sup.overlaps(t), (sup, t)


def test_relative_position_index_diagonal_block_is_centred_on_the_table_middle():
    fig = viz.plot_relative_position_index(7)
    zoom = fig.axes[1]
    assert "its diagonal 84" in zoom.get_title()
    bold = [t.get_text() for t in zoom.texts if t.get_fontweight() == "bold"]
    assert bold == ["84"] * 14                             # the main diagonal, offset (0, 0)


def test_attention_cost_is_linear_in_one_unit(micro):
    model, _, _ = micro
    fig = viz.plot_attention_cost(model)
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0   # small bars look small
    values = [t.get_text() for t in ax.texts if t.get_text().endswith(" G")]
    assert values and all(re.fullmatch(r"\d+\.\d{3} G", v) for v in values), values
    assert fig.axes[1].get_ylim()[0] == 1e6                # the log panel shows both bars


def test_cyclic_shift_has_one_numbering():
    fig = viz.plot_cyclic_shift(8, 4, 2)
    assert "cnt" not in texts(fig)
    numbers = [t.get_text() for t in fig.axes[0].texts]
    assert sorted(numbers) == [str(k) for k in range(9)]   # the nine regions, once each
    assert all(t.get_fontsize() >= 12 for ax in fig.axes for t in ax.texts)


def test_window_partition_image_shows_which_pieces_form_one_window():
    fig = viz.plot_window_partition(window=7, image=viz.sample_image(224))
    ax = fig.axes[1]
    ids = viz.window_ids(56, 56, 7, 3)
    alpha = np.asarray(ax.images[1].get_alpha())
    split = ids == 63                                      # the four corners: one window
    assert alpha[split].min() >= 0.5 and alpha[ids == 0].max() <= 0.2
    labels = [t.get_text() for t in ax.texts]
    assert labels.count("63") == 4 and labels.count("7") == 2 and "0" not in labels


def test_stage_mask_numbers_sit_on_opaque_labels():
    fig = viz.plot_stage_masks(28, 7, 3)
    for w, ax in enumerate(fig.axes):
        (label,) = ax.texts
        assert label.get_text() == str(w)
        assert label.get_bbox_patch().get_alpha() == 1.0
        assert label.get_color() in ("black", "dimgrey")   # never red on the checkerboard


def test_patch_merging_shows_each_cell_as_a_4_vector():
    fig = viz.plot_patch_merging(4)
    assert "of the concat" not in texts(fig)               # no row repeating x0..x3
    m = next(ax for ax in fig.axes if ax.get_title().startswith("merge_2x2"))
    a = viz.merging_arrays(4)
    assert [t.get_text() for t in m.texts] == [f"{v:g}" for v in a["merged"].ravel()]
    assert np.array_equal(drawn(m), np.tile(np.arange(4), (2, 2)))   # colour = sub-grid k
    assert "top-left cell: 1, 5, 2, 6" in m.get_title()


def test_mask_with_a_window_covering_the_map_says_swin_would_not_use_it():
    assert "Not used by Swin" in texts(viz.plot_window_mask(8, 8, 4, window_id=0))
    assert "Not used by Swin" in texts(viz.plot_stage_masks(8, 8, 4))
    assert "Not used by Swin" not in texts(viz.plot_window_mask(8, 4, 2))


def test_training_curves_say_why_train_loss_sits_above_val_loss(tmp_path):
    from minswin.loss import cross_entropy_forward
    from minswin.training import _smoothed_loss_floor, _train_val_note, plot_history
    # the floor is the loss of the best possible prediction: the smoothed target itself
    eps, K = 0.1, 10
    q = np.full((1, K), eps / K)
    q[0, 3] += 1 - eps
    best, _ = cross_entropy_forward(np.log(q), np.array([3]), eps)
    assert _smoothed_loss_floor(eps, K) == pytest.approx(float(best), rel=1e-12)
    history = {"config": {"label_smoothing": eps}, "model_config": {"drop_path_rate": 0.1,
                                                                    "num_classes": K},
               "epochs": [dict(epoch=1, train_loss=1.0, val_loss=0.5, train_acc=0.5,
                               val_acc=0.6)]}
    note = _train_val_note(history)
    assert "label smoothing 0.1" in note and "DropPath 0.1" in note and "above" in note
    assert _train_val_note({"config": {}, "model_config": {}}) == ""
    plot_history(history, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 10_000
