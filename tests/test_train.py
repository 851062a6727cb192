"""The training loop: it learns, it is deterministic, resume is exact, NaN and Ctrl-C are safe.

Every run here uses the real model (`create_model`) at the tiny `digits_tiny` config: a few
hundred digits, two epochs of eight steps, well under a second each.
"""
import importlib
import json
import os
import signal

import numpy as np
import pytest

from minswin.checkpoint import load_checkpoint
from minswin.cli import main as cli_main
from minswin.data import batch_slices, load_dataset, random_shift, resize_images, stratified_split
from minswin.loss import cross_entropy_forward

T = importlib.import_module("minswin.training")

pytest.importorskip("sklearn")                  # the digits come with scikit-learn

TINY = dict(progress=False, plots=False, log=lambda s: None)


def _run(tmp_path, name, **kw):
    return T.train("digits_tiny", out=str(tmp_path / name), **{**TINY, **kw})


def _arrays(path):
    return load_checkpoint(path)


def _assert_same_arrays(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


# ---------------------------------------------------------------------------- it learns

def test_tiny_run_reduces_the_loss_and_writes_everything(tmp_path):
    ds = T.load_data(T.TRAIN_CONFIGS["digits_tiny"], 16)
    model = T.build_model(T.TRAIN_CONFIGS["digits_tiny"], 10)
    before, _, _ = T.evaluate_split(model, ds.train)
    r = _run(tmp_path, "a", epochs=3, plots=True)
    after, _, _ = T.evaluate_split(r.model, ds.train)     # final weights, same images
    assert after < before - 0.1, (before, after)
    losses = r.history["step_loss"]
    assert np.mean(losses[-4:]) < np.mean(losses[:4])
    out = tmp_path / "a"
    for f in ("last.safetensors", "best.safetensors", "history.json", "curves.png"):
        assert (out / f).exists(), f
    h = json.loads((out / "history.json").read_text())
    assert len(h["epochs"]) == 3 and len(h["step_loss"]) == 3 * 8
    assert 0.0 <= h["test_acc"] <= 1.0 and h["test_acc"] == r.test_acc
    state, meta = load_checkpoint(str(out / "last.safetensors"), with_metadata=True)
    assert any(k.startswith("optimizer.exp_avg.") for k in state)
    assert "layers.0.blocks.1.attn.relative_position_bias_table" in state
    assert json.loads(meta[T.META_KEY])["epoch"] == 3


def test_prints_test_accuracy_and_epoch_lines(tmp_path):
    lines = []
    T.train("digits_tiny", out=str(tmp_path / "p"), progress=False, plots=False,
            log=lines.append, epochs=1)
    assert lines[-1].startswith("the final weights (last.safetensors, epoch 1): test accuracy: ")
    assert lines[-1].endswith("%")
    assert lines[-2].startswith("best val epoch ") and \
        "): best.safetensors, test accuracy " in lines[-2], lines[-2]
    assert any(s.startswith("epoch   1/1") for s in lines)


def test_rescale_init_multiplies_only_block_linears():
    cfg = T.make_config("digits_tiny", init="official")
    official = T.build_model(cfg, 10)
    lecun = T.build_model(T.make_config("digits_tiny"), 10)
    for k, p in official.params.items():
        q = lecun.params[k]
        if k.endswith(T.BLOCK_LINEARS):
            np.testing.assert_allclose(q, p / (0.02 * np.sqrt(p.shape[1])), rtol=1e-6)
        else:
            assert np.array_equal(p, q), k
    with pytest.raises(ValueError, match="init: expected one of"):
        T.make_config("digits", init="xavier")


# ---------------------------------------------------------------------------- determinism

def test_same_seed_same_curve_bit_for_bit(tmp_path):
    a, b = _run(tmp_path, "a"), _run(tmp_path, "b")
    assert a.history["step_loss"] == b.history["step_loss"]
    _assert_same_arrays(_arrays(a.last_path), _arrays(b.last_path))
    c = _run(tmp_path, "c", seed=1)
    assert c.history["step_loss"] != a.history["step_loss"]


def test_resume_2_plus_2_equals_4(tmp_path):
    full = _run(tmp_path, "full", epochs=4)
    half = _run(tmp_path, "half", epochs=4, stop_after=2)
    assert not half.finished and np.isnan(half.test_acc)
    rest = T.train(resume=half.last_path, out=str(tmp_path / "half"), **TINY)
    assert rest.finished
    assert rest.history["step_loss"] == full.history["step_loss"]
    _assert_same_arrays(_arrays(full.last_path), _arrays(rest.last_path))
    assert rest.test_acc == full.test_acc


def test_ctrl_c_saves_and_resumes_exactly(tmp_path):
    full = _run(tmp_path, "full")
    calls = []

    def interrupting_loss(logits, labels, eps):
        calls.append(1)
        if len(calls) == 11:                  # in the middle of epoch 2
            signal.raise_signal(signal.SIGINT)
        return cross_entropy_forward(logits, labels, eps)

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "cut", loss_fn=interrupting_loss)
    _, meta = load_checkpoint(str(tmp_path / "cut" / "last.safetensors"), with_metadata=True)
    meta = json.loads(meta[T.META_KEY])
    assert (meta["kind"], meta["epoch"], meta["batch"], meta["step"]) == ("interrupted", 1, 3, 11)
    rest = T.train(resume=str(tmp_path / "cut" / "last.safetensors"),
                   out=str(tmp_path / "cut"), **TINY)
    assert rest.history["step_loss"] == full.history["step_loss"]
    _assert_same_arrays(_arrays(full.last_path), _arrays(rest.last_path))


