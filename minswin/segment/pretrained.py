"""The trained segmenters that ship in minswin/weights (so tutorial 12's pictures show learned
features without training first):

    swin_canvas_fpn    `minswin train --task segment` (config "canvas", seed 0): swin_canvas
                       with the feature-pyramid head
    swin_canvas_last   `minswin train --task segment --config canvas_last`: the same backbone
                       and budget with a head on the last stage only

Each file holds the final weights (no optimiser state) and, in its metadata, the recipe, the
normalisation, the test mean IoU and per-class IoU on the held-out canvases, the training
time, and the command that reproduces it (scripts/make_pretrained_segment.py wrote it).
"""
import json
import os

from ..weights import SEGMENTERS as SHIPPED, WEIGHTS_DIR

INFO_KEYS = ("name", "recipe", "test_miou", "test_iou", "test_canvases", "train_time_s",
             "command")


def segmenter_path(name="swin_canvas_fpn"):
    if name not in SHIPPED:
        raise ValueError(f"name: expected one of {sorted(SHIPPED)} (the segmenters shipped with"
                         f" minswin), got {name!r}")
    path = os.path.join(WEIGHTS_DIR, SHIPPED[name])
    if not os.path.isfile(path):
        raise OSError(f"{name}: the weights file {path} is missing from this installation")
    return path


def segmenter_info(name="swin_canvas_fpn"):
    """name, recipe (dict), test_miou (float), test_iou (list), test_canvases (int),
    train_time_s (float), command (str)."""
    from safetensors import safe_open
    with safe_open(segmenter_path(name), framework="numpy") as f:
        meta = dict(f.metadata() or {})
    info = {k: meta[k] for k in INFO_KEYS}
    for k in ("recipe", "test_iou"):
        info[k] = json.loads(info[k])
    info["test_miou"] = float(info["test_miou"])
    info["train_time_s"] = float(info["train_time_s"])
    info["test_canvases"] = int(info["test_canvases"])
    return info


def pretrained_segmenter(name="swin_canvas_fpn"):
    """(the shipped segmenter in eval mode, its training metadata: mean, std, config, ...)."""
    from .train import segmenter_from_checkpoint
    return segmenter_from_checkpoint(segmenter_path(name))
