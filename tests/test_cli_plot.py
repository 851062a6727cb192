"""`minswin plot`: files land where asked, bad options are one line on stderr, exit 2."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import minswin
from minswin.cli import main


def run_cli(capsys, *argv):
    """(exit status, stdout, stderr) of `minswin ...` run in this process."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:                              # argparse errors and --help
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def png_size(path):
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.size


def test_mask_with_no_options_writes_a_png(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(capsys, "plot", "mask")
    assert rc == 0, err
    w, h = png_size(tmp_path / "minswin-mask.png")
    assert w > 800 and h > 400
    assert "minswin-mask.png" in out


@pytest.mark.parametrize("argv,name,magic", [
    (["shift"], "s.pdf", b"%PDF"),
    (["stage-masks", "--size", "28"], "m.svg", b"<?xml"),
    (["index", "--window", "4"], "i.png", b"\x89PNG"),
    (["index-walk"], "w.png", b"\x89PNG"),
    (["windows", "--size", "12", "--window", "4", "--shift", "1"], "g.png", b"\x89PNG"),
    (["merge"], "merge.png", b"\x89PNG"),
    (["shift-gif"], "s.gif", b"GIF8"),
    (["mask", "--size", "56", "--window", "7", "--window-id", "63"], "m63.png", b"\x89PNG"),
])
def test_figures_write_valid_files(tmp_path, capsys, argv, name, magic):
    path = tmp_path / name
    rc, out, err = run_cli(capsys, "plot", *argv, "--dpi", "60", "-o", str(path))
    assert rc == 0, err
    with open(path, "rb") as f:
        assert f.read(8).startswith(magic)
    assert path.stat().st_size > 5000
    if magic != b"%PDF" and magic != b"<?xml":
        with Image.open(path) as im:
            assert im.size[0] > 250 and im.size[1] > 250
            assert im.format != "GIF" or im.is_animated


def test_model_figures_with_a_checkpoint(tmp_path, capsys):
    model = minswin.create_model("swin_micro", seed=3)
    ckpt = tmp_path / "micro.safetensors"
    minswin.save_checkpoint(str(ckpt), model.state_dict())
    for fig in ("bias", "attention", "attention-weights", "hierarchy", "cost"):
        path = tmp_path / f"{fig}.png"
        rc, out, err = run_cli(capsys, "plot", fig, "--model", "swin_micro", "--checkpoint",
                               str(ckpt), "--head", "1", "--dpi", "60", "-o", str(path))
        assert rc == 0, (fig, err)
        w, h = png_size(path)
        assert w > 300 and h > 200


def test_bias_figure_shows_the_loaded_table(tmp_path, monkeypatch, capsys):
    # the checkpoint's table, not a fresh model's, is what gets drawn
    import numpy as np

    from minswin.cli import plot
    model = minswin.create_model("swin_micro", seed=5)
    key = "layers.0.blocks.1.attn.relative_position_bias_table"
    model.params[key][...] = np.arange(model.params[key].size).reshape(model.params[key].shape)
    ckpt = tmp_path / "micro.safetensors"
    minswin.save_checkpoint(str(ckpt), model.state_dict())
    seen = {}
    real = minswin.viz.plot_relative_position_bias

    def spy(table, **kw):
        seen["table"] = np.array(table)
        return real(table, **kw)
    monkeypatch.setattr(minswin.viz, "plot_relative_position_bias", spy)
    rc, _, err = run_cli(capsys, "plot", "bias", "--model", "swin_micro", "--checkpoint",
                         str(ckpt), "--dpi", "50", "-o", str(tmp_path / "b.png"))
    assert rc == 0, err
    assert np.array_equal(seen["table"], model.params[key])
    assert plot.FIGURES                                    # the module lists its figures


# The messages of bad map and head options are viz's own (test_viz checks them at that layer);
# here they must reach the user as one line that names the argument.
@pytest.mark.parametrize("argv,words", [
    (["mask", "--window", "3"],
     "--size (not given): expected a multiple of window=3, got 8 (use 9"),
    (["mask", "--shift", "4"], "0 <= shift < window=4"),
    (["mask", "--shift", "0"], "no mask"),
    (["mask", "--size", "-8"], "positive"),
    (["mask", "--window-id", "4"], "--window-id: expected 0 <= window_id < 4"),
    (["stage-masks", "--size", "50"], "size: expected a multiple of window=7, got 50"),
    (["shift", "--size", "0", "--image"], "size: expected a positive integer, got 0"),
    (["windows", "--image", "--window", "5"], "window: expected a window that divides"),
    (["index", "--window", "0"], "positive"),
    (["mask", "--dpi", "0"], "--dpi: expected a positive integer, got 0"),
    (["nosuchfigure"], "FIGURE: expected one of attention,"),
    (["mask", "--size", "eight"], "--size: expected an integer, got 'eight'"),
    (["mask", "-o", "/nonexistent-dir/m.png"], "does not exist"),
    (["mask", "-o", "mask.txt"], ".png"),
    (["shift-gif", "-o", "s.png"], ".gif"),
    (["bias", "--model", "swin_micro", "--stage", "3"], "--stage"),
    (["bias", "--model", "swin_micro", "--head", "9"], "--head: expected 0 <= head < 3, got 9"),
    (["attention", "--model", "swin_micro", "--query", "16"], "query: expected 0 <= query < 16"),
    (["attention-weights", "--model", "swin_micro", "--window-id", "4"],
     "--window-id: expected 0 <= window_id < 4"),
    (["bias", "--model", "nosuchmodel"], "swin_t"),
    (["attention", "--checkpoint", "/nonexistent.safetensors"], "no such checkpoint"),
    (["attention", "--model", "swin_micro", "--image-index", "0"], "minswin train"),
])
def test_bad_options_are_one_line_on_stderr(tmp_path, monkeypatch, capsys, argv, words):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(capsys, "plot", *argv)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert words in lines[0] and "Traceback" not in err
    assert not any(p.endswith(".png") for p in os.listdir(tmp_path))


@pytest.mark.parametrize("figure", ["attention", "attention-weights"])
def test_a_bad_head_fails_before_the_forward_pass(tmp_path, monkeypatch, capsys, figure):
    """The attention figures run the model first; a wrong --head must not wait for that."""
    from minswin.model import SwinTransformer

    def no_forward(self, *args, **kwargs):
        raise AssertionError("the forward pass ran before --head was checked")
    monkeypatch.setattr(SwinTransformer, "forward", no_forward)
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(capsys, "plot", figure, "--model", "swin_micro", "--head", "3")
    assert rc == 2 and "--head: expected 0 <= head < 3, got 3" in err, err


def test_unwritable_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):                         # e.g. running as root
            pytest.skip("this user can write into a read-only folder")
        rc, _, err = run_cli(capsys, "plot", "mask", "-o", str(ro / "m.png"))
        assert rc == 2 and "permission denied" in err
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("cmd", [["plot"], ["tour"]])
def test_help_has_examples(capsys, cmd):
    rc, out, err = run_cli(capsys, *cmd, "--help")
    assert rc == 0
    assert "examples:" in out


