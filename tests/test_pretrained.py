"""The trained models in the box: `minswin.pretrained("swin_digits")`, "swinv2_digits".

Each shipped file must be what its metadata says: the default recipe of `minswin train`, still
runnable (a fresh run's first epoch lands where the shipped run's did), and as accurate on the
held-out test split as recorded. `minswin evaluate` with no path evaluates it.
"""
import json
import os

import numpy as np
import pytest

import minswin
from minswin.checkpoint import load_checkpoint
from minswin.cli import main as cli_main
from minswin.training import META_KEY, evaluate_split, load_data, make_config, train
from minswin.weights import pretrained_info, pretrained_path

pytest.importorskip("sklearn")                  # the digits come with scikit-learn


SHIPPED = ("swin_digits", "swinv2_digits")
# the default recipe ("digits", seed 0) with the model each file is named after
RECIPES = {"swin_digits": make_config("digits"),
           "swinv2_digits": make_config("digits", model="swinv2_digits")}


def _training_record(name="swin_digits"):
    """The shipped file's `minswin train` record: classes, normalisation, first epoch, ..."""
    return json.loads(load_checkpoint(pretrained_path(name), with_metadata=True)[1][META_KEY])


@pytest.mark.parametrize("name, params, version", [("swin_digits", 301_804, 1),
                                                   ("swinv2_digits", 315_820, 2)])
def test_shipped_file_is_small_weights_only_with_its_recipe(name, params, version):
    path = pretrained_path(name)
    assert 1.0e6 < os.path.getsize(path) < 1.5e6                       # float32, no optimiser
    state, meta = load_checkpoint(path, with_metadata=True)
    assert not any(k.startswith("optimizer.") for k in state)
    assert all(v.dtype == np.float32 for v in state.values())
    info = pretrained_info(name)
    assert info["name"] == name
    assert info["recipe"] == RECIPES[name].as_dict()                   # the default recipe
    assert info["recipe"]["seed"] == 0
    assert info["command"].startswith("minswin train") and name in info["command"]
    assert info["test_images"] == 359 and 0.97 <= info["test_accuracy"] <= 1.0
    model = minswin.pretrained(name)
    assert not model.training and model.num_params() == params
    assert model.config.version == version


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_accuracy_on_the_held_out_split(name):
    info = pretrained_info(name)
    model = minswin.pretrained(name)
    cfg = make_config(info["recipe"])
    rec = _training_record(name)
    ds = load_data(cfg, model.config.img_size, rec["mean"], rec["std"])
    _, acc, pred = evaluate_split(model, ds.test)
    assert len(ds.test.y) == info["test_images"]
    # the same images right, up to one that BLAS round-off on another machine could flip
    assert abs(acc - info["test_accuracy"]) * len(ds.test.y) <= 1 + 1e-9, acc
    assert acc >= 0.97


@pytest.mark.parametrize("name", SHIPPED)
def test_recipe_still_runs_and_starts_like_the_shipped_run(name, tmp_path):
    """One epoch (20 steps) of the recipe: the first epoch's losses of the shipped run."""
    info = pretrained_info(name)
    first = _training_record(name)["first_epoch"]
    res = train(info["recipe"], out=str(tmp_path / "run"), stop_after=1, progress=False,
                plots=False, log=lambda s: None)
    got = res.history["epochs"][0]
    assert got["train_loss"] == pytest.approx(first["train_loss"], rel=1e-3)
    assert got["val_loss"] == pytest.approx(first["val_loss"], rel=1e-3)
    assert got["val_acc"] == pytest.approx(first["val_acc"], abs=1 / 179 + 1e-9)


def test_unknown_name_is_refused():
    with pytest.raises(ValueError, match="name: expected one of \\['swin_digits', "
                                         "'swinv2_digits'\\]"):
        minswin.pretrained("swin_t")


def test_evaluate_with_no_path_evaluates_the_shipped_model(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["evaluate"]) == 0
    out = capsys.readouterr().out
    acc = pretrained_info()["test_accuracy"]
    assert "the shipped swin_digits model" in out and "359 images" in out
    assert f"accuracy: {100 * acc:.1f}%" in out
    assert os.path.isfile(tmp_path / "minswin-figures" / "confusion_test.png")