# ---------------------------------------------------------------------------- NaN guard

def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    calls = []

    def nan_in_epoch_2(logits, labels, eps):
        calls.append(1)
        loss, cache = cross_entropy_forward(logits, labels, eps)
        return (loss * np.nan if len(calls) == 12 else loss), cache

    last = tmp_path / "n" / "last.safetensors"
    with pytest.raises(T.TrainingDiverged, match=r"loss is nan at epoch 2, batch 4") as e:
        _run(tmp_path, "n", loss_fn=nan_in_epoch_2)
    assert "last good checkpoint" in str(e.value)
    state, meta = load_checkpoint(str(last), with_metadata=True)
    assert json.loads(meta[T.META_KEY])["epoch"] == 1                 # epoch 1 kept
    assert all(np.isfinite(v).all() for v in state.values())
    h = json.loads((tmp_path / "n" / "history.json").read_text())
    assert h["diverged"] and len(h["step_loss"]) == 11


def test_nan_in_first_epoch_says_no_checkpoint(tmp_path):
    def always_nan(logits, labels, eps):
        loss, cache = cross_entropy_forward(logits, labels, eps)
        return loss * np.inf, cache

    with pytest.raises(T.TrainingDiverged, match="no checkpoint had been written"):
        _run(tmp_path, "n0", loss_fn=always_nan)


# ---------------------------------------------------------------------------- config errors

def test_resume_refuses_changed_options(tmp_path):
    half = _run(tmp_path, "h", stop_after=1)
    with pytest.raises(ValueError, match=r"batch_size: cannot change when resuming"):
        T.train(resume=half.last_path, out=str(tmp_path / "h"), batch_size=8, **TINY)


def test_run_arguments_are_checked_by_the_library(tmp_path):
    """What the CLI passes on is checked where it is used, so the Python API is safe too."""
    with pytest.raises(ValueError, match="stop_after: expected a positive integer, got 0"):
        T.train(out=str(tmp_path), stop_after=0, **TINY)
    with pytest.raises(ValueError, match="threads: expected a positive integer, got 0"):
        T.train(out=str(tmp_path), threads=0, **TINY)
    from minswin.data import batch_slices
    with pytest.raises(ValueError, match="batch_size: expected a positive integer, got 0"):
        batch_slices(10, 0)


@pytest.mark.parametrize("kw, words", [
    (dict(epochs=0), "epochs: expected a positive integer"),
    (dict(lr=-1.0), "lr: expected a finite number >= 0"),
    (dict(optimizer="adam"), "optimizer: expected 'adamw' or 'sgd'"),
    (dict(bogus=1), "unknown training option"),
    (dict(val_fraction=0.0), r"val_fraction: expected a fraction in \(0, 1\), got 0.0"),
    (dict(test_fraction=1), r"test_fraction: expected a fraction in \(0, 1\), got 1"),
])
def test_bad_options_name_the_option(kw, words):
    with pytest.raises(ValueError, match=words):
        T.make_config("digits", **kw)
    with pytest.raises(ValueError, match="config: expected one of"):
        T.make_config("nope")


# ---------------------------------------------------------------------------- CLI

