"""Swin as a backbone for a dense task: digit canvases segmented pixel by pixel.

    canvases.py   the data: a few digits placed on a blank canvas, each pixel labelled
    head.py       the heads: a light feature pyramid (FPN) and a last-stage-only head
    model.py      SwinSegmenter: a features_only Swin and a head, forward and backward
    metrics.py    per-pixel cross-entropy, confusion matrix, IoU
    train.py      `minswin train --task segment`: the training run, with the classification
                  run's safety (refusals, resume, curves, atomic checkpoints)
"""
from .canvases import CLASSES, load_canvases, make_canvases
from .model import SwinSegmenter, create_segmenter

__all__ = ["CLASSES", "make_canvases", "load_canvases", "SwinSegmenter", "create_segmenter"]