def test_console_script_exit_status(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    bad = subprocess.run([sys.executable, "-m", "minswin", "plot", "mask", "--window", "5"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- issue 13

def _spy(monkeypatch, fn_name):
    """Replace viz.<fn_name> by a wrapper that records its arguments; returns the record."""
    seen = {}
    real = getattr(minswin.viz, fn_name)

    def spy(*args, **kw):
        seen.update(args=args, kw=kw)
        return real(*args, **kw)
    monkeypatch.setattr(minswin.viz, fn_name, spy)
    return seen


def test_bias_and_attention_default_to_the_shipped_trained_model(tmp_path, monkeypatch,
                                                                  capsys):
    seen = _spy(monkeypatch, "plot_relative_position_bias")
    rc, _, err = run_cli(capsys, "plot", "bias", "-o", str(tmp_path / "b.png"))
    assert rc == 0, err
    trained = minswin.pretrained("swin_digits")
    key = "layers.0.blocks.1.attn.relative_position_bias_table"
    assert (seen["args"][0] == trained.params[key]).all()
    assert "trained" in seen["kw"]["name"] and "random" not in seen["kw"]["name"]
    seen = _spy(monkeypatch, "plot_query_attention")
    rc, _, err = run_cli(capsys, "plot", "attention", "-o", str(tmp_path / "a.png"))
    assert rc == 0, err
    assert "swin_digits (trained" in seen["kw"]["name"] and "test image 0" in seen["kw"]["name"]


def test_random_weights_stay_an_option_and_say_so(tmp_path, monkeypatch, capsys):
    seen = _spy(monkeypatch, "plot_relative_position_bias")
    rc, _, err = run_cli(capsys, "plot", "bias", "--random-weights", "-o",
                         str(tmp_path / "b.png"))
    assert rc == 0, err
    assert "swin_digits (random weights" in seen["kw"]["name"]
    rc, _, err = run_cli(capsys, "plot", "bias", "--model", "swin_micro", "-o",
                         str(tmp_path / "b.png"))
    assert rc == 0 and "swin_micro (random weights" in seen["kw"]["name"]
    rc, _, err = run_cli(capsys, "plot", "bias", "--random-weights", "--checkpoint",
                         str(tmp_path / "b.png"), "-o", str(tmp_path / "c.png"))
    assert rc == 2 and "--random-weights" in err and "Traceback" not in err


def test_cpb_defaults_to_the_shipped_trained_v2_model(tmp_path, monkeypatch, capsys):
    seen = _spy(monkeypatch, "plot_cpb_table")
    rc, _, err = run_cli(capsys, "plot", "cpb", "-o", str(tmp_path / "c.png"))
    assert rc == 0, err
    trained = minswin.pretrained("swinv2_digits")
    want = minswin.viz.attention_cpb_table(trained.layers[0].blocks[1].attn)   # (49, 3)
    assert np.array_equal(seen["args"][0], want)
    assert "swinv2_digits (trained" in seen["kw"]["name"] and "random" not in seen["kw"]["name"]
    rc, _, err = run_cli(capsys, "plot", "cpb", "--random-weights", "-o",
                         str(tmp_path / "r.png"))
    assert rc == 0 and "swinv2_digits (random weights" in seen["kw"]["name"], err


@pytest.mark.parametrize("argv,words", [
    (["plot", "mask", "-o", ""], "-o/--output: expected a file name, got ''"),
    (["plot", "shift-gif", "-o", ""], "-o/--output: expected a file name, got ''"),
    (["plot", "bias", "--checkpoint", ""], "--checkpoint: expected a file name, got ''"),
    (["tour", "--out", ""], "--out: expected a folder name, got ''"),
    (["evaluate", "-o", ""], "--out: expected a .png file name, got ''"),
])
def test_an_empty_path_is_an_error_not_a_default(argv, words, capsys):
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 2 and words in err and "Traceback" not in err, err


@pytest.mark.parametrize("argv", [
    ["plot", "mask", "-o", "{f}/x.png"],
    ["plot", "mask", "-o", "{f}/deeper/x.png"],
    ["plot", "shift-gif", "-o", "{f}/x.gif"],
    ["tour", "--out", "{f}/figs"],
    ["evaluate", "-o", "{f}/cm.png"],
])
def test_a_path_under_a_file_says_so(argv, tmp_path, capsys):
    f = tmp_path / "a_file"
    f.write_text("not a folder")
    rc, out, err = run_cli(capsys, *[a.format(f=f) for a in argv])
    assert rc == 2 and f"{f} is a file, not a" in err and "Traceback" not in err, err


def test_version(capsys):
    rc, out, err = run_cli(capsys, "--version")
    assert rc == 0 and out.strip() == f"minswin {minswin.__version__}"
