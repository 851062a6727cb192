"""The Swin V2 figures: drawn from minswin's own arrays, and `minswin plot` for them."""
import numpy as np
import pytest

import minswin
from minswin import viz
from minswin.cli import main
from minswin.ops.masks import relative_position_index
from minswin.ops.relative_bias import relative_bias_forward
from minswin.weights import pretrained_path


@pytest.fixture(scope="module")
def v2():
    m = minswin.create_model("swinv2_digits", num_classes=10, dtype="float64")
    r = np.random.default_rng(0)
    for k, p in m.params.items():
        if "cpb_mlp" in k:
            p[...] = r.standard_normal(p.shape) / np.sqrt(p.shape[-1])
    return m


def test_cpb_table_is_the_models_bias_before_the_gather(v2):
    attn = v2.layers[0].blocks[1].attn
    table = viz.attention_cpb_table(attn)                  # (49, 3) for M = 4
    assert table.shape == (49, 3) and np.all((table > 0) & (table < 16))
    bias, _ = attn.continuous_position_bias()
    gathered, _ = relative_bias_forward(table, relative_position_index(4))
    assert np.allclose(gathered, bias, rtol=0, atol=1e-12)
    bigger = viz.attention_cpb_table(attn, window=6)       # the same network, more offsets
    assert bigger.shape == (121, 3)


def test_a_pretrained_window_keeps_the_old_offsets_where_they_were():
    """With pretrained_window_sizes = 4, the network evaluated for window 6 gives the window-4
    biases on the inner 7x7 offsets, and new values only on the added ring."""
    m = minswin.create_model("swinv2_digits", num_classes=10, pretrained_window_sizes=(4, 4),
                             seed=3)
    attn = m.layers[0].blocks[0].attn
    small, big = viz.attention_cpb_table(attn), viz.attention_cpb_table(attn, window=6)
    assert np.allclose(big.reshape(11, 11, 3)[2:9, 2:9], small.reshape(7, 7, 3), rtol=0,
                       atol=1e-12)


def test_figures_draw_the_arrays(v2, tmp_path):
    attn = v2.layers[0].blocks[1].attn
    table = viz.attention_cpb_table(attn)
    fig = viz.plot_cpb_table(table, heads=[1])
    assert np.array_equal(fig.axes[0].images[0].get_array(), table[:, 1].reshape(7, 7))
    v1 = minswin.create_model("swin_digits", num_classes=10)
    t1 = v1.params["layers.0.blocks.0.attn.relative_position_bias_table"]
    fig = viz.plot_table_resize(t1, 7, head=2)
    shown = fig.axes[1].images[0].get_array()
    assert shown.shape == (13, 13)
    assert np.allclose(shown, minswin.resize_relative_bias_table(
        t1.astype(np.float64), 7)[:, 2].reshape(13, 13))
    fig = viz.plot_window_transfer(t1, attn, 6, head=0)
    assert [ax.images[0].get_array().shape for ax in fig.axes if ax.images] == \
        [(7, 7), (11, 11), (7, 7), (11, 11)]
    fig = viz.plot_log_spaced_coordinates(8, new_window=16)
    viz.save_figure(fig, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="heads: expected 0 <= head < 3"):
        viz.plot_cpb_table(table, heads=[3])


@pytest.mark.parametrize("argv, code, words", [
    (["log-coords", "--window", "8", "--new-window", "16"], 0, "wrote"),
    (["cpb", "--model", "swinv2_digits", "--stage", "2", "--block", "0"], 0, "wrote"),
    (["bias", "--model", "swinv2_digits"], 0, "wrote"),
    (["table-resize", "--model", "swin_digits", "--new-window", "6"], 0, "wrote"),
    (["cpb", "--model", "swin_digits"], 2, "needs a Swin V2 model"),
    (["table-resize", "--model", "swinv2_digits"], 2, "needs a Swin v1 model"),
    (["table-resize", "--model", "swin_digits", "--new-window", "-1"], 2, "--new-window"),
    # a checkpoint of the wrong version: the message names --checkpoint and its model
    (["table-resize", "--checkpoint", pretrained_path("swinv2_digits")], 2,
     "--checkpoint: the table-resize figure needs a Swin v1 model, e.g. --model swin_t (V2 "
     "has no table to resize); got swinv2_digits from swinv2_digits.safetensors"),
    (["cpb", "--checkpoint", pretrained_path("swin_digits")], 2,
     "--checkpoint: the cpb figure needs a Swin V2 model"),
])
def test_cli(argv, code, words, tmp_path, capsys):
    out = tmp_path / "f.png"
    try:
        rc = main(["plot", *argv, "-o", str(out)])
    except SystemExit as e:
        rc = e.code
    assert rc == code
    text = capsys.readouterr()
    assert words in (text.out + text.err)
    assert out.exists() == (code == 0)
    assert "Traceback" not in text.err
