"""The trained weights that ship in this folder: `minswin.pretrained("swin_digits")`.

Pictures of attention and of the relative position bias drawn from random weights are noise
around 1/N, and a learner reads meaning into noise. So two small trained models are in the box:

    swin_digits   the default run of `minswin train` (config "digits", seed 0): a two-stage
                  Swin (301,804 parameters, float32) on scikit-learn's 8x8 digits upsampled
                  to 16x16, about 99% correct on the held-out test split
    swinv2_digits `minswin train --model swinv2_digits`: the same recipe and shape with Swin
                  V2's blocks (315,820 parameters), for the pictures of V2's learned
                  continuous position bias (`minswin plot cpb`)

The file is a plain `.safetensors` of the weights (official names, no optimiser state). Its
metadata holds the recipe (the TrainConfig of the run), the data normalisation and classes
(so `minswin evaluate` rebuilds the same split), the accuracy on the test split, and the
command that reproduces it:

    minswin train --out runs/digits
    python scripts/make_pretrained.py runs/digits minswin/weights/swin_digits.safetensors

    model = minswin.pretrained("swin_digits")           # eval mode, ready to draw
    info = minswin.pretrained_info("swin_digits")       # recipe, test_accuracy, command, ...
"""
import json
import os

WEIGHTS_DIR = os.path.dirname(os.path.abspath(__file__))      # the files sit beside this one
PRETRAINED = {
    "swin_digits": "swin_digits.safetensors",
    "swinv2_digits": "swinv2_digits.safetensors",
}
# the segmenters of tutorial 12 ship here too; they load with
# minswin.segment.pretrained.pretrained_segmenter(name) (a segmenter is not a classifier)
SEGMENTERS = {
    "swin_canvas_fpn": "swin_canvas_fpn.safetensors",
    "swin_canvas_last": "swin_canvas_last.safetensors",
}
# top-level metadata keys every shipped file has (readable with any safetensors tool)
INFO_KEYS = ("name", "recipe", "test_accuracy", "test_images", "command")


def _check_name(name):
    if name in SEGMENTERS:
        raise ValueError(f"name: {name!r} is a shipped segmenter, not a classifier: load it "
                         f"with minswin.segment.pretrained.pretrained_segmenter({name!r})")
    if name not in PRETRAINED:
        raise ValueError(f"name: expected one of {sorted(PRETRAINED)} (the weights shipped "
                         f"with minswin), got {name!r}")
    return name


def pretrained_path(name="swin_digits"):
    """The path of a shipped weights file inside the installed package."""
    path = os.path.join(WEIGHTS_DIR, PRETRAINED[_check_name(name)])
    if not os.path.isfile(path):
        raise OSError(f"{name}: the weights file {path} is missing from this installation "
                      "(reinstall minswin; it is package data)")
    return path


def pretrained_info(name="swin_digits"):
    """The metadata of a shipped model: name, recipe (dict), test_accuracy (float),
    test_images (int), command (str) and the training state `minswin train` records."""
    from safetensors import safe_open
    with safe_open(pretrained_path(name), framework="numpy") as f:
        meta = dict(f.metadata() or {})
    info = {k: meta[k] for k in INFO_KEYS}
    info["recipe"] = json.loads(info["recipe"])
    info["test_accuracy"] = float(info["test_accuracy"])
    info["test_images"] = int(info["test_images"])
    return info


def pretrained(name="swin_digits"):
    """The shipped model `name` with its trained weights, in eval mode (no DropPath);
    `model.labels` is its list of class names ('0' .. '9' for the digits), as
    `minswin.from_pretrained` sets it."""
    from ..training import model_from_checkpoint
    model, meta = model_from_checkpoint(pretrained_path(name))
    model.labels = [str(c) for c in meta["classes"]]
    model.eval()
    return model