def test_cli_train_and_evaluate(tmp_path, capsys):
    out = str(tmp_path / "cli")
    rc = cli_main(["train", "--config", "digits_tiny", "--epochs", "1", "--out", out,
                   "--no-progress", "--optimizer", "sgd", "--lr", "0.05"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "test accuracy:" in text.splitlines()[-1]
    png = str(tmp_path / "cm.png")
    rc = cli_main(["evaluate", os.path.join(out, "best.safetensors"), "-o", png])
    assert rc == 0
    text = capsys.readouterr().out
    assert "accuracy:" in text and "true\\pred" in text and os.path.exists(png)
    rows = [r for r in text.splitlines() if r[:1].isdigit() and len(r.split()) == 11]
    assert sum(int(v) for r in rows for v in r.split()[1:]) == 359   # every test image once


def test_cli_errors_exit_2(tmp_path, capsys):
    assert cli_main(["train", "--epochs", "-3", "--out", str(tmp_path)]) == 2
    assert "epochs: expected a positive integer" in capsys.readouterr().err
    assert cli_main(["evaluate", str(tmp_path / "missing.safetensors")]) == 2
    assert "no such file" in capsys.readouterr().err


# ---------------------------------------------------------------------------- data

def test_digits_split_is_fixed_and_stratified():
    ds = load_dataset("digits", 8)
    assert (len(ds.train.y), len(ds.val.y), len(ds.test.y)) == (1259, 179, 359)
    assert sorted(set(ds.test.y.tolist())) == list(range(10))
    again = load_dataset("digits", 8)
    assert np.array_equal(ds.test.x, again.test.x)
    # the normalisation comes from the training split only
    assert abs(float(ds.train.x.mean())) < 1e-5 and abs(float(ds.train.x.std()) - 1) < 1e-4
    tr, va, te = stratified_split(np.repeat(np.arange(3), 10), 0.2, 0.2, seed=0)
    assert len(set(tr) | set(va) | set(te)) == 30 and len(te) == len(va) == 6


def test_resize_matches_torch_bilinear():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.tensor(x).permute(0, 3, 1, 2), size=(20, 20),
                                          mode="bilinear", align_corners=False)
    np.testing.assert_allclose(resize_images(x, 20), ref.permute(0, 2, 3, 1).numpy(),
                               atol=1e-6)


def test_random_shift_is_a_shift():
    x = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    y = random_shift(x, 1, np.random.default_rng(0), np.full(3, -1.0, np.float32))
    for i in range(2):     # each output is x moved by (dy, dx) in [-1, 1], padded with -1
        found = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                 if np.array_equal(np.roll(np.pad(x[i], ((1, 1), (1, 1), (0, 0)),
                                                  constant_values=-1), (dy, dx), (0, 1))[1:5, 1:5],
                                   y[i])]
        assert found, i
    assert batch_slices(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert batch_slices(128, 64) == [(0, 64), (64, 128)]
    assert batch_slices(3, 8) == [(0, 3)]


def test_own_images_npz_and_folder(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 12, 10, 3), dtype=np.uint8)
    y = np.arange(40) % 4
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    ds = load_dataset(str(tmp_path / "mine.npz"), 8, val_fraction=0.2, test_fraction=0.2)
    assert ds.train.x.shape == (24, 8, 8, 3) and ds.classes == ("0", "1", "2", "3")
    assert ds.test.x.shape == (8, 8, 8, 3)       # 2 of each class's 10
    from PIL import Image
    for k in ("cat", "dog"):
        (tmp_path / "imgs" / k).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(x[i]).save(tmp_path / "imgs" / k / f"{i}.png")
    ds = load_dataset(str(tmp_path / "imgs"), 8, val_fraction=0.25, test_fraction=0.25)
    assert ds.classes == ("cat", "dog") and ds.train.x.shape == (4, 8, 8, 3)


def test_own_images_bad_input(tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 8, 8)), y=np.zeros(4, int))
    with pytest.raises(ValueError, match=r"mean, std: expected both .* or neither"):
        load_dataset("digits", 8, mean=np.zeros(3))
    with pytest.raises(ValueError, match=r"std: expected 3 values, one per RGB channel, got "
                                         r"shape \(2,\)"):
        load_dataset("digits", 8, mean=np.zeros(3), std=np.ones(2))
    with pytest.raises(ValueError, match=r"expected x of shape \(N, H, W, 3\)"):
        load_dataset(str(tmp_path / "bad.npz"), 8)
    with pytest.raises(ValueError, match="data: expected 'digits', a folder"):
        load_dataset("no/such/thing", 8)
