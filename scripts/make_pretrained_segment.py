"""Write a segmenter minswin ships (minswin/weights/swin_canvas_{fpn,last}.safetensors) from a
finished `minswin train --task segment` run:

    minswin train --task segment --out runs/canvas
    python scripts/make_pretrained_segment.py runs/canvas \
        minswin/weights/swin_canvas_fpn.safetensors
    minswin train --task segment --config canvas_last --out runs/canvas_last
    python scripts/make_pretrained_segment.py runs/canvas_last \
        minswin/weights/swin_canvas_last.safetensors

It keeps the final weights (`last.safetensors`, whose test mean IoU the run printed), drops the
optimiser state, evaluates them on the held-out canvases again (it must give the run's
number), and stores the recipe, the IoUs, the training time and the command in the metadata.
"""
import argparse
import json
import os
import sys

import numpy as np

from minswin.checkpoint import save_checkpoint
from minswin.segment.metrics import iou_per_class
from minswin.segment.train import (
    TASK,
    build_segmenter,
    evaluate_segmenter,
    make_segment_config,
    segment_data,
)
from minswin.training import META_KEY, read_training_checkpoint

NAMES = {"fpn": "swin_canvas_fpn", "last": "swin_canvas_last"}
COMMANDS = {
    "swin_canvas_fpn": "minswin train --task segment --out runs/canvas && python "
                       "scripts/make_pretrained_segment.py runs/canvas "
                       "minswin/weights/swin_canvas_fpn.safetensors",
    "swin_canvas_last": "minswin train --task segment --config canvas_last --out "
                        "runs/canvas_last && python scripts/make_pretrained_segment.py "
                        "runs/canvas_last minswin/weights/swin_canvas_last.safetensors",
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="the --out folder of a finished `minswin train --task segment`")
    p.add_argument("out", help="the .safetensors file to write")
    args = p.parse_args(argv)
    state, _, meta = read_training_checkpoint(os.path.join(args.run, "last.safetensors"))
    if meta.get("task") != TASK:
        sys.exit(f"{args.run}: not a --task segment run")
    cfg = make_segment_config(meta["config"])
    if meta["epoch"] != cfg.epochs:
        sys.exit(f"{args.run}: the run stopped at epoch {meta['epoch']} of {cfg.epochs}")
    with open(os.path.join(args.run, "history.json"), encoding="utf-8") as f:
        history = json.load(f)
    model = build_segmenter(cfg)
    model.load_state_dict(state, strict=True)
    ds = segment_data(cfg, meta["mean"], meta["std"])
    _, cm, _ = evaluate_segmenter(model, ds.test)
    iou = iou_per_class(cm)
    miou = float(np.nanmean(iou))
    if abs(miou - history["test_miou"]) > 1e-9:
        sys.exit(f"test mean IoU {miou} differs from the run's {history['test_miou']}")
    name = NAMES[cfg.head]
    keep = {k: meta[k] for k in ("task", "config", "model_config", "classes", "mean", "std",
                                 "epoch")}
    keep.update(kind="pretrained", epochs=history["epochs"],
                train_time_s=history["train_time_s"])
    save_checkpoint(args.out, model.state_dict(), {
        "name": name, "recipe": json.dumps(cfg.as_dict()), "test_miou": repr(miou),
        "test_iou": json.dumps([None if np.isnan(v) else float(v) for v in iou]),
        "test_canvases": str(len(ds.test.y)), "train_time_s": repr(history["train_time_s"]),
        "command": COMMANDS[name], META_KEY: json.dumps(keep)})
    print(f"wrote {args.out}: {name}, test mean IoU {100 * miou:.2f}% on {len(ds.test.y)} "
          f"canvases, {os.path.getsize(args.out):,} bytes")


if __name__ == "__main__":
    main()
